"""Planning from what changed records exactly what the full planner records.

Two databases get the same plan, people and changes; the full planner (`plan_reminders`,
which reads everything each round) plans one and the incremental `Planner` the other, at
the same moments. After every round their outboxes must be the same, row for row.
"""

from __future__ import annotations

import contextlib
import random
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from csp_bot.bot.app import reminder_rules
from csp_bot.bot.demo import EXAMPLE_PLAN
from csp_bot.bot.settings import Settings
from csp_bot.models.absences import end_absence, start_absence
from csp_bot.models.audit import CLI, Actor
from csp_bot.models.data_version import data_version, planning_version
from csp_bot.models.db import Database, is_sqlite, make_engine
from csp_bot.models.deadlines import add_deadline
from csp_bot.models.enums import Status
from csp_bot.models.errors import DomainError
from csp_bot.models.lifecycle import deactivate_member
from csp_bot.models.measures import priority_measures, proposed_period, record_figure
from csp_bot.models.meetings import schedule_meeting
from csp_bot.models.membership import add_member
from csp_bot.models.outbox import mark_unreachable
from csp_bot.models.owners import add_owner, remove_owner
from csp_bot.models.plan_import import import_plan_file
from csp_bot.models.progress import log_progress
from csp_bot.models.reminder_types import ReminderKind, Topic
from csp_bot.models.reminders import mark_reachable, set_topic, snooze, snooze_action
from csp_bot.models.tables import (
    Absence,
    Action,
    ActionOwner,
    MeasureOwner,
    Member,
    Organisation,
    OutboxEntry,
)
from csp_bot.scheduler.due import Rules
from csp_bot.scheduler.incremental import Planner, plan_round
from csp_bot.scheduler.rounds import plan_reminders
from tests.conftest import START, migrated_postgres_url, postgres_engine
from tests.harness import PEOPLE
from tests.reminder_helpers import uk

ORGANISATIONS = sorted({person.organisation for person in PEOPLE.values()})
ROLES = ["partner", "partner", "board", "observer", "chair"]
# Clock steps, in minutes: single minutes around due moments as well as hours and days.
STEPS = [1, 1, 1, 2, 9, 59, 60, 180, 601, 1439, 1440, 2 * 1440, 3 * 1440 + 7, 8 * 1440]
# Mostly single minutes: a reminder found a round late would be recorded a minute late.
MINUTE_STEPS = [1, 1, 1, 1, 1, 1, 1, 1, 2, 13, 60, 300]

Row = tuple[Any, ...]


def more_seeds_on_sqlite(*seeds: int) -> list[Any]:
    return [pytest.param(seed, marks=pytest.mark.sqlite_only) for seed in seeds]


@pytest.fixture
def twin(database_url: str, migrated_sqlite: Path, tmp_path: Path) -> Iterator[Database]:
    """A second database on the same backend as `db`, migrated and empty."""
    if database_url.startswith("sqlite:///"):
        path = tmp_path / "twin.db"
        shutil.copyfile(migrated_sqlite, path)
        database = Database(make_engine(f"sqlite:///{path}"))
        yield database
        database.close()
        return
    schemas = migrated_postgres_url()
    database = Database(postgres_engine(next(schemas)))
    yield database
    database.close()
    next(schemas, None)


# The recorded reminder's columns the two databases must agree on (not the ids, which they
# number differently).
OUTBOX_FACTS = (
    OutboxEntry.kind,
    OutboxEntry.subject_id,
    OutboxEntry.member_id,
    OutboxEntry.occurrence,
    OutboxEntry.fire_at,
    OutboxEntry.send_at,
    OutboxEntry.expires_at,
    OutboxEntry.state,
    OutboxEntry.recorded_at,
)


def outbox_rows(db: Database) -> list[Row]:
    """Every recorded reminder, as plain rows (read after every round: no ORM objects)."""

    def read(session: Session) -> list[Row]:
        return sorted(tuple(row) for row in session.connection().execute(sa_select(*OUTBOX_FACTS)))

    return db.call(read)


