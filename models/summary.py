"""The board's view of the plan: the exception summary and the board paper's data.

`/summary`, the HTML board paper and the actions CSV all read `board_summary` or
`board_paper`, which build on `models.progress.action_views`: a figure is computed once,
here, and only formatted by what shows it.

Every read is a fixed number of SQL statements whatever the size of the plan: one query
over the actions and a few over their updates, never a query per action.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, func, type_coerce
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from csp_bot.models.deadlines import DeadlineView, upcoming_deadlines
from csp_bot.models.enums import FundingStatus, Status
from csp_bot.models.errors import NotFound
from csp_bot.models.funding import Contribution, FundingYear, financial_year_of, funding_year
from csp_bot.models.meetings import MeetingView, meeting_view, upcoming_meetings
from csp_bot.models.progress import (
    ActionView,
    Direction,
    PriorityStatus,
    direction,
    priority_statuses,
    query_action_views,
)
from csp_bot.models.tables import Action, Meeting, Member, PlanInfo, Priority, ProgressUpdate

# With no board meeting on record, "since the last meeting" means this long ago.
FALLBACK_WINDOW = timedelta(days=28)
# Funding decisions still to be settled: not yet confirmed, and not declined.
OPEN_FUNDING = (FundingStatus.PROPOSED, FundingStatus.AGREED)
_WORST_FIRST = (Status.RED, Status.AMBER, Status.GREEN)
_STATUSES = {status.value: status for status in Status}


# --- what the summary holds -------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """The moment "since the last board meeting" counts from, and what it is."""

    at: datetime
    meeting: MeetingView | None
    fallback_days: int = FALLBACK_WINDOW.days


@dataclass(frozen=True, slots=True)
class LatestUpdate:
    """An action's latest live update: what the board reads next to its RAG."""

    note: str
    mitigation: str | None
    forecast: str | None
    author: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ActionLine:
    """An action with its latest update and its direction of travel since the baseline."""

    action: ActionView
    latest: LatestUpdate | None
    was: Status
    direction: Direction


@dataclass(frozen=True, slots=True)
class PriorityLine:
    """A priority's overall RAG now and at the baseline, with its counts."""

    status: PriorityStatus
    rag: Status
    was: Status
    direction: Direction
    latest_update_at: datetime | None


@dataclass(frozen=True, slots=True)
class OrganisationReturn:
    """How an organisation that leads actions has reported since the baseline."""

    organisation_id: int
    organisation: str
    open_actions: int
    updated_since: int
    last_update_at: datetime | None

    @property
    def silent(self) -> bool:
        """It leads open actions and has sent no update on any of its actions."""
        return self.open_actions > 0 and self.updated_since == 0


@dataclass(frozen=True)
class OpenDecision:
    """A funding contribution not yet confirmed or declined."""

    year: int
    stream_code: str
    stream_name: str
    contribution: Contribution


@dataclass(frozen=True)
class FundingPosition:
    """This financial year and the next: every stream's contributions, and what is open."""

    years: tuple[FundingYear, ...]

    @property
    def open_decisions(self) -> list[OpenDecision]:
        return [
            OpenDecision(year.year, stream.code, stream.name, contribution)
            for year in self.years
            for stream in year.streams
            for contribution in stream.contributions
            if contribution.status in OPEN_FUNDING
        ]


@dataclass(frozen=True)
class BoardSummary:
    """Everything `/summary` shows, exception first, in highlight-report order."""

    at: datetime
    plan_title: str
    board: str
    scope: Priority | None
    baseline: Baseline
    quiet_days: int
    priorities: list[PriorityLine]
    red: list[ActionLine]
    amber: list[ActionLine]
    overdue: list[ActionLine]
    quiet: list[ActionLine]
    funding: FundingPosition
    next_deadline: DeadlineView | None
    next_meeting: MeetingView | None
    returns: list[OrganisationReturn]

    @property
    def silent(self) -> list[OrganisationReturn]:
        return [organisation for organisation in self.returns if organisation.silent]

    @property
    def open_decisions(self) -> list[OpenDecision]:
        return self.funding.open_decisions


@dataclass(frozen=True)
class BoardPaper:
    """The summary plus every action with its latest update, for the paper and the CSV."""

    summary: BoardSummary
    actions: list[ActionLine] = field(default_factory=list)

    def by_priority(self) -> list[tuple[PriorityLine, list[ActionLine]]]:
        grouped: dict[str, list[ActionLine]] = {}
        for line in self.actions:
            grouped.setdefault(line.action.priority_code, []).append(line)
        return [(p, grouped.get(p.status.code, [])) for p in self.summary.priorities]


# --- reading it ---------------------------------------------------------------------------


def board_summary(
    session: Session, *, at: datetime, quiet_after: timedelta, code: str | None = None
) -> BoardSummary:
    """The exception summary for the whole plan, or for the priority with `code`."""
    summary, _ = _read(session, at=at, quiet_after=quiet_after, code=code, every_note=False)
    return summary


