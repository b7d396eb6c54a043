"""What is due: every reminder whose moment has come, worked out from the data and a clock.

`due_reminders` is a pure function. It is given the facts (members, meetings, deadlines,
actions, loaded by `models.reminder_facts.load_facts`), the rules (offsets, quiet hours) and
the time, plus the reminders already recorded in the outbox, and returns what to record now:
reminders to send, and those whose moment passed while the bot could not send them. The
database stays the source of truth; the scheduler only decides how often to ask.

Each subject (a meeting, a deadline, an action, a meeting's returns, a member, the digest) is
worked out on its own: one that cannot be (a date at the edge of the calendar, say) is logged
and skipped, and everyone else's reminders still go. The caller passes a set of the subjects
already logged, and keeps it between rounds, so each is logged once, not every minute.

`work_out` is the same work for any chosen subjects: `scheduler.incremental` works out only
those that changed or whose next moment has come, and gets the same reminders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from csp_bot.models.access import CHAIRS, INVITED, ORGANISATION_CONTACTS
from csp_bot.models.deadlines import yearly_date
from csp_bot.models.enums import Role
from csp_bot.models.localtime import Offset, local_moment, parse_offsets
from csp_bot.models.reminder_types import (
    ABOUT_ACTION,
    ABOUT_DEADLINE,
    ABOUT_DIGEST,
    ABOUT_MEASURE,
    ABOUT_MEETING,
    ABOUT_RETURNS,
    LOOKBACK,
    ActionFacts,
    DeadlineFacts,
    Due,
    Facts,
    MeasureFacts,
    MeetingFacts,
    OutboxState,
    Recipient,
    Recorded,
    ReminderKind,
    Subject,
    report_failure,
)
from csp_bot.models.values import Period
from csp_bot.scheduler.timing import SEARCH_DAYS, WorkingCalendar

# A reminder that would land after its event is pulled earlier, by at most this much.
LOOKAHEAD = timedelta(days=SEARCH_DAYS)
# Reminders about a date (a deadline, a due date) count from this time of day.
DAY_TIME = time(9, 0)
RETURNS_OFFSETS = parse_offsets("10d,3d")
CHAIR_RETURNS_OFFSETS = parse_offsets("1d")
# A meeting's returns are looked at from this long before it.
RETURNS_AHEAD = timedelta(minutes=RETURNS_OFFSETS[0].minutes) + LOOKAHEAD
# Offsets in days keep the wall-clock time, so may be an hour longer across a clock change.
SLACK = timedelta(hours=1)
DIGEST_SUBJECT = 0
DIGEST_STANDS = timedelta(days=1)
# A reminder this late was missed (the dispatcher runs every minute); if the next reminder
# about the same thing goes within MERGE_WINDOW, the late one is not sent as well.
LATE = timedelta(minutes=10)
MERGE_WINDOW = timedelta(hours=12)


# Kinds with several reminders about one occurrence of one thing (one per offset).
OFFSET_KINDS = frozenset(
    {
        ReminderKind.MEETING,
        ReminderKind.DEADLINE,
        ReminderKind.ACTION_DUE,
        ReminderKind.RETURNS_REQUEST,
    }
)


@dataclass(frozen=True)
class Rules:
    """The settings that shape reminders."""

    zone: ZoneInfo
    calendar: WorkingCalendar
    meeting_offsets: tuple[Offset, ...]
    deadline_offsets: tuple[Offset, ...]
    action_offsets: tuple[Offset, ...]
    quiet_after: timedelta
    # Working days after a period ends by which its figures are due (CSPBOT_FIGURE_DAYS).
    figure_days: int = 10


@dataclass(frozen=True)
class Occasion:
    """One reminder about one thing, for a group of members."""

    kind: ReminderKind
    subject_id: int
    occurrence: str
    fire_at: datetime
    expires_at: datetime
    recipients: Sequence[Recipient]


def due_reminders(
    facts: Facts,
    rules: Rules,
    now: datetime,
    recorded: Recorded,
    reported: set[Subject] | None = None,
) -> list[Due]:
    """Reminders whose time has come (or passed unsent) and that are not recorded yet."""
    # A subject that fails is skipped and added to `reported`, logged only if not in it yet.
    reported = set() if reported is None else reported
    people = People(usable_recipients(facts.recipients, rules, reported))
    return work_out(subjects(facts, people, rules, now), rules, now, recorded, reported).dues


# When a subject may next have a reminder due, given its occasions now and what is recorded.
WakeRule = Callable[[Subject, Sequence[Occasion], Recorded], datetime | None]
Work = tuple[Subject, Callable[[], Iterable[Occasion]]]


@dataclass
class Worked:
    """What working out some subjects gave: the reminders to record, and for each subject
    that worked out, when it next may have one (None: not before its data changes)."""

    dues: list[Due] = field(default_factory=list)
    wakes: dict[Subject, datetime | None] = field(default_factory=dict)
    failed: set[Subject] = field(default_factory=set)


def work_out(
    work: Iterable[Work],
    rules: Rules,
    now: datetime,
    recorded: Recorded,
    reported: set[Subject],
    wake: WakeRule | None = None,
) -> Worked:
    """The reminders due now about each subject of `work`; one that fails is reported."""
    worked = Worked()
    settled: list[Due] = []
    coming: set[tuple[ReminderKind, int]] = set()
    for subject, occasions_of in work:
        try:
            occasions = list(occasions_of())
            if not occasions and wake is None:
                continue  # most subjects, most minutes: spare the rest
            dues = [due for occasion in occasions for due in settle(occasion, rules, now, recorded)]
            soon = coming_soon(occasions, rules, now)
        except Exception:  # one subject's bad data must not stop everyone's reminders
            report_failure(subject, reported)
            worked.failed.add(subject)
            continue
        settled += dues
        coming |= soon
        if wake is not None:
            worked.wakes[subject] = next_wake(wake, subject, occasions, recorded, now)
    worked.dues = collapse(settled, coming, now)
    return worked


def next_wake(
    wake: WakeRule,
    subject: Subject,
    occasions: Sequence[Occasion],
    recorded: Recorded,
    now: datetime,
) -> datetime | None:
    """`wake`'s answer; if it cannot give one, the subject is worked out again next round
    (its reminders were: only the moment to look again is unknown)."""
    try:
        return wake(subject, occasions, recorded)
    except Exception:
        return now


def subjects(
    facts: Facts, people: People, rules: Rules, now: datetime
) -> Iterator[tuple[Subject, Callable[[], Iterable[Occasion]]]]:
    """Each subject with a way to work out its occasions (called inside the caller's guard)."""
    for meeting in facts.meetings:
        yield (ABOUT_MEETING, meeting.id), partial(meeting_occasions, meeting, people, rules, now)
    for deadline in facts.deadlines:
        occasions = partial(deadline_occasions, deadline, people, rules, now)
        yield (ABOUT_DEADLINE, deadline.id), occasions
    for action in facts.actions:
        yield (ABOUT_ACTION, action.id), partial(action_occasions, action, people, rules, now)
    for meeting in facts.meetings:
        returns = partial(returns_occasions, facts, meeting, people, rules, now)
        yield (ABOUT_RETURNS, meeting.id), returns
    yield (ABOUT_DIGEST, DIGEST_SUBJECT), partial(digest_occasions, people, rules, now)
    for measure in facts.measures:
        figures = partial(figure_occasions, measure, people, rules, now, facts.plan_starts_at)
        yield (ABOUT_MEASURE, measure.id), figures


def usable_recipients(
    recipients: Iterable[Recipient], rules: Rules, reported: set[Subject]
) -> Iterator[Recipient]:
    """The recipients whose own data planning can work with (a snooze that can end)."""
    for recipient in recipients:
        try:
            if recipient.snoozed_until is not None:
                rules.calendar.next_open(recipient.snoozed_until)
        except Exception:  # a member's bad snooze must not stop the reminders about a subject
            report_failure(("member", recipient.id), reported)
            continue
        yield recipient


def coming_soon(
    occasions: Iterable[Occasion], rules: Rules, now: datetime
) -> set[tuple[ReminderKind, int]]:
    """The things (kind, subject) with a reminder due to go within `MERGE_WINDOW`."""
    return {
        (occasion.kind, occasion.subject_id)
        for occasion in occasions
        if occasion.kind in OFFSET_KINDS
        and now
        < rules.calendar.send_time(occasion.fire_at, occasion.expires_at)
        <= now + MERGE_WINDOW
    }


class People:
    """The recipients, indexed the ways the rules look them up.

    A member away is replaced, in every list, by their deputy (once, where the deputy is
    there already); with the deputy not an active member, the member stays. One step only:
    a deputy who is away too keeps the reminders they cover for.
    """

    def __init__(self, recipients: Iterable[Recipient]) -> None:
        self.by_id = {recipient.id: recipient for recipient in recipients}
        self.stand_in = {
            recipient.id: self.by_id[recipient.deputy_id]
            for recipient in self.by_id.values()
            if recipient.deputy_id is not None and recipient.deputy_id in self.by_id
        }
        by_organisation: dict[int, list[Recipient]] = {}
        partners: dict[int, list[Recipient]] = {}
        for recipient in self.by_id.values():
            by_organisation.setdefault(recipient.organisation_id, []).append(recipient)
            if recipient.role in ORGANISATION_CONTACTS:
                partners.setdefault(recipient.organisation_id, []).append(recipient)
        self.by_organisation = {key: self.covered(group) for key, group in by_organisation.items()}
        self.partners = {key: self.covered(group) for key, group in partners.items()}
        self.board = self.covered(self.with_roles(INVITED))
        self.chairs = self.covered(self.with_roles(CHAIRS))

    def with_roles(self, roles: frozenset[Role]) -> list[Recipient]:
        return [recipient for recipient in self.by_id.values() if recipient.role in roles]

    def covered(self, recipients: Iterable[Recipient]) -> list[Recipient]:
        """`recipients` with those away replaced by their deputies, each once, in order."""
        if not self.stand_in:
            return list(recipients)
        chosen: dict[int, Recipient] = {}
        for recipient in recipients:
            reached = self.stand_in.get(recipient.id, recipient)
            chosen.setdefault(reached.id, reached)
        return list(chosen.values())

    def owners(self, action: ActionFacts) -> list[Recipient]:
        """The action's owners who are active members (before cover)."""
        return [self.by_id[i] for i in action.owner_member_ids if i in self.by_id]

    def for_action(self, action: ActionFacts) -> Sequence[Recipient]:
        """All the action's owners if members own it; otherwise its lead's partners."""
        owners = self.owners(action)
        if owners:
            return self.covered(owners)
        return self.partners.get(action.lead_organisation_id, ())

    def for_measure(self, measure: MeasureFacts) -> Sequence[Recipient]:
        """All the measure's owners if members own it; otherwise its supplier's partners."""
        owners = [self.by_id[i] for i in measure.owner_member_ids if i in self.by_id]
        if owners:
            return self.covered(owners)
        return self.partners.get(measure.supplier_organisation_id, ())


def longest(offsets: Sequence[Offset]) -> timedelta:
    return timedelta(minutes=max((offset.minutes for offset in offsets), default=0))


def in_window(fire_at: datetime, now: datetime) -> bool:
    """Whether a reminder at `fire_at` can matter now: not too old, not too far ahead."""
    return now - LOOKBACK <= fire_at <= now + LOOKAHEAD


def offset_occasions(
    kind: ReminderKind,
    subject_id: int,
    anchor: datetime,
    expires_at: datetime,
    offsets: Sequence[Offset],
    recipients: Sequence[Recipient],
    rules: Rules,
    now: datetime,
) -> Iterator[Occasion]:
    """One occasion per offset before `anchor` that falls in the window."""
    if anchor < now - LOOKBACK or anchor - SLACK > now + LOOKAHEAD + longest(offsets):
        return  # every offset is out of the window: spare working them out
    stamp = f"{anchor:%Y%m%dT%H%MZ}"
    for offset in offsets:
        fire_at = offset.before(anchor, rules.zone)
        if recipients and in_window(fire_at, now):
            occurrence = f"{stamp}/{offset.label}"
            yield Occasion(kind, subject_id, occurrence, fire_at, expires_at, recipients)


# --- the kinds -------------------------------------------------------------------------------


def meeting_occasions(
    meeting: MeetingFacts, people: People, rules: Rules, now: datetime
) -> Iterator[Occasion]:
    """Each board member, at each offset before the meeting."""
    if meeting.starts_at >= now - LOOKBACK:
        yield from offset_occasions(
            ReminderKind.MEETING,
            meeting.id,
            meeting.starts_at,
            meeting.starts_at,
            rules.meeting_offsets,
            people.board,
            rules,
            now,
        )


def deadline_occasions(
    deadline: DeadlineFacts, people: People, rules: Rules, now: datetime
) -> Iterator[Occasion]:
    """The members of the organisations concerned, at each offset before each occurrence."""
    recipients = [
        recipient
        for organisation in sorted(deadline.organisation_ids)
        for recipient in people.by_organisation.get(organisation, ())
    ]
    for day in occurrences_near(deadline, now, rules.zone):
        yield from offset_occasions(
            ReminderKind.DEADLINE,
            deadline.id,
            local_moment(day, DAY_TIME, rules.zone),
            end_of_day(day, rules.zone),
            rules.deadline_offsets,
            recipients,
            rules,
            now,
        )


def occurrences_near(deadline: DeadlineFacts, now: datetime, zone: ZoneInfo) -> list[date]:
    """The deadline's dates from a little before now to a year ahead."""
    if not deadline.yearly:
        return [deadline.due_on]
    this_year = now.astimezone(zone).year
    years = range(max(deadline.due_on.year, this_year - 1), this_year + 2)
    return [yearly_date(deadline.due_on, year) for year in years]


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    """Midnight at the end of `day`: something due on a day is still in time during it."""
    return local_moment(day + timedelta(days=1), time(0), zone)


def action_occasions(
    action: ActionFacts, people: People, rules: Rules, now: datetime
) -> Iterator[Occasion]:
    """Due, overdue and quiet reminders for the action, unless it is complete."""
    if action.complete:
        return
    recipients = people.for_action(action)
    if not recipients:
        return
    overdue = False
    if action.due_on is not None:
        yield from due_date_occasions(action, action.due_on, recipients, rules, now)
        overdue = action.due_on < now.astimezone(rules.zone).date()
        yield from overdue_occasions(action, action.due_on, recipients, rules, now)
    if not overdue:  # an overdue action's weekly reminder already asks for an update
        yield from checkin_occasions(action, recipients, rules, now)


def due_date_occasions(
    action: ActionFacts, due_on: date, recipients: Sequence[Recipient], rules: Rules, now: datetime
) -> Iterator[Occasion]:
    return offset_occasions(
        ReminderKind.ACTION_DUE,
        action.id,
        local_moment(due_on, DAY_TIME, rules.zone),
        end_of_day(due_on, rules.zone),
        rules.action_offsets,
        recipients,
        rules,
        now,
    )


def overdue_occasions(
    action: ActionFacts, due_on: date, recipients: Sequence[Recipient], rules: Rules, now: datetime
) -> Iterator[Occasion]:
    """Weekly from the day after the due date. Only the latest stands (until the next one):
    one missed during downtime is overtaken, not sent late."""
    first = due_on + timedelta(days=1)
    today = now.astimezone(rules.zone).date()
    if today < first:
        return
    week = (today - first).days // 7
    if weekly_moment(first, week, rules.zone) > now:
        week -= 1
    fire_at = weekly_moment(first, week, rules.zone)
    if week >= 0 and in_window(fire_at, now):
        expires_at = weekly_moment(first, week + 1, rules.zone)
        occurrence = f"{due_on:%Y%m%d}/w{week + 1}"
        yield Occasion(
            ReminderKind.ACTION_OVERDUE, action.id, occurrence, fire_at, expires_at, recipients
        )


def weekly_moment(first: date, week: int, zone: ZoneInfo) -> datetime:
    return local_moment(first + timedelta(days=7 * week), DAY_TIME, zone)


def checkin_occasions(
    action: ActionFacts, recipients: Sequence[Recipient], rules: Rules, now: datetime
) -> Iterator[Occasion]:
    """A prompt once an action has gone `quiet_after` without an update, then every
    `quiet_after` while it stays quiet; a snooze moves the next prompt to its end."""
    start = action.last_activity + rules.quiet_after
    if action.snoozed_until is not None and action.snoozed_until > start:
        start = action.snoozed_until
    if start > now:
        return
    fire_at = start + (now - start) // rules.quiet_after * rules.quiet_after
    if in_window(fire_at, now):
        occurrence = f"{fire_at:%Y%m%dT%H%MZ}"
        expires_at = fire_at + rules.quiet_after
        yield Occasion(ReminderKind.CHECKIN, action.id, occurrence, fire_at, expires_at, recipients)


def returns_occasions(
    facts: Facts, meeting: MeetingFacts, people: People, rules: Rules, now: datetime
) -> Iterator[Occasion]:
    """Before a meeting: owners of actions with no update since the last meeting are asked
    for one (10 and 3 days before), and the chair gets the list of who has not (1 day)."""
    if not now - LOOKBACK <= meeting.starts_at <= now + RETURNS_AHEAD:
        return  # too far off: spare working out whose actions are stale
    starts = sorted(other.starts_at for other in facts.meetings)
    since = previous_meeting(starts, meeting.starts_at) or facts.plan_starts_at
    owners = owners_of(stale_actions(facts.actions, since), people)
    for kind, offsets, recipients in (
        (ReminderKind.RETURNS_REQUEST, RETURNS_OFFSETS, owners),
        (ReminderKind.RETURNS_CHAIR, CHAIR_RETURNS_OFFSETS, people.chairs),
    ):
        yield from offset_occasions(
            kind,
            meeting.id,
            meeting.starts_at,
            meeting.starts_at,
            offsets,
            recipients,
            rules,
            now,
        )


def previous_meeting(starts: Sequence[datetime], starts_at: datetime) -> datetime | None:
    earlier = [start for start in starts if start < starts_at]
    return earlier[-1] if earlier else None


def stale_actions(actions: Iterable[ActionFacts], since: datetime | None) -> list[ActionFacts]:
    """Actions not complete with no update since `since` (with no `since`: none at all)."""
    return [
        action
        for action in actions
        if not action.complete
        and (action.last_update_at is None or (since is not None and action.last_update_at < since))
    ]


def owners_of(actions: Iterable[ActionFacts], people: People) -> list[Recipient]:
    """Each member who is asked about at least one of these actions, once."""
    owners: dict[int, Recipient] = {}
    organisations = set()
    for action in actions:
        linked = people.owners(action)
        if not linked:
            organisations.add(action.lead_organisation_id)
        for owner in people.covered(linked):
            owners.setdefault(owner.id, owner)
    for organisation in organisations:
        for partner in people.partners.get(organisation, ()):
            owners.setdefault(partner.id, partner)
    return list(owners.values())


def digest_occasions(people: People, rules: Rules, now: datetime) -> Iterator[Occasion]:
    """The chair's digest, Monday mornings (the next working morning after a bank holiday).
    It stands for a day: a digest days late is news no longer, so it is not sent late."""
    today = now.astimezone(rules.zone).date()
    monday = today - timedelta(days=today.weekday())
    fire_at = local_moment(monday, DAY_TIME, rules.zone)
    if fire_at > now:
        monday -= timedelta(days=7)
        fire_at = local_moment(monday, DAY_TIME, rules.zone)
    expires_at = rules.calendar.next_open(fire_at) + DIGEST_STANDS
    yield Occasion(
        ReminderKind.DIGEST, DIGEST_SUBJECT, monday.isoformat(), fire_at, expires_at, people.chairs
    )


def figure_occasions(
    measure: MeasureFacts,
    people: People,
    rules: Rules,
    now: datetime,
    plan_starts_at: datetime | None,
) -> Iterator[Occasion]:
    """The measure's owners (with none linked, the supplier's partners), when the latest
    period's figure falls due and weekly after,
    while it is missing. The next period's falling due ends the chase of this one; periods
    before the plan started (the baseline's) are never chased. Only the latest stands."""
    recipients = people.for_measure(measure)
    if not recipients or plan_starts_at is None:
        return
    period = figure_period(measure, rules, now)
    if period.starts_on < plan_starts_at.astimezone(rules.zone).date():
        return
    if str(period) in measure.reported:
        return
    first = figure_due_day(period, rules)
    week = (now.astimezone(rules.zone).date() - first).days // 7
    if weekly_moment(first, week, rules.zone) > now:
        week -= 1
    fire_at = weekly_moment(first, week, rules.zone)
    if week >= 0 and in_window(fire_at, now):
        expires_at = min(
            weekly_moment(first, week + 1, rules.zone), figure_due_moment(period.shifted(1), rules)
        )
        occurrence = f"{period}/w{week + 1}"
        yield Occasion(
            ReminderKind.FIGURE_DUE, measure.id, occurrence, fire_at, expires_at, recipients
        )


def figure_period(measure: MeasureFacts, rules: Rules, now: datetime) -> Period:
    """The latest period whose figure has fallen due by `now`."""
    return latest_due_period(rules, now, quarterly=measure.quarterly)


def latest_due_period(rules: Rules, now: datetime, *, quarterly: bool) -> Period:
    """The latest month or quarter whose figures have fallen due by `now`."""
    period = Period.containing(now.astimezone(rules.zone).date(), quarterly=quarterly)
    period = period.shifted(-1)
    while figure_due_moment(period, rules) > now:
        period = period.shifted(-1)
    return period


def figure_due_day(period: Period, rules: Rules) -> date:
    """The `figure_days`-th working day after the period ends."""
    day, left = period.ends_on, rules.figure_days
    while left > 0:
        day += timedelta(days=1)
        left -= rules.calendar.is_working_day(day)
    return day


def figure_due_moment(period: Period, rules: Rules) -> datetime:
    return local_moment(figure_due_day(period, rules), DAY_TIME, rules.zone)


# --- settling: when each goes, and in what state it is recorded --------------------------------


def settle(occasion: Occasion, rules: Rules, now: datetime, recorded: Recorded) -> Iterator[Due]:
    """The occasion's reminders that are due now and not yet recorded.

    The hottest loop in planning (a large plan has tens of thousands of reminders), so the
    per-member work is kept to a few comparisons.
    """
    fire_at, expires_at = occasion.fire_at, occasion.expires_at
    send_at = rules.calendar.send_time(fire_at, expires_at)
    if min(send_at, expires_at) > now:
        return  # not due for anyone: a snooze only ever makes it later
    kind, subject, occurrence = occasion.kind, occasion.subject_id, occasion.occurrence
    done = recorded.get((kind, subject, occurrence), ())
    expired = now >= expires_at or send_at >= expires_at
    topic = kind.topic
    for recipient in occasion.recipients:
        if recipient.id in done:
            continue
        at = send_at
        if recipient.snoozed_until is not None:
            at = held_for_snooze(send_at, recipient, rules)
            if min(at, expires_at) > now:
                continue
        if expired or at >= expires_at:
            state = OutboxState.EXPIRED
        elif recipient.muted and topic in recipient.muted:
            state = OutboxState.MUTED
        elif recipient.unreachable:
            state = OutboxState.UNDELIVERABLE
        else:
            state = OutboxState.PENDING
        yield Due(kind, subject, recipient.id, occurrence, fire_at, at, expires_at, state)


def held_for_snooze(send_at: datetime, recipient: Recipient, rules: Rules) -> datetime:
    """A snoozed member's reminders wait for the snooze to end (and for working hours)."""
    if recipient.snoozed_until is None or send_at >= recipient.snoozed_until:
        return send_at
    return rules.calendar.next_open(recipient.snoozed_until)


def collapse(dues: list[Due], coming: set[tuple[ReminderKind, int]], now: datetime) -> list[Due]:
    """Send one reminder where several would say the same thing, the others superseded:

    - of several going to a member at once about one thing, only the latest ("in 1 day"
      rather than "in 7 days" as well);
    - a late one (missed while the bot was down) when the next about the same thing goes
      within hours anyway.
    """
    latest: dict[tuple[ReminderKind, int, int], int] = {}
    superseded: list[int] = []
    for index, due in enumerate(dues):
        if due.state != OutboxState.PENDING or due.kind not in OFFSET_KINDS:
            continue
        if now - due.send_at > LATE and (due.kind, due.subject_id) in coming:
            superseded.append(index)
            continue
        group = (due.kind, due.subject_id, due.member_id)
        kept = latest.get(group)
        if kept is None:
            latest[group] = index
            continue
        earlier, later = (kept, index) if due.fire_at > dues[kept].fire_at else (index, kept)
        superseded.append(earlier)
        latest[group] = later
    collapsed = list(dues)
    for index in superseded:
        collapsed[index] = dues[index]._replace(state=OutboxState.SUPERSEDED)
    return collapsed
