"""What is due when: the pure planner, driven by a clock that the test moves."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from csp_bot.models.enums import Role
from csp_bot.models.localtime import parse_offsets, parse_quiet_hours, wall_clock
from csp_bot.models.reminder_types import (
    ActionFacts,
    DeadlineFacts,
    Due,
    Facts,
    Key,
    MeetingFacts,
    OutboxState,
    Recipient,
    ReminderKind,
    Topic,
    recorded_index,
)
from csp_bot.scheduler.due import Rules, due_reminders
from csp_bot.scheduler.timing import WorkingCalendar

LONDON = ZoneInfo("Europe/London")
CHAIR = Recipient(1, Role.CHAIR, 10)
BOARD = Recipient(2, Role.BOARD, 11)
POLICE = Recipient(3, Role.PARTNER, 12)
COUNCIL = Recipient(4, Role.PARTNER, 10)
PEOPLE = (CHAIR, BOARD, POLICE, COUNCIL)
# Without the chair there is no digest, so a test can watch one kind of reminder alone.
NO_CHAIR = (BOARD, POLICE, COUNCIL)


def uk(text: str) -> datetime:
    return wall_clock(datetime.fromisoformat(text), LONDON)


def shown(moment: datetime) -> str:
    return f"{moment.astimezone(LONDON):%a %d %b %H:%M}"


def rules(quiet: str = "20:00-08:00") -> Rules:
    return Rules(
        zone=LONDON,
        calendar=WorkingCalendar(parse_quiet_hours(quiet), LONDON),
        meeting_offsets=parse_offsets("7d,1d,2h"),
        deadline_offsets=parse_offsets("30d,14d,7d,1d"),
        action_offsets=parse_offsets("7d,1d"),
        quiet_after=timedelta(days=28),
    )


def facts(
    *,
    recipients: Sequence[Recipient] = PEOPLE,
    meetings: Sequence[MeetingFacts] = (),
    deadlines: Sequence[DeadlineFacts] = (),
    actions: Sequence[ActionFacts] = (),
) -> Facts:
    return Facts(recipients, meetings, deadlines, actions, plan_starts_at=uk("2021-04-01T00:00"))


def run(
    data: Facts,
    start: str,
    end: str,
    *,
    step: timedelta = timedelta(minutes=30),
    plan: Rules | None = None,
    kinds: frozenset[ReminderKind] = frozenset(ReminderKind),
) -> list[tuple[datetime, Due]]:
    """Tick from `start` to `end`, recording what each tick returns, as the dispatcher does;
    the reminders of `kinds` are returned with the time of the tick that produced them."""
    recorded: list[Key] = []
    seen = []
    now, stop = uk(start), uk(end)
    while now <= stop:
        for due in due_reminders(data, plan or rules(), now, recorded_index(recorded)):
            recorded.append(due.key)
            if due.kind in kinds:
                seen.append((now, due))
        now += step
    return seen


def sent(seen: list[tuple[datetime, Due]], member: Recipient | None = None) -> list[str]:
    """When each reminder that would be sent became due, and its occurrence."""
    return [
        f"{shown(now)} {due.kind.value} {due.occurrence.split('/')[-1]}"
        for now, due in seen
        if due.state == OutboxState.PENDING and (member is None or due.member_id == member.id)
    ]


def states(seen: list[tuple[datetime, Due]]) -> dict[str, OutboxState]:
    return {f"{due.member_id}:{due.occurrence.split('/')[-1]}": due.state for _, due in seen}


MEETING = MeetingFacts(7, uk("2021-06-24T10:00"))  # a Thursday
MEETINGS = frozenset({ReminderKind.MEETING})
ACTIONS = frozenset({ReminderKind.ACTION_DUE, ReminderKind.ACTION_OVERDUE, ReminderKind.CHECKIN})


def test_meeting_reminders_fire_at_their_offsets_and_only_then() -> None:
    seen = run(facts(meetings=[MEETING]), "2021-06-10T09:00", "2021-06-24T12:00", kinds=MEETINGS)
    expected = [
        "Thu 17 Jun 10:00 meeting 7d",
        "Wed 23 Jun 10:00 meeting 1d",
        "Thu 24 Jun 08:00 meeting 2h",
    ]
    assert sent(seen, CHAIR) == expected
    assert sent(seen, BOARD) == expected
    assert sent(seen, POLICE) == []  # partners are not invited to board meetings


def test_reminders_wait_for_the_working_morning_and_go_once() -> None:
    # A Monday 09:00 meeting: the 1-day reminder (Sunday) and the 2-hour one (07:00) both
    # wait for Monday 08:00; only the later one goes, the other is superseded.
    monday = MeetingFacts(8, uk("2021-06-14T09:00"))
    seen = run(
        facts(recipients=[CHAIR], meetings=[monday]),
        "2021-06-05T09:00",
        "2021-06-14T10:00",
        kinds=MEETINGS,
    )
    assert sent(seen) == ["Mon 07 Jun 09:00 meeting 7d", "Mon 14 Jun 08:00 meeting 2h"]
    assert states(seen)["1:1d"] == OutboxState.SUPERSEDED


def test_after_downtime_only_the_latest_reminder_still_useful_goes() -> None:
    # Nothing ran between 10 June and the evening of 23 June: the 7-day and 1-day reminders
    # were both missed; the 1-day one still makes sense, so it alone goes.
    dues = due_reminders(
        facts(recipients=[CHAIR], meetings=[MEETING]), rules(), uk("2021-06-23T18:00"), {}
    )
    by_offset = {due.occurrence.split("/")[-1]: due.state for due in dues if due.kind in MEETINGS}
    assert by_offset == {"7d": OutboxState.SUPERSEDED, "1d": OutboxState.PENDING}


def test_after_downtime_past_the_event_everything_is_expired() -> None:
    dues = due_reminders(
        facts(recipients=[CHAIR], meetings=[MEETING]), rules(), uk("2021-06-25T09:00"), {}
    )
    dues = [due for due in dues if due.kind in MEETINGS]
    assert {due.state for due in dues} == {OutboxState.EXPIRED}
    assert len(dues) == 3


def test_nothing_recorded_is_returned_again() -> None:
    data = facts(meetings=[MEETING])
    now = uk("2021-06-23T10:00")
    first = due_reminders(data, rules(), now, {})
    assert due_reminders(data, rules(), now, recorded_index(due.key for due in first)) == []


def test_a_member_snoozed_to_the_end_of_the_calendar_is_skipped_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    forever = Recipient(5, Role.BOARD, 11, snoozed_until=datetime(9999, 12, 31, 23, 0, tzinfo=UTC))
    data = facts(recipients=[*PEOPLE, forever], meetings=[MEETING])
    reported: set[tuple[str, int]] = set()
    now = uk("2021-06-17T10:00")
    dues = due_reminders(data, rules(), now, {}, reported)
    assert sorted((due.member_id, due.occurrence) for due in dues if due.kind in MEETINGS) == [
        (1, "20210624T0900Z/7d"),
        (2, "20210624T0900Z/7d"),
    ]
    assert reported == {("member", 5)}
    assert [record.getMessage() for record in caplog.records] == [
        "cannot work out the reminders for member 5: skipped (logged once)"
    ]
    due_reminders(data, rules(), now + timedelta(minutes=1), {}, reported)
    assert len(caplog.records) == 1


def test_a_snoozed_member_gets_what_is_still_useful_when_the_snooze_ends() -> None:
    snoozed = Recipient(1, Role.CHAIR, 10, snoozed_until=uk("2021-06-22T12:00"))
    seen = run(
        facts(recipients=[snoozed], meetings=[MEETING]),
        "2021-06-10T09:00",
        "2021-06-24T12:00",
        kinds=MEETINGS,
    )
    # The 7-day reminder was held until the snooze ended, then the 1-day one overtook it.
    assert sent(seen) == [
        "Tue 22 Jun 12:00 meeting 7d",
        "Wed 23 Jun 10:00 meeting 1d",
        "Thu 24 Jun 08:00 meeting 2h",
    ]


def test_a_snooze_past_the_event_expires_the_reminders() -> None:
    snoozed = Recipient(1, Role.CHAIR, 10, snoozed_until=uk("2021-06-30T12:00"))
    seen = run(
        facts(recipients=[snoozed], meetings=[MEETING]),
        "2021-06-10T09:00",
        "2021-06-25T12:00",
        kinds=MEETINGS,
    )
    assert sent(seen) == []
    assert set(states(seen).values()) == {OutboxState.EXPIRED}


def test_a_kind_turned_off_is_recorded_not_sent() -> None:
    muted = Recipient(1, Role.CHAIR, 10, muted=frozenset({Topic.MEETINGS}))
    seen = run(
        facts(recipients=[muted], meetings=[MEETING]),
        "2021-06-16T09:00",
        "2021-06-24T12:00",
        kinds=MEETINGS,
    )
    assert set(states(seen).values()) == {OutboxState.MUTED}


def test_an_unreachable_member_is_recorded_not_sent() -> None:
    blocked = Recipient(1, Role.CHAIR, 10, unreachable=True)
    seen = run(
        facts(recipients=[blocked], meetings=[MEETING]),
        "2021-06-16T09:00",
        "2021-06-18T12:00",
        kinds=MEETINGS,
    )
    assert set(states(seen).values()) == {OutboxState.UNDELIVERABLE}


def test_yearly_deadlines_remind_the_organisations_every_year() -> None:
    contributions = DeadlineFacts(3, date(2022, 1, 31), True, frozenset({10}))
    data = facts(deadlines=[contributions])
    seen = [
        entry
        for start, end in (
            ("2021-12-20T09:00", "2022-02-01T09:00"),
            ("2022-12-20T09:00", "2023-02-01T09:00"),
        )
        for entry in run(
            data, start, end, step=timedelta(hours=1), kinds=frozenset({ReminderKind.DEADLINE})
        )
    ]
    assert sent(seen, CHAIR) == sent(seen, COUNCIL)  # both work for organisation 10
    assert sent(seen, POLICE) == []
    assert sent(seen, CHAIR) == [
        # 1 January 2022 was a Saturday and 3 January the New Year holiday in lieu
        "Tue 04 Jan 08:00 deadline 30d",
        "Mon 17 Jan 09:00 deadline 14d",
        "Mon 24 Jan 09:00 deadline 7d",
        # Sunday 30 January waits for Monday morning: still in time on the day itself
        "Mon 31 Jan 08:00 deadline 1d",
        "Tue 03 Jan 08:00 deadline 30d",
        "Tue 17 Jan 09:00 deadline 14d",
        "Tue 24 Jan 09:00 deadline 7d",
        "Mon 30 Jan 09:00 deadline 1d",
    ]


def action(**changes: object) -> ActionFacts:
    values: dict[str, object] = {
        "id": 5,
        "due_on": date(2021, 7, 30),  # a Friday
        "complete": False,
        "lead_organisation_id": 12,
        "owner_member_ids": (),
        "last_update_at": uk("2021-07-20T10:00"),
        "last_activity": uk("2021-07-20T10:00"),
    }
    return ActionFacts(**(values | changes))  # type: ignore[arg-type]


def test_actions_remind_before_due_then_weekly_while_overdue() -> None:
    seen = run(
        facts(recipients=NO_CHAIR, actions=[action()]),
        "2021-07-20T09:00",
        "2021-08-16T10:00",
        step=timedelta(hours=1),
    )
    assert sent(seen) == [
        "Fri 23 Jul 09:00 action_due 7d",
        "Thu 29 Jul 09:00 action_due 1d",
        "Mon 02 Aug 08:00 action_overdue w1",  # Saturday 31 July waits for Monday
        "Mon 09 Aug 08:00 action_overdue w2",
        "Mon 16 Aug 08:00 action_overdue w3",
    ]
    assert {due.member_id for _, due in seen} == {POLICE.id}  # the lead's partner


def test_an_action_owner_is_reminded_instead_of_the_partners() -> None:
    seen = run(
        facts(recipients=NO_CHAIR, actions=[action(owner_member_ids=(BOARD.id,))]),
        "2021-07-22T09:00",
        "2021-07-24T09:00",
    )
    assert {due.member_id for _, due in seen} == {BOARD.id}


def test_a_complete_action_is_never_reminded() -> None:
    assert (
        run(
            facts(recipients=NO_CHAIR, actions=[action(complete=True)]),
            "2021-07-20T09:00",
            "2021-08-20T09:00",
            step=timedelta(hours=6),
        )
        == []
    )


def test_a_quiet_action_prompts_after_28_days_and_a_snooze_moves_the_prompt() -> None:
    quiet = action(due_on=None, last_update_at=None, last_activity=uk("2021-06-01T11:00"))
    seen = run(
        facts(recipients=NO_CHAIR, actions=[quiet]),
        "2021-06-01T09:00",
        "2021-07-30T09:00",
        step=timedelta(hours=1),
    )
    assert sent(seen) == [
        "Tue 29 Jun 11:00 checkin 20210629T1000Z",
        "Tue 27 Jul 11:00 checkin 20210727T1000Z",
    ]
    snoozed = action(
        due_on=None,
        last_update_at=None,
        last_activity=uk("2021-06-01T11:00"),
        snoozed_until=uk("2021-07-06T11:00"),
    )
    seen = run(
        facts(recipients=NO_CHAIR, actions=[snoozed]),
        "2021-06-01T09:00",
        "2021-07-10T09:00",
        step=timedelta(hours=1),
    )
    assert sent(seen) == ["Tue 06 Jul 11:00 checkin 20210706T1000Z"]


def test_before_a_meeting_owners_are_asked_for_returns_and_the_chair_told_who_is_missing() -> None:
    earlier = MeetingFacts(6, uk("2021-05-20T10:00"))
    stale = action(id=1, due_on=None, last_update_at=uk("2021-05-01T10:00"))
    fresh = action(
        id=2, due_on=None, lead_organisation_id=10, last_update_at=uk("2021-06-01T10:00")
    )
    data = facts(meetings=[earlier, MEETING], actions=[stale, fresh])
    seen = [
        (now, due)
        for now, due in run(data, "2021-06-10T09:00", "2021-06-24T12:00")
        if due.kind.value.startswith("returns")
    ]
    assert sent(seen, POLICE) == [
        "Mon 14 Jun 10:00 returns_request 10d",
        "Mon 21 Jun 10:00 returns_request 3d",
    ]
    assert sent(seen, COUNCIL) == []  # its action was updated since the last meeting
    assert sent(seen, CHAIR) == ["Wed 23 Jun 10:00 returns_chair 1d"]


def test_the_digest_goes_to_the_chair_on_monday_mornings() -> None:
    admin = Recipient(9, Role.ADMIN, 10)
    seen = run(
        facts(recipients=[CHAIR, admin, BOARD]),
        "2021-05-23T09:00",
        "2021-06-08T09:00",
        step=timedelta(hours=1),
        kinds=frozenset({ReminderKind.DIGEST}),
    )
    digests = [entry for entry in sent(seen, CHAIR) if "digest" in entry]
    # Monday 31 May was the Spring bank holiday: that week's digest came on Tuesday.
    assert digests == [
        "Mon 24 May 09:00 digest 2021-05-24",
        "Tue 01 Jun 08:00 digest 2021-05-31",
        "Mon 07 Jun 09:00 digest 2021-06-07",
    ]
    assert sent(seen, admin) == digests
    assert sent(seen, BOARD) == []


def large_plan(now: datetime) -> Facts:
    """10,000 actions and 100 meetings for 40 organisations with 6 members each (3 of them
    partners who own actions), half the actions overdue and a third without a recent update."""
    chooser = random.Random(5)
    roles = [Role.PARTNER, Role.PARTNER, Role.PARTNER, Role.BOARD, Role.OBSERVER, Role.OBSERVER]
    members = [Recipient(n, roles[n % 6], n % 40) for n in range(1, 241)]
    members += [Recipient(1000, Role.CHAIR, 0), Recipient(1001, Role.ADMIN, 0)]
    actions = [
        ActionFacts(
            id=n,
            due_on=date(2021, 4, 1) + timedelta(days=chooser.randrange(365)),
            complete=chooser.random() < 0.2,
            lead_organisation_id=n % 40,
            owner_member_ids=(),
            last_update_at=now - timedelta(days=chooser.randrange(60)),
            last_activity=now - timedelta(days=chooser.randrange(60)),
        )
        for n in range(1, 10_001)
    ]
    meetings = [MeetingFacts(n, now + timedelta(days=7 * n - 350, hours=n % 5)) for n in range(100)]
    deadlines = [
        DeadlineFacts(n, date(2022, 1 + n % 12, 1 + n % 28), True, frozenset({n % 40}))
        for n in range(20)
    ]
    return Facts(members, meetings, deadlines, actions, plan_starts_at=uk("2021-04-01T00:00"))


def test_a_large_plan_is_planned_and_nothing_twice() -> None:
    # How long this takes is measured by benchmarks/bench_reminders.py, not asserted here:
    # a busy CI machine makes any run slower.
    now = uk("2021-10-12T10:00")
    data, plan = large_plan(now), rules()
    first = due_reminders(data, plan, now, {})
    assert any(due.kind == ReminderKind.ACTION_OVERDUE for due in first)
    recorded = recorded_index(due.key for due in first)
    later = due_reminders(data, plan, now + timedelta(minutes=1), recorded)
    assert not {due.key for due in later} & {due.key for due in first}
