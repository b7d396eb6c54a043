"""Reading the facts planning works from: one transaction, plain values out.

A row that cannot be turned into facts is logged (once, through `reported`) and left out, as
`scheduler.due` does with a subject it cannot work out: the other rows still count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from csp_bot.models.enums import Recurrence, Status
from csp_bot.models.localtime import local_moment
from csp_bot.models.reminder_types import (
    ActionFacts,
    DeadlineFacts,
    Facts,
    MeasureFacts,
    MeetingFacts,
    Recipient,
    Subject,
    Topic,
    report_failure,
    statement_chunks,
)
from csp_bot.models.tables import (
    Absence,
    Action,
    ActionOwner,
    ActionSnooze,
    Deadline,
    DeadlineOrganisation,
    Measure,
    MeasureFigure,
    MeasureOwner,
    Meeting,
    Member,
    PlanInfo,
    ReminderPreference,
)
from csp_bot.models.types import as_utc

T = TypeVar("T")


def load_facts(
    session: Session,
    *,
    now: datetime,
    zone: ZoneInfo,
    reported: set[Subject] | None = None,
    actions: Sequence[ActionFacts] | None = None,
) -> Facts:
    """Members, meetings, deadlines and actions, as `scheduler.due` needs them; `actions`, if
    given, are the actions as `read_actions` has just read them."""
    reported = set() if reported is None else reported
    plan = session.exec(select(PlanInfo)).first()
    return Facts(
        recipients=_recipients(session, now, reported),
        meetings=each_row(
            "meeting",
            session.execute(sa.select(col(Meeting.id), col(Meeting.starts_at))).all(),
            lambda row: MeetingFacts(row[0], row[1]),
            reported,
        ),
        deadlines=_deadlines(session, reported),
        actions=_actions(session, reported) if actions is None else actions,
        plan_starts_at=None if plan is None else local_moment(plan.starts_on, time(0), zone),
        measures=_measures(session, reported),
    )


def _measures(session: Session, reported: set[Subject]) -> list[MeasureFacts]:
    """Each measure with the periods that have a standing figure."""
    periods: dict[int, set[str]] = {}
    live = col(MeasureFigure.withdrawn_at).is_(None) & col(MeasureFigure.superseded_at).is_(None)
    for measure_id, period in session.execute(
        sa.select(col(MeasureFigure.measure_id), col(MeasureFigure.period)).where(live)
    ).all():
        periods.setdefault(measure_id, set()).add(period)
    rows = session.execute(
        sa.select(
            col(Measure.id), col(Measure.frequency), col(Measure.supplier_organisation_id)
        ).order_by(col(Measure.id))  # plan order, so reminders go in it on every database
    ).all()
    owners = measure_owners(session)
    return each_row(
        "measure",
        rows,
        lambda row: MeasureFacts(
            row[0],
            row[1] == "quarterly",
            row[2],
            frozenset(periods.get(row[0], ())),
            owners.get(row[0], ()),
        ),
        reported,
    )


def measure_owners(session: Session) -> dict[int, tuple[int, ...]]:
    """Each owned measure's owners, in the order they were linked."""
    owners: dict[int, list[int]] = {}
    for measure_id, member_id in session.execute(
        sa.select(col(MeasureOwner.measure_id), col(MeasureOwner.member_id)).order_by(
            col(MeasureOwner.id)
        )
    ).all():
        owners.setdefault(measure_id, []).append(member_id)
    return {measure_id: tuple(ids) for measure_id, ids in owners.items()}


def each_row(
    kind: str,
    rows: Iterable[Sequence[Any]],
    build: Callable[[Sequence[Any]], T],
    reported: set[Subject],
) -> list[T]:
    """`build` of each row (its first column the id); a row it fails on is reported, left out."""
    built = []
    for row in rows:
        try:
            built.append(build(row))
        except Exception:  # one bad row must not keep the others out of planning
            report_failure((kind, row[0]), reported)
    return built


def _recipients(session: Session, now: datetime, reported: set[Subject]) -> list[Recipient]:
    cover = _cover(session, now)
    rows = (
        session.connection()
        .execute(
            sa.select(
                col(Member.id),
                col(Member.role),
                col(Member.organisation_id),
                col(ReminderPreference.muted),
                col(ReminderPreference.snoozed_until),
                col(ReminderPreference.unreachable_since),
            )
            .outerjoin(ReminderPreference, col(ReminderPreference.member_id) == Member.id)
            .where(col(Member.active).is_(True))
        )
        .all()
    )
    return each_row("member", rows, lambda row: _recipient(row, now, cover), reported)


def _cover(session: Session, now: datetime) -> dict[int, tuple[int, datetime]]:
    """Each member away at `now`: their deputy and when the absence ends (the latest
    recorded absence, if several overlap)."""
    rows = session.execute(
        sa.select(col(Absence.member_id), col(Absence.deputy_member_id), col(Absence.ends_at))
        .where(col(Absence.starts_at) <= now, col(Absence.ends_at) > now)
        .order_by(col(Absence.id))
    ).all()
    cover = {}
    for member_id, deputy_id, ends_at in rows:
        until = as_utc(ends_at)
        if until is not None:
            cover[member_id] = (deputy_id, until)
    return cover