def board_paper(session: Session, *, at: datetime, quiet_after: timedelta) -> BoardPaper:
    """The board paper's data: the whole-plan summary and every action's latest update."""
    summary, lines = _read(session, at=at, quiet_after=quiet_after, code=None, every_note=True)
    return BoardPaper(summary=summary, actions=lines)


def _read(
    session: Session, *, at: datetime, quiet_after: timedelta, code: str | None, every_note: bool
) -> tuple[BoardSummary, list[ActionLine]]:
    priorities = list(session.exec(select(Priority).order_by(col(Priority.id))).all())
    scope = _scope(priorities, code)
    in_scope = None if scope is None else col(Action.priority_id) == scope.id
    views = query_action_views(session, at=at, quiet_after=quiet_after, where=in_scope)
    baseline = last_board_meeting(session, at=at)
    was = statuses_at(session, moment=baseline.at, where=in_scope)
    noted = None if every_note else col(Action.status).in_((Status.RED, Status.AMBER))
    lines = _Lines(was, latest_updates(session, where=_both(in_scope, noted)))
    plan = session.exec(select(PlanInfo)).first()
    summary = BoardSummary(
        at=at,
        plan_title=plan.title if plan else "Community Safety Partnership plan",
        board=plan.board if plan else "The board",
        scope=scope,
        baseline=baseline,
        quiet_days=quiet_after.days,
        priorities=_priority_lines([p for p in priorities if scope in (None, p)], views, was),
        **_exception_lists(views, lines),
        funding=_funding(session, at=at),
        next_deadline=next(iter(upcoming_deadlines(session, today=at.date())), None),
        next_meeting=next(iter(upcoming_meetings(session, at=at, limit=1)), None),
        returns=organisation_returns(views, since=baseline.at),
    )
    return summary, [lines(view) for view in views] if every_note else []


@dataclass(frozen=True)
class _Lines:
    """Makes an action's line from its view, its status at the baseline and its latest update."""

    was: dict[int, Status]
    latest: dict[int, LatestUpdate]

    def __call__(self, view: ActionView) -> ActionLine:
        before = self.was.get(view.id, view.status)
        return ActionLine(view, self.latest.get(view.id), before, travel(before, view.status))


def _exception_lists(views: list[ActionView], line: _Lines) -> dict[str, list[ActionLine]]:
    """Off track and at risk in plan order, overdue soonest due first, quiet stalest first.

    Lines are made for the exceptions only: the summary reads every action but shows few.
    """
    exceptions = [view for view in views if _exception(view)]
    return {
        "red": [line(view) for view in exceptions if view.status == Status.RED],
        "amber": [line(view) for view in exceptions if view.status == Status.AMBER],
        "overdue": [line(view) for view in sorted(exceptions, key=_due) if view.overdue],
        "quiet": [line(view) for view in sorted(exceptions, key=_last_activity) if view.quiet],
    }


def _exception(view: ActionView) -> bool:
    return view.status in (Status.RED, Status.AMBER) or view.overdue or view.quiet


def _scope(priorities: Sequence[Priority], code: str | None) -> Priority | None:
    """The priority named by `code` (any case); NotFound lists the valid codes."""
    if code is None:
        return None
    wanted = code.strip().upper()
    for priority in priorities:
        if priority.code == wanted:
            return priority
    codes = ", ".join(priority.code for priority in priorities)
    raise NotFound(f"No priority {wanted}. The priorities are {codes}.")


def _both(
    first: ColumnElement[bool] | None, second: ColumnElement[bool] | None
) -> ColumnElement[bool] | None:
    if first is None or second is None:
        return first if second is None else second
    return first & second


def _due(view: ActionView) -> date:
    return view.due_on or date.max


def _last_activity(view: ActionView) -> datetime:
    return view.last_update_at or view.status_at


def travel(before: Status, after: Status) -> Direction:
    """Direction of travel between two moments; no change is steady, whatever the status."""
    return Direction.STEADY if before == after else direction(before, after)


def overall_rag(statuses: Iterable[Status]) -> Status:
    """A priority's RAG: its worst open action's status.

    With no action open, it is complete if every action is, otherwise not started.
    """
    present = set(statuses)
    for status in _WORST_FIRST:
        if status in present:
            return status
    return Status.COMPLETE if present == {Status.COMPLETE} else Status.NOT_STARTED


def _priority_lines(
    priorities: list[Priority], views: list[ActionView], was: dict[int, Status]
) -> list[PriorityLine]:
    grouped: dict[str, list[ActionView]] = {}
    for view in views:
        grouped.setdefault(view.priority_code, []).append(view)
    return [
        _priority_line(status, grouped.get(status.code, []), was)
        for status in priority_statuses(priorities, views)
    ]


def _priority_line(
    status: PriorityStatus, views: list[ActionView], was: dict[int, Status]
) -> PriorityLine:
    now = overall_rag(view.status for view in views)
    before = overall_rag(was.get(view.id, view.status) for view in views)
    updates = [view.last_update_at for view in views if view.last_update_at is not None]
    return PriorityLine(status, now, before, travel(before, now), max(updates, default=None))


# --- the queries the summary adds to the progress layer ------------------------------------


