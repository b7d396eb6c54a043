"""What a reminder says, read from the data as it is when the reminder goes.

A reminder whose subject has been deleted, moved or dealt with since it was recorded is not
sent: `Withheld` says why and in which state it is recorded instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from csp_bot.models.absences import members_covered
from csp_bot.models.db import DatabaseFailure
from csp_bot.models.deadlines import DeadlineView, get_deadline
from csp_bot.models.digest import Digest, weekly_digest
from csp_bot.models.enums import Status
from csp_bot.models.errors import NotFound
from csp_bot.models.measures import MeasureView, measure_by_id, measure_views, plan_starts_on
from csp_bot.models.meetings import MeetingView, get_meeting, member_reply
from csp_bot.models.membership import active_member_record
from csp_bot.models.owners import owned_measure_ids
from csp_bot.models.progress import ActionView, action_by_id
from csp_bot.models.reminder_types import OutboxState, ReminderKind, Reply
from csp_bot.models.reminders import get_preferences
from csp_bot.models.returns import (
    MissingReturns,
    asked_about,
    awaiting_returns,
    missing_by_organisation,
    owners_by_action,
    returns_since,
)
from csp_bot.models.tables import Member, OutboxEntry
from csp_bot.models.values import Period, parse_period
from csp_bot.scheduler.due import Rules, latest_due_period

if TYPE_CHECKING:  # a session is only passed through to the domain operations in `models`
    from sqlmodel import Session

log = logging.getLogger(__name__)

STAMP = "%Y%m%dT%H%MZ"


@dataclass(frozen=True)
class Withheld:
    """Not sent, and why."""

    state: OutboxState
    reason: str


@dataclass(frozen=True)
class MeetingNotice:
    meeting: MeetingView
    reply: Reply | None


@dataclass(frozen=True)
class DeadlineNotice:
    deadline: DeadlineView


@dataclass(frozen=True)
class ActionNotice:
    kind: ReminderKind
    action: ActionView
    quiet_days: int


@dataclass(frozen=True)
class MissingFigure:
    """A measure whose latest figure due has not been sent."""

    measure: MeasureView
    period: Period


@dataclass(frozen=True)
class ReturnsRequest:
    meeting: MeetingView
    actions: list[ActionView]
    since: datetime | None
    figures: list[MissingFigure] = field(default_factory=list)  # the member's organisation's


@dataclass(frozen=True)
class ReturnsReport:
    meeting: MeetingView
    missing: list[MissingReturns]
    since: datetime | None
    figures: list[MissingFigure] = field(default_factory=list)


@dataclass(frozen=True)
class DigestNotice:
    digest: Digest
    figures: list[MissingFigure] = field(default_factory=list)


@dataclass(frozen=True)
class FigureNotice:
    measure: MeasureView
    period: Period
    chase: int  # 1 when it falls due, 2 a week later, ...


Content = (
    MeetingNotice
    | DeadlineNotice
    | ActionNotice
    | ReturnsRequest
    | ReturnsReport
    | DigestNotice
    | FigureNotice
)


@dataclass(frozen=True)
class Circumstances:
    """What content depends on besides the entry: the time and the settings."""

    now: datetime
    zone: ZoneInfo
    quiet_after: timedelta
    # The reminder rules, for when figures fall due (None: figures are not looked at).
    rules: Rules | None = None


def reminder_content(
    session: Session, *, entry: OutboxEntry, when: Circumstances
) -> Content | Withheld:
    """The reminder's content now, or why it is withheld."""
    member = active_member_record(session, member_id=entry.member_id)
    if member is None:
        return Withheld(OutboxState.DROPPED, "the member has left")
    preferences = get_preferences(session, member_id=entry.member_id)
    if not preferences.receives(entry.kind.topic):
        return Withheld(OutboxState.MUTED, "the member turned these off")
    if preferences.unreachable_since is not None:
        return Withheld(OutboxState.UNDELIVERABLE, "the member has blocked the bot")
    try:
        return READERS[entry.kind](session, entry, member, when)
    except DatabaseFailure:
        raise  # the database failed, not this reminder: it stays pending for the next round
    except Exception:  # this reminder's data cannot be read: it must not stop the others
        log.exception("could not read reminder %s (%s); it is dropped", entry.id, entry.kind)
        return Withheld(OutboxState.DROPPED, "could not be read")


def stamp_of(entry: OutboxEntry) -> datetime:
    """The event time written at the start of the occurrence."""
    return datetime.strptime(entry.occurrence.split("/")[0], STAMP).replace(tzinfo=UTC)


def _meeting(session: Session, entry: OutboxEntry, when: Circumstances) -> MeetingView | Withheld:
    try:
        meeting = get_meeting(session, meeting_id=entry.subject_id)
    except NotFound:
        return Withheld(OutboxState.DROPPED, "the meeting was cancelled")
    if f"{meeting.starts_at:{STAMP}}" != entry.occurrence.split("/")[0]:
        return Withheld(OutboxState.DROPPED, "the meeting was moved")
    if meeting.starts_at <= when.now:
        return Withheld(OutboxState.EXPIRED, "the meeting has started")
    return meeting


def _read_meeting(
    session: Session, entry: OutboxEntry, member: Member, when: Circumstances
) -> Content | Withheld:
    meeting = _meeting(session, entry, when)
    if isinstance(meeting, Withheld):
        return meeting
    reply = member_reply(session, meeting_id=meeting.id, member_id=entry.member_id)
    return MeetingNotice(meeting, reply)


