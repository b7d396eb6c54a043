"""The board's view of the plan: the exception summary and the board paper's data.

`/summary`, the HTML board paper and the actions CSV all read `board_summary` or
`board_paper`: a figure is computed once, here, and only formatted by what shows it.

Every read is a fixed number of SQL statements whatever the size of the plan, never a query
per action. Counts are made by the database (GROUP BY); only the actions the summary lists
(the exceptions) are read whole, and the board paper reads every action.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, case, func, type_coerce
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from csp_bot.models.data_version import data_version, history_version
from csp_bot.models.deadlines import DeadlineView, upcoming_deadlines
from csp_bot.models.enums import FundingStatus, Status
from csp_bot.models.errors import NotFound
from csp_bot.models.funding import Contribution, FundingYear, financial_year_of, funding_year
from csp_bot.models.measures import MeasureCache, MeasureView, priority_measures
from csp_bot.models.meetings import MeetingView, meeting_view, upcoming_meetings
from csp_bot.models.progress import (
    ActionView,
    Direction,
    PriorityStatus,
    StatusCounts,
    direction,
    exception_flags,
    last_activity,
    priority_status,
    query_action_views,
    status_counts,
)
from csp_bot.models.reminder_types import statement_chunks
from csp_bot.models.tables import (
    Action,
    FundingDecision,
    Meeting,
    Member,
    Organisation,
    PlanInfo,
    Priority,
    ProgressUpdate,
)
from csp_bot.models.types import as_utc

# With no board meeting on record, "since the last meeting" means this long ago.
FALLBACK_WINDOW = timedelta(days=28)
# What the summary counts as coming ("the next six months" in its texts): board meetings
# and deadlines within two board cycles, so a deadline the next meeting cannot reach is
# seen before the one after.
COMING_DAYS = 183
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

    # Worked out once: the summary's template asks for it for each year it shows.
    @functools.cached_property
    def open_decisions(self) -> list[OpenDecision]:
        return [
            OpenDecision(year.year, stream.code, stream.name, contribution)
            for year in self.years
            for stream in year.streams
            for contribution in stream.contributions
            if contribution.status in OPEN_FUNDING
        ]

    def open_in(self, year: int) -> list[OpenDecision]:
        """One year's open decisions, the longest open first, so that those recorded on the
        same day come together and can be shown under that day once."""
        opened = [decision for decision in self.open_decisions if decision.year == year]
        return sorted(opened, key=lambda decision: decision.contribution.decided_at)


@dataclass(frozen=True, slots=True)
class ExceptionTotals:
    """How many actions are off track, at risk, overdue and quiet."""

    red: int
    amber: int
    overdue: int
    quiet: int
    # Off track, overdue or both, each action once: what the board is asked to look at.
    off_track_or_overdue: int


@dataclass(frozen=True)
class BoardSummary:
    """Everything `/summary` shows, exception first, in highlight-report order.

    Each exception list holds its first `shown` lines (all of them when `shown` is None);
    `totals` counts them whole.
    """

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
    # How many each list holds: the lists may hold only their first few (`shown`).
    totals: ExceptionTotals
    funding: FundingPosition
    next_deadline: DeadlineView | None
    next_meeting: MeetingView | None
    returns: list[OrganisationReturn]
    # The board meetings and deadlines of the next `COMING_DAYS` days, soonest first.
    coming_meetings: list[MeetingView]
    coming_deadlines: list[DeadlineView]
    # The measures in scope, with their figures (the summary's: the latest alone; the
    # paper's: all): those off target are exceptions too.
    measures: list[MeasureView] = field(default_factory=list)

    @functools.cached_property
    def off_target_measures(self) -> list[MeasureView]:
        """Measures whose latest figure is off target: red ones first, in plan order."""
        off = [view for view in self.measures if view.off_target]
        return sorted(off, key=lambda view: view.rag() is not Status.RED)

    @property
    def silent(self) -> list[OrganisationReturn]:
        return [organisation for organisation in self.returns if organisation.silent]

    @property
    def open_decisions(self) -> list[OpenDecision]:
        return self.funding.open_decisions

    def off_track_or_overdue(self, limit: int) -> list[ActionLine]:
        """The first `limit` actions off track or overdue, each once: off track in plan
        order, then the other overdue ones soonest due first.

        The lists hold their first `shown` actions only, which is enough when `limit` is no
        more than that: either `limit` of them are off track, or every off-track action is
        held, and `shown` overdue ones leave room for the rest."""
        off_track = {line.action.id for line in self.red}
        others = [line for line in self.overdue if line.action.id not in off_track]
        return (self.red + others)[:limit]


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
    session: Session,
    *,
    at: datetime,
    quiet_after: timedelta,
    code: str | None = None,
    shown: int | None = None,
) -> BoardSummary:
    """The exception summary for the whole plan, or for the priority with `code`, with the
    first `shown` actions of each exception list (None: all)."""
    summary, _, _ = _read(
        session, at=at, quiet_after=quiet_after, code=code, every_note=False, shown=shown
    )
    return summary


def board_paper(session: Session, *, at: datetime, quiet_after: timedelta) -> BoardPaper:
    """The board paper's data: the whole-plan summary and every action's latest update."""
    summary, lines, _ = _read(session, at=at, quiet_after=quiet_after, code=None, every_note=True)
    return BoardPaper(summary=summary, actions=lines)


@dataclass(frozen=True)
class _Kept:
    """A summary as read, the data version it was read at, and the moments it holds for."""

    version: int
    since: datetime
    until: datetime
    summary: BoardSummary


class SummaryCache:
    """`board_summary`, kept for each scope while nothing it shows can have changed.

    A kept summary is served only while the data version is the one it was read at (every
    write transaction counts the version up: `models.data_version`) and the clock is before
    the first moment the passing of time alone would change it: midnight (overdue, the
    deadlines and the financial year go by the date), the next board meeting, the next open
    action going quiet, and without a meeting the first update leaving the 28-day window.
    """

    def __init__(self) -> None:
        self._kept: dict[tuple[str | None, timedelta, int | None], _Kept] = {}
        self.baselines = BaselineStatuses()
        self.measures = MeasureCache()

    def summary(
        self,
        session: Session,
        *,
        at: datetime,
        quiet_after: timedelta,
        code: str | None = None,
        shown: int | None = None,
    ) -> BoardSummary:
        """As `board_summary`: from the cache when it is current, else read and kept."""
        version = data_version(session)
        key = (None if code is None else code.strip().upper(), quiet_after, shown)
        kept = self._kept.get(key)
        if kept is not None and kept.version == version and kept.since <= at < kept.until:
            return _moved_to(kept.summary, at)
        summary, _, until = _read(
            session,
            at=at,
            quiet_after=quiet_after,
            code=code,
            every_note=False,
            shown=shown,
            cache=self,
        )
        self._kept[key] = _Kept(version, at, until, summary)
        return summary


def _moved_to(summary: BoardSummary, at: datetime) -> BoardSummary:
    """A kept summary as read at `at`: only the moment, and a fallback baseline, move."""
    baseline = summary.baseline
    if baseline.meeting is None:
        baseline = Baseline(at=at - FALLBACK_WINDOW, meeting=None)
    return replace(summary, at=at, baseline=baseline)


@dataclass(frozen=True)
class _Scope:
    """What one read covers: the moment, the quiet period, the priority, the baseline."""

    at: datetime
    quiet_after: timedelta
    where: ColumnElement[bool] | None
    baseline: Baseline


def _read(
    session: Session,
    *,
    at: datetime,
    quiet_after: timedelta,
    code: str | None,
    every_note: bool,
    shown: int | None = None,
    cache: SummaryCache | None = None,
) -> tuple[BoardSummary, list[ActionLine], datetime]:
    priorities = list(session.exec(select(Priority).order_by(col(Priority.id))).all())
    scope = _scope(priorities, code)
    in_scope = None if scope is None else col(Action.priority_id) == scope.id
    counts = status_counts(session, at=at, quiet_after=quiet_after, where=in_scope)
    read = _Scope(at, quiet_after, in_scope, last_board_meeting(session, at=at))
    every = None
    if every_note:
        every = query_action_views(session, at=at, quiet_after=quiet_after, where=in_scope)
    lists, lines = _exceptions(session, read, every, shown)
    plan = session.exec(select(PlanInfo)).first()
    calendar = _calendar(session, at=at)
    summary = BoardSummary(
        at=at,
        plan_title=plan.title if plan else "Community Safety Partnership plan",
        board=plan.board if plan else "The board",
        scope=scope,
        baseline=read.baseline,
        quiet_days=quiet_after.days,
        priorities=_priority_lines(
            [p for p in priorities if scope in (None, p)],
            counts,
            # Without a cache (the paper, a one-off read), found afresh for every action.
            (cache.baselines if cache else BaselineStatuses()).changes(
                session, moment=read.baseline.at, where=in_scope
            ),
        ),
        **lists,
        totals=_totals(counts),
        funding=_funding(session, at=at, scope=scope),
        returns=_organisation_returns(session, since=read.baseline.at, where=in_scope),
        next_deadline=calendar.next_deadline,
        next_meeting=calendar.next_meeting,
        coming_meetings=calendar.meetings,
        coming_deadlines=calendar.deadlines,
        measures=_measures(session, scope, every_note=every_note, cache=cache),
    )
    until = _holds_until(session, summary, counts, at)
    return summary, [lines(view) for view in every or []], until


def _measures(
    session: Session, scope: Priority | None, *, every_note: bool, cache: SummaryCache | None
) -> list[MeasureView]:
    """The measures in scope: with every figure for the paper, else the latest alone."""
    if cache is not None and not every_note:
        return cache.measures.latest(session, priority_code=None if scope is None else scope.code)
    priority_id = None if scope is None else scope.id
    return priority_measures(session, priority_id=priority_id, latest_only=not every_note)


def _exceptions(
    session: Session, read: _Scope, every: list[ActionView] | None, shown: int | None
) -> tuple[dict[str, list[ActionLine]], _Lines]:
    """The four exception lists, and the maker of lines (`every`: the paper's every action).

    For the paper, from every action; otherwise the first `shown` of each list read in its
    own order by SQL, so that only what the summary shows is read whole.
    """
    if every is None:
        lists = _exception_views(session, read, shown)
        ids = {view.id for views in lists.values() for view in views}
        moves = _moves_since(session, moment=read.baseline.at, ids=ids)
        noted = {view.id for view in lists["red"] + lists["amber"]}
        latest = latest_updates(session, where=col(Action.id).in_(noted))
    else:
        lists = _sorted_exceptions(every)
        moves = _moves_since(session, moment=read.baseline.at, where=read.where)
        latest = latest_updates(session, where=read.where)
    lines = _Lines({move.action_id: move.was for move in moves}, latest)
    return {name: [lines(view) for view in views] for name, views in lists.items()}, lines


def _exception_views(
    session: Session, read: _Scope, shown: int | None
) -> dict[str, list[ActionView]]:
    """Off track and at risk in plan order, overdue soonest due first, quiet stalest first:
    the same orders as `_sorted_exceptions`, each list cut to `shown` by the database."""
    overdue, quiet = exception_flags(at=read.at, quiet_after=read.quiet_after)
    status = col(Action.status)
    wanted = {
        "red": (status == Status.RED, ()),
        "amber": (status == Status.AMBER, ()),
        "overdue": (overdue, (col(Action.due_on),)),
        "quiet": (quiet, (last_activity(),)),
    }
    return {
        name: query_action_views(
            session,
            at=read.at,
            quiet_after=read.quiet_after,
            where=_both(read.where, condition),
            first_by=order,
            limit=shown,
        )
        for name, (condition, order) in wanted.items()
    }


def _totals(counts: dict[int, StatusCounts]) -> ExceptionTotals:
    red = sum(c.counts[Status.RED] for c in counts.values())
    overdue = sum(c.overdue for c in counts.values())
    return ExceptionTotals(
        red=red,
        amber=sum(c.counts[Status.AMBER] for c in counts.values()),
        overdue=overdue,
        quiet=sum(c.quiet for c in counts.values()),
        off_track_or_overdue=red + overdue - sum(c.overdue_off_track for c in counts.values()),
    )


@dataclass(frozen=True)
class _Calendar:
    """The next board meeting and deadline, and those of the next `COMING_DAYS` days."""

    next_meeting: MeetingView | None
    next_deadline: DeadlineView | None
    meetings: list[MeetingView]
    deadlines: list[DeadlineView]


def _calendar(session: Session, *, at: datetime) -> _Calendar:
    """Meetings count by date, as deadlines do: the window's end moves at midnight, when a
    kept summary is read again anyway."""
    deadlines = upcoming_deadlines(session, today=at.date())
    end = datetime.combine(at.date() + timedelta(days=COMING_DAYS + 1), time(), tzinfo=UTC)
    return _Calendar(
        next_meeting=next(iter(upcoming_meetings(session, at=at, limit=1)), None),
        next_deadline=next(iter(deadlines), None),
        meetings=upcoming_meetings(session, at=at, limit=None, before=end),
        deadlines=[d for d in deadlines if (d.due_on - at.date()).days <= COMING_DAYS],
    )


def _holds_until(
    session: Session, summary: BoardSummary, counts: dict[int, StatusCounts], at: datetime
) -> datetime:
    """The first moment after `at` at which time passing alone changes `summary`."""
    tomorrow = at.date() + timedelta(days=1)
    moments = [
        datetime.combine(tomorrow, time(), tzinfo=at.tzinfo),
        datetime.combine(at.astimezone(UTC).date() + timedelta(days=1), time(), tzinfo=UTC),
    ]
    moments += [c.next_quiet_at for c in counts.values() if c.next_quiet_at is not None]
    if summary.next_meeting is not None:
        moments.append(summary.next_meeting.starts_at)
    if summary.baseline.meeting is None:
        oldest = session.exec(
            select(func.min(ProgressUpdate.created_at)).where(
                _live(), col(ProgressUpdate.created_at) >= summary.baseline.at
            )
        ).one()
        leaving = as_utc(oldest)
        if leaving is not None:
            moments.append(leaving + FALLBACK_WINDOW)
    return min(moments)


@dataclass(frozen=True)
class _Lines:
    """Makes an action's line from its view, its status at the baseline and its latest update."""

    was: dict[int, Status]
    latest: dict[int, LatestUpdate]

    def __call__(self, view: ActionView) -> ActionLine:
        before = self.was.get(view.id, view.status)
        return ActionLine(view, self.latest.get(view.id), before, travel(before, view.status))


def _sorted_exceptions(views: list[ActionView]) -> dict[str, list[ActionView]]:
    """Off track and at risk in plan order, overdue soonest due first, quiet stalest first."""
    exceptions = [view for view in views if _exception(view)]
    return {
        "red": [view for view in exceptions if view.status == Status.RED],
        "amber": [view for view in exceptions if view.status == Status.AMBER],
        "overdue": [view for view in sorted(exceptions, key=_due) if view.overdue],
        "quiet": [view for view in sorted(exceptions, key=_last_activity) if view.quiet],
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
    priorities: list[Priority], counts: dict[int, StatusCounts], changes: list[_Change]
) -> list[PriorityLine]:
    before = {priority_id: Counter(c.counts) for priority_id, c in counts.items()}
    for change in changes:
        # The actions' status then in place of their status now.
        before[change.priority_id][change.now] -= change.actions
        before[change.priority_id][change.was] += change.actions
    return [
        _priority_line(p, counts.get(_id(p)), before.get(_id(p), Counter())) for p in priorities
    ]


def _id(priority: Priority) -> int:
    assert priority.id is not None
    return priority.id


def _priority_line(
    priority: Priority, counts: StatusCounts | None, before: Counter[Status]
) -> PriorityLine:
    status = priority_status(priority, counts)
    now = overall_rag(s for s, number in status.counts.items() if number > 0)
    was = overall_rag(s for s, number in before.items() if number > 0)
    latest = counts.latest_update_at if counts else None
    return PriorityLine(status, now, was, travel(was, now), latest)


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


@dataclass(frozen=True, slots=True)
class _Move:
    """An action whose status has moved since a moment: its priority, status then and now."""

    action_id: int
    priority_id: int
    was: Status
    now: Status


def _moves_since(
    session: Session,
    *,
    moment: datetime,
    where: ColumnElement[bool] | None = None,
    ids: Iterable[int] | None = None,
) -> list[_Move]:
    """The actions whose status has moved since `moment`, with the status they had then.

    The first live update at or after `moment` records what it moved the action from; an
    action missing from the answer has had no live update since, so its status is current.
    """
    query = (
        sql_select(
            col(ProgressUpdate.action_id),
            type_coerce(ProgressUpdate.previous_status, String),
            col(Action.priority_id),
            col(Action.status),
        )
        .join(Action, col(Action.id) == ProgressUpdate.action_id)
        .where(_live(), col(ProgressUpdate.created_at) >= moment)
        .order_by(col(ProgressUpdate.created_at), col(ProgressUpdate.id))
    )
    if where is not None:
        query = query.where(where)
    if ids is not None:
        # On the update's own column: its index on (action, time) finds them.
        query = query.where(col(ProgressUpdate.action_id).in_(ids))
    first: dict[int, _Move] = {}
    for action_id, previous, priority_id, now in session.connection().execute(query).all():
        if action_id not in first:
            first[action_id] = _Move(action_id, priority_id, _STATUSES[previous], Status(now))
    return list(first.values())


@dataclass(frozen=True, slots=True)
class _Change:
    """How many of a priority's actions have moved from one status to another."""

    priority_id: int
    was: Status
    now: Status
    actions: int


def _first_status_since(moment: datetime) -> Any:
    """Each action's status at `moment`: what its first live update since then moved it
    from (correlated to the action; the index on (action, time) finds it)."""
    return (
        select(type_coerce(ProgressUpdate.previous_status, String))
        .where(
            col(ProgressUpdate.action_id) == Action.id,
            _live(),
            col(ProgressUpdate.created_at) >= moment,
        )
        .order_by(col(ProgressUpdate.created_at), col(ProgressUpdate.id))
        .limit(1)
        .correlate(Action)
        .scalar_subquery()
    )


class BaselineStatuses:
    """How many of each priority's actions have moved from one status to another since the
    baseline: a summary needs the priorities' RAG then, not each action's. Only actions
    whose latest update is since the baseline have moved; for each, its first update since
    (found through the index on (action, time)) says what it moved from.

    An action's status at the baseline is history: new updates come after it and leave it
    as it was, so once found it is kept for as long as the baseline moment stands and no
    stored update has been rewritten or deleted (`history_version`). Each read then finds
    it only for the actions that have moved since the last one, and counts the moves per
    priority from the actions' current statuses, read afresh.

    Shared by the database's worker threads: each read works on its own copy of what is
    kept and puts it back whole, so a read never sees another's half-made changes.
    """

    def __init__(self) -> None:
        self._kept: tuple[datetime, int, dict[int, str]] | None = None

    def changes(
        self, session: Session, *, moment: datetime, where: ColumnElement[bool] | None
    ) -> list[_Change]:
        """The moves since `moment` of the actions `where` picks (None: every action)."""
        # Read before the statuses: a rewrite committed in between is counted next time,
        # and the next read starts afresh rather than keep what it may have changed.
        history = history_version(session)
        kept = self._kept
        rows: Sequence[_MovedRow]
        if kept is None or kept[:2] != (moment, history):
            rows, statuses = _moved_with_statuses_at(session, moment=moment, where=where)
        else:
            statuses = kept[2]
            rows = _moved(session, moment=moment, where=where)
            unknown = [action_id for action_id, _, _ in rows if action_id not in statuses]
            if unknown:  # a copy with them: the kept one may be in another read's hands
                statuses = statuses | _statuses_at(session, moment=moment, ids=unknown)
        self._kept = (moment, history, statuses)
        counted = Counter(
            (priority_id, statuses[action_id], now) for action_id, priority_id, now in rows
        )
        return [
            _Change(p, _STATUSES[was], _STATUSES[now], actions)
            for (p, was, now), actions in counted.items()
        ]


# An action moved since the baseline: its id, priority and status now (as stored: the
# statuses of thousands of actions are only counted, so none is made a `Status` on reading).
_MovedRow = tuple[int, int, str]


def _moved_query(moment: datetime, where: ColumnElement[bool] | None, *extra: Any) -> Any:
    status = type_coerce(Action.status, String)
    query = sql_select(col(Action.id), col(Action.priority_id), status, *extra)
    query = query.where(col(Action.last_update_at) >= moment)
    return query if where is None else query.where(where)


def _moved(
    session: Session, *, moment: datetime, where: ColumnElement[bool] | None
) -> Sequence[_MovedRow]:
    """The actions with a live update since `moment`, with their status now."""
    rows: Sequence[_MovedRow] = session.connection().execute(_moved_query(moment, where)).all()
    return rows


def _moved_with_statuses_at(
    session: Session, *, moment: datetime, where: ColumnElement[bool] | None
) -> tuple[list[_MovedRow], dict[int, str]]:
    """As `_moved`, and each one's status at `moment`, in one statement."""
    query = _moved_query(moment, where, _first_status_since(moment))
    rows: list[_MovedRow] = []
    statuses: dict[int, str] = {}
    for action_id, priority_id, now, was in session.connection().execute(query):
        rows.append((action_id, priority_id, now))
        statuses[action_id] = was
    return rows, statuses


def _statuses_at(session: Session, *, moment: datetime, ids: Sequence[int]) -> dict[int, str]:
    """The status at `moment` (as stored) of each of these actions, each moved since."""
    found: dict[int, str] = {}
    for chunk in statement_chunks(ids):
        query = sql_select(col(Action.id), _first_status_since(moment)).where(
            col(Action.id).in_(chunk)
        )
        found.update((action_id, was) for action_id, was in session.connection().execute(query))
    return found


def _organisation_returns(
    session: Session, *, since: datetime, where: ColumnElement[bool] | None
) -> list[OrganisationReturn]:
    """Per lead organisation: open actions, how many were updated since `since`, and when
    it last sent an update; in order of name. Counted in SQL, one row per organisation."""
    last_at = col(Action.last_update_at)
    query = (
        sql_select(
            col(Organisation.id),
            col(Organisation.name),
            func.sum(case((col(Action.status) != Status.COMPLETE, 1), else_=0)),
            func.sum(case((last_at >= since, 1), else_=0)),
            func.max(last_at),
        )
        .join(Organisation, col(Organisation.id) == Action.lead_organisation_id)
        .group_by(col(Organisation.id), col(Organisation.name))
    )
    if where is not None:
        query = query.where(where)
    returns = [
        OrganisationReturn(org_id, name, open_ or 0, updated or 0, as_utc(last))
        for org_id, name, open_, updated, last in session.connection().execute(query).all()
    ]
    return sorted(returns, key=lambda organisation: organisation.organisation)


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
    # Taken row by row: the paper reads every action's, and a list of the rows would be
    # one more copy of them all.
    return {row[0]: _latest(row) for row in session.connection().execute(query)}


def _latest(row: Any) -> LatestUpdate:
    _, note, mitigation, forecast, created_at, author = row
    return LatestUpdate(note, mitigation, forecast, author or "plan import", created_at)


def _funding(session: Session, *, at: datetime, scope: Priority | None) -> FundingPosition:
    """This financial year's funding and the next's; for one priority, only the
    contributions of the organisations that lead one of its actions.

    Funding streams serve the partnership as a whole and name no priority; the partners
    delivering a priority are the ones whose money its board discussion turns on."""
    this_year = financial_year_of(at.date())
    where = None
    if scope is not None:
        leads = select(Action.lead_organisation_id).where(Action.priority_id == _id(scope))
        where = col(FundingDecision.organisation_id).in_(leads)
    return FundingPosition(
        years=tuple(
            funding_year(session, year=year, where=where) for year in (this_year, this_year + 1)
        )
    )