def last_board_meeting(session: Session, *, at: datetime) -> Baseline:
    """The latest meeting that has started by `at`; with none, `FALLBACK_WINDOW` before."""
    meeting = session.exec(
        select(Meeting).where(Meeting.starts_at <= at).order_by(col(Meeting.starts_at).desc())
    ).first()
    if meeting is None:
        return Baseline(at=at - FALLBACK_WINDOW, meeting=None)
    return Baseline(at=meeting.starts_at, meeting=meeting_view(meeting))


def _live() -> ColumnElement[bool]:
    return col(ProgressUpdate.withdrawn_at).is_(None)


def _actions_where(where: ColumnElement[bool] | None) -> ColumnElement[bool] | None:
    """Updates of the actions matching `where` (None: every action's)."""
    if where is None:
        return None
    return col(ProgressUpdate.action_id).in_(select(Action.id).where(where))


def statuses_at(
    session: Session, *, moment: datetime, where: ColumnElement[bool] | None = None
) -> dict[int, Status]:
    """The status each action had at `moment`, for actions whose status has moved since.

    The first live update at or after `moment` records what it moved the action from; an
    action missing from the answer has had no live update since, so its status is current.
    """
    query = (
        select(ProgressUpdate.action_id, type_coerce(ProgressUpdate.previous_status, String))
        .where(_live(), col(ProgressUpdate.created_at) >= moment)
        .order_by(col(ProgressUpdate.created_at), col(ProgressUpdate.id))
    )
    in_scope = _actions_where(where)
    if in_scope is not None:
        query = query.where(in_scope)
    # Oldest first: the first seen for an action is its first since `moment`. The updates
    # since the last meeting are few next to all of them, and read by the created_at index.
    first: dict[int, str] = {}
    for action_id, previous in session.connection().execute(query).all():
        first.setdefault(action_id, previous)
    return {action_id: _STATUSES[previous] for action_id, previous in first.items()}


def latest_updates(
    session: Session, *, where: ColumnElement[bool] | None = None
) -> dict[int, LatestUpdate]:
    """Each action's latest live update (of the actions matching `where`), by action id.

    As in `models.progress`, the update made at the action's `status_at` is its latest live
    one when there is such an update; the ordered look-up runs only for the others.
    """
    live = (col(ProgressUpdate.action_id) == Action.id) & _live()
    at_status = (
        select(ProgressUpdate.id)
        .where(live, col(ProgressUpdate.created_at) == Action.status_at)
        .order_by(col(ProgressUpdate.id).desc())
        .limit(1)
        .correlate(Action)
        .scalar_subquery()
    )
    newest = (
        select(ProgressUpdate.id)
        .where(live)
        .order_by(col(ProgressUpdate.created_at).desc(), col(ProgressUpdate.id).desc())
        .limit(1)
        .correlate(Action)
        .scalar_subquery()
    )
    chosen = sql_select(col(Action.id), func.coalesce(at_status, newest).label("update_id"))
    if where is not None:
        chosen = chosen.where(where)
    # OFFSET 0 keeps PostgreSQL from flattening the choice into a hash join over every
    # update: it then fetches each chosen update by its key.
    picked = chosen.offset(0).subquery()
    query = (
        sql_select(
            picked.c.id,
            col(ProgressUpdate.note),
            col(ProgressUpdate.mitigation),
            col(ProgressUpdate.forecast),
            col(ProgressUpdate.created_at),
            col(Member.name),
        )
        .join(ProgressUpdate, col(ProgressUpdate.id) == picked.c.update_id)
        .outerjoin(Member, col(Member.id) == ProgressUpdate.member_id)
    )
    return {row[0]: _latest(row) for row in session.connection().execute(query).all()}


def _latest(row: Any) -> LatestUpdate:
    _, note, mitigation, forecast, created_at, author = row
    return LatestUpdate(note, mitigation, forecast, author or "plan import", created_at)


def organisation_returns(
    views: Iterable[ActionView], *, since: datetime
) -> list[OrganisationReturn]:
    """Per lead organisation: open actions, how many were updated since `since`, and when
    it last sent an update; in order of name."""
    grouped: dict[int, list[ActionView]] = {}
    for view in views:
        grouped.setdefault(view.lead_organisation_id, []).append(view)
    returns = [_returns(org, views, since) for org, views in grouped.items()]
    return sorted(returns, key=lambda organisation: organisation.organisation)


def _returns(organisation_id: int, views: list[ActionView], since: datetime) -> OrganisationReturn:
    updates = [view.last_update_at for view in views if view.last_update_at is not None]
    return OrganisationReturn(
        organisation_id=organisation_id,
        organisation=views[0].lead_organisation,
        open_actions=sum(view.status != Status.COMPLETE for view in views),
        updated_since=sum(update >= since for update in updates),
        last_update_at=max(updates, default=None),
    )


def _funding(session: Session, *, at: datetime) -> FundingPosition:
    this_year = financial_year_of(at.date())
    return FundingPosition(
        years=tuple(funding_year(session, year=year) for year in (this_year, this_year + 1))
    )