def _recipient(
    row: Sequence[Any], now: datetime, cover: dict[int, tuple[int, datetime]]
) -> Recipient:
    member_id, role, organisation_id, muted, snoozed_until, unreachable = row
    deputy_id, away_until = cover.get(member_id, (None, None))
    return Recipient(
        id=member_id,
        role=role,
        organisation_id=organisation_id,
        muted=frozenset(Topic(topic) for topic in muted or ()),
        snoozed_until=snooze_at(snoozed_until, now),
        unreachable=unreachable is not None,
        deputy_id=deputy_id,
        away_until=away_until,
    )


def snooze_at(snoozed_until: datetime | None, now: datetime) -> datetime | None:
    """A member's snooze as planning sees it at `now`: one that has ended is none."""
    return snoozed_until if snoozed_until is not None and snoozed_until > now else None


def _deadlines(session: Session, reported: set[Subject]) -> list[DeadlineFacts]:
    organisations: dict[int, set[int]] = {}
    for deadline_id, organisation_id in session.exec(
        select(DeadlineOrganisation.deadline_id, DeadlineOrganisation.organisation_id)
    ).all():
        organisations.setdefault(deadline_id, set()).add(organisation_id)
    rows = session.execute(
        sa.select(col(Deadline.id), col(Deadline.due_on), col(Deadline.recurrence))
    ).all()
    return each_row(
        "deadline",
        rows,
        lambda row: DeadlineFacts(
            row[0], row[1], row[2] == Recurrence.YEARLY, frozenset(organisations.get(row[0], ()))
        ),
        reported,
    )


# Built once: every round that finds the data changed reads every action's row.
_ACTION_QUERY = sa.select(
    col(Action.id),
    col(Action.due_on),
    col(Action.status),
    col(Action.lead_organisation_id),
    col(Action.status_at),
    col(Action.last_update_at),
    col(ActionSnooze.until),
).outerjoin(ActionSnooze, col(ActionSnooze.action_id) == Action.id)


@dataclass(frozen=True)
class ActionReading:
    """Every action's facts, with its row as the database driver returned it (unconverted)
    and its owners (an action whose owners changed is built again too)."""

    rows: dict[int, tuple[Any, ...]]
    facts: dict[int, ActionFacts]
    owners: dict[int, tuple[int, ...]]


def read_actions(
    session: Session, *, reported: set[Subject], since: ActionReading | None = None
) -> ActionReading:
    """Every action's facts. Given the last reading, only actions whose row changed are built
    again: reading the rows unconverted and comparing them costs a fraction of converting
    every row and building every action's facts."""
    rows = _action_rows(session)
    owners = action_owners(session)
    if since is None:
        built = _actions(session, reported, owners=owners)
        return ActionReading(rows, {action.id: action for action in built}, owners)
    changed = [
        action_id
        for action_id, row in rows.items()
        if since.rows.get(action_id) != row or since.owners.get(action_id) != owners.get(action_id)
    ]
    facts = {action_id: facts for action_id, facts in since.facts.items() if action_id in rows}
    for action_id in changed:
        facts.pop(action_id, None)  # built again below (or left out, if it fails)
    for chunk in statement_chunks(changed):
        for action in _actions(session, reported, ids=chunk, owners=owners):
            facts[action.id] = action
    return ActionReading(rows, facts, owners)


def action_owners(session: Session) -> dict[int, tuple[int, ...]]:
    """Each owned action's owners, in the order they were linked: one small table read
    whole (the actions' own rows are compared as the driver returns them)."""
    owners: dict[int, list[int]] = {}
    rows = session.execute(
        sa.select(col(ActionOwner.action_id), col(ActionOwner.member_id)).order_by(
            col(ActionOwner.id)
        )
    ).all()
    for action_id, member_id in rows:
        owners.setdefault(action_id, []).append(member_id)
    return {action_id: tuple(ids) for action_id, ids in owners.items()}


def _action_rows(session: Session) -> dict[int, tuple[Any, ...]]:
    statement = str(_ACTION_QUERY.compile(dialect=session.get_bind().dialect))
    # The driver's own cursor: its rows are plain tuples, with nothing converted.
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(statement)
        return {row[0]: row for row in cursor.fetchall()}
    finally:
        cursor.close()


def _actions(
    session: Session,
    reported: set[Subject],
    ids: Sequence[int] | None = None,
    owners: dict[int, tuple[int, ...]] | None = None,
) -> list[ActionFacts]:
    """The actions (all, or those of `ids`), each with its latest update not taken back as
    `models.progress` keeps it on the action (`last_update_at`): no search of the updates."""
    query = _ACTION_QUERY
    if ids is not None:
        query = query.where(col(Action.id).in_(ids))
    owned = action_owners(session) if owners is None else owners
    rows = session.connection().execute(query).all()
    return each_row("action", rows, lambda row: _action(row, owned), reported)


def _action(row: Sequence[Any], owners: dict[int, tuple[int, ...]]) -> ActionFacts:
    action_id, due_on, status, lead, status_at, last_at, snoozed = row
    last_update_at = as_utc(last_at)
    return ActionFacts(
        id=action_id,
        due_on=due_on,
        complete=status == Status.COMPLETE,
        lead_organisation_id=lead,
        owner_member_ids=owners.get(action_id, ()),
        last_update_at=last_update_at,
        last_activity=last_update_at or status_at,
        snoozed_until=snoozed,
    )
