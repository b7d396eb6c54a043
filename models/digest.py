"""The chair's weekly digest: what changed last week, what is due this week, who is quiet."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from csp_bot.models.deadlines import DeadlineView, upcoming_deadlines
from csp_bot.models.enums import FundingStatus, Status
from csp_bot.models.localtime import local_moment
from csp_bot.models.meetings import MeetingView, meeting_view
from csp_bot.models.progress import ActionView, action_views
from csp_bot.models.reminder_types import OutboxState
from csp_bot.models.reminders import unreachable_members
from csp_bot.models.returns import MissingReturns, missing_by_organisation
from csp_bot.models.tables import (
    Action,
    FundingDecision,
    FundingStream,
    Meeting,
    Member,
    Organisation,
    OutboxEntry,
    ProgressUpdate,
)

# Each list in the digest stops here ("and 12 more"), so it stays readable on a phone.
LIST_LIMIT = 15


@dataclass(frozen=True)
class ChangedAction:
    ref: str
    title: str
    status: Status
    note: str
    author: str
    at: datetime


@dataclass(frozen=True)
class ChangedFunding:
    stream: str
    organisation: str
    year: int
    amount_pence: int
    status: FundingStatus
    at: datetime


@dataclass(frozen=True)
class Unreachable:
    name: str
    organisation: str
    since: datetime


@dataclass(frozen=True)
class FailedReminder:
    """A reminder Telegram would not take however often it was tried: it never arrived."""

    kind: str
    name: str
    at: datetime


@dataclass(frozen=True)
class Digest:
    week_start: date
    updates: list[ChangedAction]
    funding: list[ChangedFunding]
    due_actions: list[ActionView]
    overdue: list[ActionView]
    deadlines: list[DeadlineView]
    meetings: list[MeetingView]
    not_updated: list[MissingReturns]
    unreachable: list[Unreachable]
    quiet_days: int
    failed: list[FailedReminder] = field(default_factory=list)
    limit: int = LIST_LIMIT


def weekly_digest(
    session: Session, *, week_start: date, zone: ZoneInfo, at: datetime, quiet_after: timedelta
) -> Digest:
    """The digest for the week starting on Monday `week_start`."""
    this_week = local_moment(week_start, time(0), zone)
    last_week, next_week = this_week - timedelta(days=7), this_week + timedelta(days=7)
    week_end = week_start + timedelta(days=6)
    views = action_views(session, at=at, quiet_after=quiet_after)
    open_views = [view for view in views if view.status != Status.COMPLETE]
    return Digest(
        week_start=week_start,
        updates=_updates(session, last_week, this_week),
        funding=_funding(session, last_week, this_week),
        due_actions=[
            v for v in open_views if v.due_on is not None and week_start <= v.due_on <= week_end
        ],
        overdue=[view for view in open_views if view.overdue],
        deadlines=[
            d for d in upcoming_deadlines(session, today=week_start) if d.due_on <= week_end
        ],
        meetings=_meetings(session, this_week, next_week),
        not_updated=missing_by_organisation(view for view in open_views if view.quiet),
        unreachable=_unreachable(session),
        quiet_days=quiet_after.days,
        failed=_failed(session, last_week),
    )


def _updates(session: Session, start: datetime, end: datetime) -> list[ChangedAction]:
    rows = session.exec(
        select(ProgressUpdate, Action.ref, Action.title, Member.name)
        .join(Action, col(Action.id) == ProgressUpdate.action_id)
        .outerjoin(Member, col(Member.id) == ProgressUpdate.member_id)
        .where(col(ProgressUpdate.withdrawn_at).is_(None))
        .where(ProgressUpdate.created_at >= start, ProgressUpdate.created_at < end)
        .order_by(col(ProgressUpdate.created_at))
    ).all()
    return [
        ChangedAction(ref, title, update.status, update.note, name or "", update.created_at)
        for update, ref, title, name in rows
    ]


def _funding(session: Session, start: datetime, end: datetime) -> list[ChangedFunding]:
    rows = session.exec(
        select(FundingDecision, FundingStream.code, Organisation.name)
        .join(FundingStream, col(FundingStream.id) == FundingDecision.stream_id)
        .join(Organisation, col(Organisation.id) == FundingDecision.organisation_id)
        .where(FundingDecision.decided_at >= start, FundingDecision.decided_at < end)
        .order_by(col(FundingDecision.decided_at))
    ).all()
    return [
        ChangedFunding(
            code,
            org,
            decision.financial_year,
            decision.amount_pence,
            decision.status,
            decision.decided_at,
        )
        for decision, code, org in rows
    ]


def _meetings(session: Session, start: datetime, end: datetime) -> list[MeetingView]:
    meetings = session.exec(
        select(Meeting)
        .where(Meeting.starts_at >= start, Meeting.starts_at < end)
        .order_by(col(Meeting.starts_at))
    ).all()
    return [meeting_view(meeting) for meeting in meetings]


def _unreachable(session: Session) -> list[Unreachable]:
    names = {org.id: org.name for org in session.exec(select(Organisation)).all()}
    return [
        Unreachable(member.name, names.get(member.organisation_id, ""), member.since)
        for member in unreachable_members(session)
    ]


def _failed(session: Session, since: datetime) -> list[FailedReminder]:
    """Reminders given up on since `since` (Telegram refused every try)."""
    rows = session.exec(
        select(OutboxEntry.kind, Member.name, OutboxEntry.send_at)
        .join(Member, col(Member.id) == OutboxEntry.member_id)
        .where(col(OutboxEntry.state) == OutboxState.FAILED)
        .where(col(OutboxEntry.send_at) >= since)
        .order_by(col(OutboxEntry.send_at))
    ).all()
    return [FailedReminder(kind.replace("_", " "), name, at) for kind, name, at in rows]