def _read_deadline(
    session: Session, entry: OutboxEntry, member: Member, when: Circumstances
) -> Content | Withheld:
    day = stamp_of(entry).astimezone(when.zone).date()
    deadline = get_deadline(session, deadline_id=entry.subject_id, due_on=day)
    if deadline is None:
        return Withheld(OutboxState.DROPPED, "the deadline was removed or moved")
    return DeadlineNotice(deadline)


def _action(session: Session, entry: OutboxEntry, when: Circumstances) -> ActionView | Withheld:
    view = action_by_id(
        session, action_id=entry.subject_id, at=when.now, quiet_after=when.quiet_after
    )
    if view is None:
        return Withheld(OutboxState.DROPPED, "the action was deleted")
    if view.status == Status.COMPLETE:
        return Withheld(OutboxState.DROPPED, "the action is complete")
    return view


def _read_action(
    session: Session, entry: OutboxEntry, member: Member, when: Circumstances
) -> Content | Withheld:
    action = _action(session, entry, when)
    if isinstance(action, Withheld):
        return action
    if entry.kind == ReminderKind.CHECKIN:
        if not action.quiet:
            return Withheld(OutboxState.DROPPED, "the action has been updated")
    elif action.due_on != _due_date(entry, when.zone):
        return Withheld(OutboxState.DROPPED, "the due date changed")
    return ActionNotice(entry.kind, action, when.quiet_after.days)


def _due_date(entry: OutboxEntry, zone: ZoneInfo) -> date:
    """The due date an action reminder was about: `20210930T0800Z/7d` or `20210930/w2`."""
    head = entry.occurrence.split("/")[0]
    if "T" in head:
        return stamp_of(entry).astimezone(zone).date()
    return datetime.strptime(head, "%Y%m%d").date()


def _read_returns(
    session: Session, entry: OutboxEntry, member: Member, when: Circumstances
) -> Content | Withheld:
    meeting = _meeting(session, entry, when)
    if isinstance(meeting, Withheld):
        return meeting
    since = returns_since(session, starts_at=meeting.starts_at, zone=when.zone)
    assert member.id is not None
    # A deputy is asked about what the members they cover for are asked about, too.
    covered = members_covered(session, deputy_id=member.id, at=when.now)
    mine_only = None if entry.kind == ReminderKind.RETURNS_CHAIR or covered else member
    owed = awaiting_returns(
        session, since=since, at=when.now, quiet_after=when.quiet_after, member=mine_only
    )
    if entry.kind == ReminderKind.RETURNS_CHAIR:
        figures = missing_figures(session, when)
        return ReturnsReport(meeting, missing_by_organisation(owed), since, figures)
    owners = owners_by_action(session)
    asked = {
        view.id
        for person in (member, *covered)
        for view in asked_about(
            owed,
            owners,
            member_id=person.id or 0,
            role=person.role,
            org=person.organisation_id,
        )
    }
    mine = [view for view in owed if view.id in asked]
    suppliers = {person.organisation_id for person in (member, *covered)}
    owned = owned_measure_ids(session, member_ids=[person.id or 0 for person in (member, *covered)])
    figures = [
        f
        for f in missing_figures(session, when)
        if f.measure.supplier_id in suppliers or f.measure.id in owned
    ]
    if not mine and not figures:
        return Withheld(OutboxState.DROPPED, "every action has been updated")
    return ReturnsRequest(meeting, mine, since, figures)


def missing_figures(session: Session, when: Circumstances) -> list[MissingFigure]:
    """Each measure whose latest period due (by the reminder rules) has no figure yet,
    periods before the plan began left out."""
    if when.rules is None:
        return []
    starts_on = plan_starts_on(session)
    if starts_on is None:
        return []
    missing = []
    for view in measure_views(session):
        period = latest_due_period(when.rules, when.now, quarterly=view.frequency == "quarterly")
        if period.starts_on >= starts_on and view.figure_for(period) is None:
            missing.append(MissingFigure(view, period))
    return missing


def _read_digest(
    session: Session, entry: OutboxEntry, member: Member, when: Circumstances
) -> Content | Withheld:
    digest = weekly_digest(
        session,
        week_start=date.fromisoformat(entry.occurrence),
        zone=when.zone,
        at=when.now,
        quiet_after=when.quiet_after,
    )
    return DigestNotice(digest, missing_figures(session, when))


def _read_figure(
    session: Session, entry: OutboxEntry, member: Member, when: Circumstances
) -> Content | Withheld:
    """`2021/22-Q2/w1`: the period, and which weekly reminder this is."""
    head, _, week = entry.occurrence.rpartition("/")
    period = parse_period(head)
    measure = measure_by_id(session, measure_id=entry.subject_id)
    if measure is None:
        return Withheld(OutboxState.DROPPED, "the measure was removed")
    if measure.figure_for(period) is not None:
        return Withheld(OutboxState.DROPPED, "the figure has been sent")
    return FigureNotice(measure, period, int(week.removeprefix("w")))


READERS = {
    ReminderKind.MEETING: _read_meeting,
    ReminderKind.DEADLINE: _read_deadline,
    ReminderKind.ACTION_DUE: _read_action,
    ReminderKind.ACTION_OVERDUE: _read_action,
    ReminderKind.CHECKIN: _read_action,
    ReminderKind.RETURNS_REQUEST: _read_returns,
    ReminderKind.RETURNS_CHAIR: _read_returns,
    ReminderKind.DIGEST: _read_digest,
    ReminderKind.FIGURE_DUE: _read_figure,
}