def start_plan(db: Database) -> None:
    db.call(import_plan_file, path=EXAMPLE_PLAN, at=START)
    for person in PEOPLE.values():
        db.call(
            add_member,
            telegram_id=person.user.id,
            name=person.user.first_name,
            organisation=person.organisation,
            role=person.role,
            at=START,
            actor=CLI,
        )
    # A partner in every organisation, so that every action reminds someone.
    for number, organisation in enumerate(db.call(organisation_names)):
        db.call(
            add_member,
            telegram_id=3000 + number,
            name=f"Partner {number}",
            organisation=organisation,
            role="partner",
            at=START,
            actor=CLI,
        )


def organisation_names(session: Session) -> list[str]:
    return sorted(session.exec(select(Organisation.name)).all())


def ids(db: Database, table: Any) -> list[int]:
    return db.call(lambda session: sorted(session.exec(select(table.id)).all()))


# --- the changes: each is chosen once and applied to both databases ---------------------------


Change = Callable[[Database, datetime], object]


def choose_change(
    chooser: random.Random, db: Database, now: datetime, often: float, cover: bool = False
) -> Change | None:
    """One change people might make at `now` (with probability `often`), or None; with
    `cover`, linking owners and members going away and coming back are among them."""
    if chooser.random() >= often:
        return None
    members, actions = ids(db, Member), ids(db, Action)
    member, action = chooser.choice(members), chooser.choice(actions)
    days = chooser.choice([1, 3, 7, 14])
    kinds: list[Change] = [
        lambda d, at: d.call(
            log_progress,
            ref=ref_of(d, action),
            member_id=chair_id(d),
            status=chooser_status(action, at),
            note="Progress as planned",
            at=at,
        ),
        lambda d, at: d.call(snooze, member_id=member, until=at + timedelta(days=days), at=at),
        lambda d, at: d.call(snooze, member_id=member, until=None, at=at),
        lambda d, at: d.call(set_topic, member_id=member, topic=Topic.ACTIONS, on=days > 3, at=at),
        lambda d, at: d.call(mark_unreachable, member_id=member, at=at),
        lambda d, at: d.call(mark_reachable, telegram_id=telegram_id_of(d, member)),
        lambda d, at: d.call(
            add_member,
            telegram_id=5000 + len(members),
            name=f"New member {len(members)}",
            organisation=ORGANISATIONS[(member + days) % len(ORGANISATIONS)],
            role=ROLES[(action + days) % len(ROLES)],
            at=at,
            actor=CLI,
        ),
        lambda d, at: d.call(deactivate_member, member_id=member, at=at, actor=CLI),
        lambda d, at: d.call(
            schedule_meeting,
            title=f"Board {at:%Y%m%d%H%M}",
            starts_at=at + timedelta(days=days, hours=days),
            location="",
            agenda=[],
            at=at,
            actor=CLI,
        ),
        lambda d, at: d.call(
            add_deadline,
            title=f"Deadline {at:%Y%m%d%H%M}",
            due_on=f"{(at + timedelta(days=days * 3)):%Y-%m-%d}",
            yearly=days % 2 == 1,
            organisations=[],
            description="",
            at=at,
            actor=CLI,
        ),
        lambda d, at: d.call(
            snooze_action,
            action_id=action,
            member_id=chair_id(d),
            until=at + timedelta(days=days),
            at=at,
        ),
        lambda d, at: send_figure(d, (action + days) % 6, at),
    ]
    if cover:
        kinds += cover_changes(chooser, db, member, action, days)
    return chooser.choice(kinds)


def send_figure(db: Database, which: int, at: datetime) -> None:
    """A figure for one of the sample plan's measures, for its latest ended period."""
    view = db.call(priority_measures)[which]
    period = proposed_period(view, today=at.date())
    db.call(record_figure, code=view.code, period=period, value=1.0, note="", at=at, actor=CLI)


def cover_changes(
    chooser: random.Random, db: Database, member: int, action: int, days: int
) -> list[Change]:
    """Owners linked and unlinked, absences begun and ended. The one going away is mostly
    someone with a colleague to cover (who may since have left: refused, as is now and then
    covering for oneself)."""
    teams = [team for team in db.call(teams_of) if len(team) > 1]
    team = chooser.choice(teams)
    away, deputy = chooser.sample(team, 2)
    if chooser.random() < 0.2:
        deputy = away
    return [
        lambda d, at: d.call(add_owner, ref=ref_of(d, action), member_id=member, at=at, actor=CLI),
        lambda d, at: d.call(
            remove_owner, ref=ref_of(d, action), member_id=member, at=at, actor=CLI
        ),
        lambda d, at: d.call(
            add_owner, ref=code_of(d, action + days), member_id=member, at=at, actor=CLI
        ),
        lambda d, at: d.call(
            remove_owner, ref=code_of(d, action + days), member_id=member, at=at, actor=CLI
        ),
        lambda d, at: d.call(start_absence, member_id=away, deputy_id=deputy, days=days, at=at),
        lambda d, at: d.call(end_absence, member_id=away, at=at),
        lambda d, at: d.call(end_absence, member_id=member, at=at),
    ]


def code_of(db: Database, which: int) -> str:
    """One of the sample plan's six measures."""
    return db.call(priority_measures)[which % 6].code


def teams_of(session: Session) -> list[list[int]]:
    """The members of each organisation."""
    teams: dict[int, list[int]] = {}
    for member_id, organisation in session.exec(select(Member.id, Member.organisation_id)):
        if member_id is not None:
            teams.setdefault(organisation, []).append(member_id)
    return [sorted(team) for _, team in sorted(teams.items())]


def chooser_status(action: int, at: datetime) -> Status:
    statuses = [Status.GREEN, Status.AMBER, Status.RED, Status.COMPLETE, Status.GREEN]
    return statuses[(action + at.day) % len(statuses)]


def ref_of(db: Database, action: int) -> str:
    return db.call(lambda session: session.get_one(Action, action).ref)


def telegram_id_of(db: Database, member: int) -> int:
    return db.call(lambda session: session.get_one(Member, member).telegram_id)


def chair_id(db: Database) -> int:
    chair = PEOPLE["chair"].user.id
    return db.call(
        lambda session: session.exec(select(Member.id).where(Member.telegram_id == chair)).one()
    )


def apply(change: Change | None, db: Database, now: datetime) -> None:
    if change is None:
        return
    # Refused the same way in both (the last coordinator, a meeting twice, ...).
    with contextlib.suppress(DomainError):
        change(db, now)


# --- the comparison ----------------------------------------------------------------------------


def run_side_by_side(
    full: Database,
    incremental: Database,
    rules: Rules,
    seed: int,
    steps: list[int] = STEPS,
    rounds: int = 90,
    changes: float = 0.55,
    cover: bool = False,
) -> int:
    """Change, move the clock, plan both ways; returns how many reminders were recorded."""
    chooser = random.Random(seed)
    planner = Planner()
    now = START
    for _ in range(rounds):
        change = choose_change(chooser, full, now, changes, cover)
        apply(change, full, now)
        apply(change, incremental, now)
        full.call(plan_reminders, rules=rules, now=now, reported=set())
        plan_round(incremental, planner, rules=rules, now=now, reported=set())
        assert outbox_rows(incremental) == outbox_rows(full), f"at {now}, seed {seed}"
        now += timedelta(minutes=chooser.choice(steps))
    return len(outbox_rows(full))


def rounds_on(db: Database, rounds: int) -> int:
    """All the rounds on SQLite; two thirds on PostgreSQL, where each costs twice as much:
    that run is there to try the planner's statements on PostgreSQL (the shorter run still
    makes every kind of change), the SQLite seeds to try long paths through them."""
    return rounds if is_sqlite(db.engine) else rounds * 2 // 3


# One seed on PostgreSQL shows the same SQL there; more seeds try more paths through it.
@pytest.mark.parametrize("seed", [1, *more_seeds_on_sqlite(2, 3)])
def test_incremental_planning_records_what_the_full_planner_records(
    db: Database, twin: Database, settings: Settings, seed: int
) -> None:
    start_plan(db)
    start_plan(twin)
    rounds = rounds_on(db, 90)
    recorded = run_side_by_side(db, twin, reminder_rules(settings), seed, rounds=rounds)
    assert recorded > 50  # the runs cross many due moments, not a quiet stretch


@pytest.mark.parametrize("seed", [6, *more_seeds_on_sqlite(10)])
def test_owners_and_deputies_are_planned_as_the_full_planner_plans_them(
    db: Database, twin: Database, settings: Settings, seed: int
) -> None:
    """Several owners, members away with deputies, absences ending early and by time."""
    start_plan(db)
    start_plan(twin)
    rules = reminder_rules(settings)
    recorded = run_side_by_side(db, twin, rules, seed, rounds=rounds_on(db, 120), cover=True)
    assert recorded > 50
    # The runs did cover something: deputies named, owners linked.
    assert db.call(lambda session: session.exec(select(Absence)).all())
    assert db.call(lambda session: session.exec(select(ActionOwner)).all())
    assert db.call(lambda session: session.exec(select(MeasureOwner)).all())


# Time rules alone: the other comparisons show the planner's SQL on PostgreSQL.
@pytest.mark.sqlite_only
def test_quiet_hours_off_and_short_offsets_too(db: Database, twin: Database) -> None:
    """Reminders that go the moment they fall due, at offsets of minutes."""
    settings = Settings(
        telegram_token=None,
        quiet_hours="off",
        meeting_reminders="2d,3h,10m",
        action_reminders="3d,1h",
        quiet_days=1,
    )
    start_plan(db)
    start_plan(twin)
    rules = reminder_rules(settings)
    # Few changes: most reminders fall due with time alone.
    recorded = run_side_by_side(
        db, twin, rules, seed=4, steps=MINUTE_STEPS, rounds=240, changes=0.05
    )
    assert recorded > 20


# Time rules alone: the other comparisons show the planner's SQL on PostgreSQL.
@pytest.mark.sqlite_only
def test_due_dates_far_ahead_with_check_ins_further_still(db: Database, twin: Database) -> None:
    """Nothing but time: an action's due-date reminders come into view weeks before they go,
    while its next check-in is further off still."""
    settings = Settings(telegram_token=None, quiet_days=365)
    start_plan(db)
    start_plan(twin)
    rules = reminder_rules(settings)
    days = [1440, 1441, 1439]
    recorded = run_side_by_side(db, twin, rules, seed=5, steps=days, rounds=130, changes=0)
    assert recorded > 20


def test_an_action_added_after_the_returns_request_went_asks_its_partner_too(
    db: Database, twin: Database, settings: Settings
) -> None:
    """A new action has no update, so it is missing from the returns: its organisation's
    partner is asked at once, though the request about the meeting went days before."""
    rules = reminder_rules(settings)
    planner = Planner()
    for database in (db, twin):
        start_plan(database)
        with database.engine.begin() as connection:
            connection.execute(insert(Organisation).values(name="Rockingham Housing", kind="wider"))
        database.call(
            add_member,
            telegram_id=4100,
            name="Housing partner",
            organisation="Rockingham Housing",
            role="partner",
            at=START,
            actor=CLI,
        )
        database.call(
            schedule_meeting,
            title="Board",
            starts_at=uk("2021-06-24T10:00"),
            location="",
            agenda=[],
            at=START,
            actor=CLI,
        )

    def both_at(moment: str) -> None:
        db.call(plan_reminders, rules=rules, now=uk(moment), reported=set())
        plan_round(twin, planner, rules=rules, now=uk(moment), reported=set())
        assert outbox_rows(twin) == outbox_rows(db), moment

    both_at("2021-06-10T10:00")
    both_at("2021-06-14T10:00")  # ten days before: the returns request goes
    for database in (db, twin):
        add_action_of(database, "Rockingham Housing", at=uk("2021-06-14T10:30"))
    both_at("2021-06-14T10:31")
    asked = [row for row in outbox_rows(twin) if row[0] == ReminderKind.RETURNS_REQUEST]
    assert "Housing partner" in {name_of(twin, row[2]) for row in asked}


def add_action_of(db: Database, organisation: str, *, at: datetime) -> None:
    """An action added as a plan import would add it (plain SQL counts like any write)."""
    with db.engine.begin() as connection:
        lead = connection.execute(
            select(Organisation.id).where(Organisation.name == organisation)
        ).scalar_one()
        priority = connection.execute(select(Action.priority_id)).scalars().first()
        connection.execute(
            insert(Action).values(
                ref="SOC-99",
                priority_id=priority,
                title="Tenancy enforcement pilot",
                lead_organisation_id=lead,
                status=Status.NOT_STARTED,
                status_at=at,
            )
        )


def test_a_meeting_s_reminders_are_recorded_as_their_moments_pass(
    db: Database, settings: Settings
) -> None:
    """The expected outbox, written out, as the clock moves across each offset (7d, 1d, 2h)."""
    start_plan(db)
    rules = reminder_rules(settings)
    planner = Planner()
    meeting = db.call(
        schedule_meeting,
        title="Board",
        starts_at=uk("2021-06-24T10:00"),
        location="",
        agenda=[],
        at=START,
        actor=CLI,
    )

    def meeting_reminders(at: str) -> list[tuple[str, str, str]]:
        plan_round(db, planner, rules=rules, now=uk(at))
        return sorted(
            (name_of(db, row[2]), row[3], row[7].value)
            for row in outbox_rows(db)
            if row[0] == ReminderKind.MEETING and row[1] == meeting.id
        )

    assert meeting_reminders("2021-06-17T09:59") == []
    seven_days = [
        ("Mike", "20210624T0900Z/7d", "pending"),
        ("Priya", "20210624T0900Z/7d", "pending"),
        ("Sarah", "20210624T0900Z/7d", "pending"),
    ]
    assert meeting_reminders("2021-06-17T10:00") == seven_days
    assert meeting_reminders("2021-06-23T09:59") == seven_days
    one_day = [
        ("Mike", "20210624T0900Z/1d", "pending"),
        ("Priya", "20210624T0900Z/1d", "pending"),
        ("Sarah", "20210624T0900Z/1d", "pending"),
    ]
    assert meeting_reminders("2021-06-23T10:00") == sorted(seven_days + one_day)
    two_hours = [
        ("Mike", "20210624T0900Z/2h", "pending"),
        ("Priya", "20210624T0900Z/2h", "pending"),
        ("Sarah", "20210624T0900Z/2h", "pending"),
    ]
    assert meeting_reminders("2021-06-24T08:00") == sorted(seven_days + one_day + two_hours)


def name_of(db: Database, member: int) -> str:
    return db.call(lambda session: session.get_one(Member, member).name)


def test_a_snooze_moves_the_planning_version_but_not_the_answers_version(
    db: Database, people: Any
) -> None:
    answers, planning = db.call(data_version), db.call(planning_version)
    member = people["chair"].id
    db.call(snooze, member_id=member, until=START + timedelta(days=1), at=START)
    assert db.call(data_version) == answers
    assert db.call(planning_version) == planning + 1


def test_a_round_with_nothing_changed_reads_no_facts(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_plan(db)
    rules, planner = reminder_rules(settings), Planner()
    plan_round(db, planner, rules=rules, now=START)
    read: list[datetime] = []
    monkeypatch.setattr(
        "csp_bot.scheduler.incremental.load_facts",
        lambda session, **kwargs: read.append(kwargs["now"]),
    )
    plan_round(db, planner, rules=rules, now=START + timedelta(minutes=1))
    assert read == []


def test_a_failed_round_is_planned_whole_again(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round cut short (the database failed mid-way) keeps nothing half done."""
    start_plan(db)
    rules, planner = reminder_rules(settings), Planner()
    plan_round(db, planner, rules=rules, now=START)
    db.call(
        add_member,
        telegram_id=4242,
        name="Newcomer",
        organisation="Northants Police",
        role="partner",
        at=START,
        actor=Actor.member(1),
    )

    def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr("csp_bot.scheduler.incremental.record_due", failing)
    with pytest.raises(RuntimeError):
        plan_round(db, planner, rules=rules, now=START + timedelta(minutes=1))
    assert planner.known is None
