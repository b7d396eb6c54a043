"""Measures and their figures: the plan's performance framework beside its actions.

A measure (from the plan file) has a baseline, targets by period and a tolerance; partners
send a figure per period. The live figure of a period is the latest one sent that was
neither replaced nor withdrawn (/undo). A figure's RAG compares it with the period's
target: on the right side of it (or on it) green, within the tolerance amber, beyond red.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from csp_bot.models.absences import covering_for
from csp_bot.models.access import UPDATERS, may_supply
from csp_bot.models.audit import Actor, record_change, snapshot
from csp_bot.models.data_version import measures_version
from csp_bot.models.enums import Status
from csp_bot.models.errors import DomainError, NotFound
from csp_bot.models.limits import check_note
from csp_bot.models.owners import owned_measure_ids
from csp_bot.models.progress import UNDO_WINDOW, Undone, undo_last_update
from csp_bot.models.tables import (
    Measure,
    MeasureFigure,
    MeasureTarget,
    Member,
    Organisation,
    PlanInfo,
    Priority,
    ProgressUpdate,
)
from csp_bot.models.types import as_utc
from csp_bot.models.values import Period, format_figure, parse_figure, parse_period

UNIT_PHRASES = {"count": "a count", "%": "per cent", "£": "in pounds", "days": "in days"}


class UnknownMeasure(NotFound):
    """No measure has this code; `suggestions` holds the closest ones."""

    def __init__(self, code: str, suggestions: list[str]) -> None:
        hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"There is no measure {code}.{hint}")
        self.code = code
        self.suggestions = suggestions


class FigureRefused(DomainError):
    """A figure that cannot be stored: the reason, said to the person who sent it."""


# --- what a measure looks like -----------------------------------------------------------------


@dataclass(frozen=True)
class FigureView:
    """A live figure: its period, value and note, who sent it and when."""

    id: int
    period: Period
    value: float
    note: str
    sent_by: str | None
    sent_at: datetime


@dataclass(frozen=True)
class Trend:
    """A figure beside an earlier one: `better` is None when they are the same."""

    against: str  # "previous period", "same period last year"
    period: Period
    value: float
    change: float
    better: bool | None


@dataclass(frozen=True)
class MeasureView:
    """A measure with its targets and live figures, oldest period first."""

    id: int
    code: str
    title: str
    priority_code: str
    unit: str
    frequency: str
    supplier: str
    supplier_id: int
    contact: str | None
    lower_is_better: bool
    tolerance: float
    baseline: tuple[Period, float] | None
    targets: tuple[tuple[Period, float], ...]
    figures: tuple[FigureView, ...] = field(default=())

    def show(self, value: float) -> str:
        return format_figure(value, self.unit)

    @property
    def unit_phrase(self) -> str:
        return UNIT_PHRASES.get(self.unit, self.unit)

    @property
    def better_word(self) -> str:
        return "lower" if self.lower_is_better else "higher"

    @property
    def latest(self) -> FigureView | None:
        return self.figures[-1] if self.figures else None

    def figure_for(self, period: Period) -> FigureView | None:
        return next((figure for figure in self.figures if figure.period == period), None)

    def target_for(self, period: Period) -> float | None:
        """The target of `period`, or the latest before it (each holds until the next)."""
        earlier = [(p, value) for p, value in self.targets if p <= period]
        return earlier[-1][1] if earlier else None

    def rag(self, figure: FigureView | None = None) -> Status | None:
        """The RAG of `figure` (default the latest); None without a figure or a target."""
        figure = figure or self.latest
        if figure is None:
            return None
        target = self.target_for(figure.period)
        return None if target is None else rate(figure.value, target, self)

    def trends(self) -> list[Trend]:
        """The latest figure against the previous period's and the same period's a year
        before, where there are figures for them."""
        latest = self.latest
        if latest is None:
            return []
        found = []
        for against, period in (
            ("previous period", latest.period.shifted(-1)),
            ("same period last year", latest.period.year_before),
        ):
            earlier = self.figure_for(period)
            if earlier is not None:
                found.append(self._trend(against, earlier, latest))
        return found

    def _trend(self, against: str, earlier: FigureView, latest: FigureView) -> Trend:
        change = latest.value - earlier.value
        better = None if change == 0 else (change < 0) == self.lower_is_better
        return Trend(against, earlier.period, earlier.value, change, better)

    @property
    def off_target(self) -> bool:
        return self.rag() in (Status.RED, Status.AMBER)


def rate(value: float, target: float, measure: MeasureView) -> Status:
    """Green on the right side of the target or on it, amber within the tolerance on the
    wrong side (its edge included), red beyond."""
    shortfall = value - target if measure.lower_is_better else target - value
    if shortfall <= 0:
        return Status.GREEN
    return Status.AMBER if shortfall <= measure.tolerance else Status.RED


# --- reading -----------------------------------------------------------------------------------


def measure_views(
    session: Session, *, where: ColumnElement[bool] | None = None, latest_only: bool = False
) -> list[MeasureView]:
    """Every measure (or those `where` picks) in plan order, with targets and live figures
    (or, `latest_only`, the latest figure alone): three statements whatever the number of
    measures."""
    # Plain rows rather than ORM objects, as for the figures: /status and /summary read
    # every measure.
    query = (
        sql_select(
            _MEASURES,
            col(Priority.code).label("priority_code"),
            col(Organisation.name).label("supplier_name"),
        )
        .join(Priority, col(Priority.id) == Measure.priority_id)
        .join(Organisation, col(Organisation.id) == Measure.supplier_organisation_id)
        .order_by(col(Priority.id), col(Measure.id))
    )
    if where is not None:
        query = query.where(where)
    rows = session.execute(query).all()
    ids = [row.id for row in rows]
    targets = _targets(session, ids)
    figures = _live_figures(session, ids, latest_only=latest_only)
    return [
        _view(row, row.priority_code, row.supplier_name, targets[row.id], figures[row.id])
        for row in rows
    ]


_MEASURES = Measure.__table__  # type: ignore[attr-defined]
# Stored periods are few and written alike: each is read once per process, not per row.
_stored_period = functools.lru_cache(maxsize=1024)(parse_period)


def _id(record: Measure | MeasureFigure) -> int:
    assert record.id is not None
    return record.id


def _targets(session: Session, ids: list[int]) -> dict[int, list[tuple[Period, float]]]:
    found: dict[int, list[tuple[Period, float]]] = defaultdict(list)
    if not ids:
        return found
    rows = session.execute(
        sql_select(
            col(MeasureTarget.measure_id), col(MeasureTarget.period), col(MeasureTarget.value)
        ).where(col(MeasureTarget.measure_id).in_(ids))
    ).all()
    for measure_id, period, value in rows:
        found[measure_id].append((_stored_period(period), value))
    return found


def _live() -> ColumnElement[bool]:
    return col(MeasureFigure.withdrawn_at).is_(None) & col(MeasureFigure.superseded_at).is_(None)


def _live_figures(
    session: Session, ids: list[int], *, latest_only: bool = False
) -> dict[int, list[FigureView]]:
    found: dict[int, list[FigureView]] = defaultdict(list)
    if not ids:
        return found
    wanted = col(MeasureFigure.measure_id).in_(ids) & _live()
    if latest_only:
        # A measure's periods are all months or all quarters, and each kind sorts as text.
        latest = (
            sql_select(
                col(MeasureFigure.measure_id).label("measure_id"),
                func.max(MeasureFigure.period).label("period"),
            )
            .where(wanted)
            .group_by(col(MeasureFigure.measure_id))
            .subquery()
        )
        wanted = (
            wanted
            & (col(MeasureFigure.measure_id) == latest.c.measure_id)
            & (col(MeasureFigure.period) == latest.c.period)
        )
    # Plain rows rather than ORM objects: a plan's figures run to thousands.
    rows = session.execute(
        sql_select(
            col(MeasureFigure.measure_id),
            col(MeasureFigure.id),
            col(MeasureFigure.period),
            col(MeasureFigure.value),
            col(MeasureFigure.note),
            col(MeasureFigure.created_at),
            col(Member.name),
        )
        .outerjoin(Member, col(Member.id) == MeasureFigure.member_id)
        .where(wanted)
    ).all()
    for measure_id, figure_id, period, value, note, created_at, name in rows:
        view = FigureView(figure_id, _stored_period(period), value, note, name, created_at)
        found[measure_id].append(view)
    return found


def _figure_view(figure: MeasureFigure, sent_by: str | None) -> FigureView:
    return FigureView(
        id=_id(figure),
        period=parse_period(figure.period),
        value=figure.value,
        note=figure.note,
        sent_by=sent_by,
        sent_at=as_utc(figure.created_at) or figure.created_at,
    )


def _view(
    measure: Any,  # a row of the measure table
    priority_code: str,
    supplier: str,
    targets: Iterable[tuple[Period, float]],
    figures: Iterable[FigureView],
) -> MeasureView:
    baseline = None
    if measure.baseline_period is not None and measure.baseline_value is not None:
        baseline = (_stored_period(measure.baseline_period), measure.baseline_value)
    return MeasureView(
        id=measure.id,
        code=measure.code,
        title=measure.title,
        priority_code=priority_code,
        unit=measure.unit,
        frequency=measure.frequency,
        supplier=supplier,
        supplier_id=measure.supplier_organisation_id,
        contact=measure.contact,
        lower_is_better=measure.lower_is_better,
        tolerance=measure.tolerance,
        baseline=baseline,
        targets=tuple(sorted(targets)),
        figures=tuple(sorted(figures, key=lambda figure: figure.period)),
    )


def find_measure(session: Session, *, code: str) -> MeasureView:
    """The measure with this code (any case), or UnknownMeasure with the closest codes."""
    wanted = code.strip().upper()
    found = measure_views(session, where=col(Measure.code) == wanted)
    if found:
        return found[0]
    codes = list(session.exec(select(Measure.code)).all())
    raise UnknownMeasure(wanted, difflib.get_close_matches(wanted, codes, n=3))


def measure_by_id(session: Session, *, measure_id: int) -> MeasureView | None:
    """The measure with this id, or None once it is gone from the plan."""
    found = measure_views(session, where=col(Measure.id) == measure_id)
    return found[0] if found else None


def plan_starts_on(session: Session) -> date | None:
    """The first day of the plan's year (None before a plan is loaded): figures for periods
    before it are not asked for."""
    plan = session.exec(select(PlanInfo)).first()
    return None if plan is None else plan.starts_on


def priority_measures(
    session: Session, *, priority_id: int | None = None, latest_only: bool = False
) -> list[MeasureView]:
    """One priority's measures (or every measure), in plan order; `latest_only` reads each
    one's latest figure alone (enough for its RAG)."""
    where = None if priority_id is None else col(Measure.priority_id) == priority_id
    return measure_views(session, where=where, latest_only=latest_only)


class MeasureCache:
    """Every measure with its latest figure (as `priority_measures(latest_only=True)`),
    kept while nothing it shows has been written (`measures_version`): /status and the
    summary read it after every partner's update, and figures come a few times a quarter.

    Shared by the database's worker threads: what is kept is replaced whole, never changed.
    """

    def __init__(self) -> None:
        self._kept: tuple[int, list[MeasureView]] | None = None

    def latest(self, session: Session, *, priority_code: str | None = None) -> list[MeasureView]:
        """One priority's measures (by code), or every measure, in plan order."""
        version = measures_version(session)
        kept = self._kept
        if kept is None or kept[0] != version:
            kept = (version, measure_views(session, latest_only=True))
            self._kept = kept
        views = kept[1]
        return (
            views
            if priority_code is None
            else [v for v in views if v.priority_code == priority_code]
        )


def measures_supplied_by(session: Session, *, member_id: int, at: datetime) -> list[MeasureView]:
    """The measures a member may send figures for: their organisation's, or all of them
    for those who may update anything, and those they own or cover for an owner."""
    member = session.get_one(Member, member_id)
    owned = _owned_measures(session, member, at)
    views = measure_views(session)
    return [view for view in views if _may_supply(member, view, owned)]


def _may_supply(member: Member, view: MeasureView, owned: set[int]) -> bool:
    by_role = may_supply(
        member.role,
        organisation_id=member.organisation_id,
        supplier_organisation_id=view.supplier_id,
    )
    return by_role or view.id in owned


def _owned_measures(session: Session, member: Member, at: datetime) -> set[int]:
    """The measures the member owns, and those an owner they cover for at `at` owns."""
    if member.role not in UPDATERS:
        return set()
    assert member.id is not None
    covered = covering_for(session, deputy_id=member.id, at=at)
    return owned_measure_ids(session, member_ids=[member.id, *covered])


# --- periods -----------------------------------------------------------------------------------


def proposed_period(view: MeasureView, *, today: date) -> Period:
    """The period a figure is most likely wanted for: the latest one that has ended."""
    return current_period(view.frequency, today).shifted(-1)


def current_period(frequency: str, today: date) -> Period:
    return Period.containing(today, quarterly=frequency == "quarterly")


def read_period(view: MeasureView, text: str, *, today: date) -> Period:
    """A period typed for `view`: of its frequency, and ended by `today`."""
    try:
        period = parse_period(text)
    except ValueError as problem:
        raise FigureRefused(f"{str(problem)[0].upper()}{str(problem)[1:]}.") from None
    if period.quarterly != (view.frequency == "quarterly"):
        example = proposed_period(view, today=today)
        raise FigureRefused(
            f"{view.code} is reported {view.frequency}: give a period such as {example}."
        )
    if period.ends_on >= today:
        raise FigureRefused(
            f"{period} has not ended yet (it ends on {period.ends_on:%-d %b %Y}): "
            "figures are sent for periods that are over."
        )
    return period


def read_value(view: MeasureView, text: str) -> float:
    try:
        return parse_figure(text, unit=view.unit)
    except ValueError as problem:
        raise FigureRefused(f"{view.code} is measured in {view.unit}: {problem}.") from None


# --- writing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureRecorded:
    """A figure stored: the measure as it is now, the figure, and the one it replaced."""

    measure: MeasureView
    figure: FigureView
    replaced: FigureView | None
    duplicate: bool = False


def check_supplier(session: Session, *, member_id: int, view: MeasureView, at: datetime) -> None:
    member = session.get_one(Member, member_id)
    if not _may_supply(member, view, _owned_measures(session, member, at)):
        raise FigureRefused(
            f"{view.code} is supplied by {view.supplier}; partners send figures only for "
            f"their own organisation's measures ({_organisation(session, member)})."
        )


def _organisation(session: Session, member: Member) -> str:
    return session.get_one(Organisation, member.organisation_id).name


def record_figure(
    session: Session,
    *,
    code: str,
    period: Period,
    value: float,
    note: str,
    at: datetime,
    actor: Actor,
    telegram_update_id: int | None = None,
) -> FigureRecorded:
    """Store a figure, replacing (and keeping, marked superseded) the period's live one;
    both changes go to the audit trail. The caller has checked who may send it."""
    view = find_measure(session, code=code)
    if telegram_update_id is not None:
        again = _by_update(session, telegram_update_id)
        if again is not None:
            return FigureRecorded(view, _figure_view(again, None), None, duplicate=True)
    earlier = _live_for(session, view.id, period)
    replaced = None
    if earlier is not None:
        replaced = _figure_view(earlier, None)
        before = snapshot(earlier)
        earlier.superseded_at = at
        record_change(session, actor=actor, at=at, record=earlier, before=before)
    figure = MeasureFigure(
        measure_id=view.id,
        period=str(period),
        value=value,
        note=check_note(note, required=False),
        member_id=actor.member_id,
        created_at=at,
        replaces_id=None if earlier is None else earlier.id,
        telegram_update_id=telegram_update_id,
    )
    record_change(session, actor=actor, at=at, record=figure, before=None)
    sender = session.get(Member, actor.member_id) if actor.member_id else None
    stored = _figure_view(figure, sender.name if sender else None)
    return FigureRecorded(find_measure(session, code=code), stored, replaced)


def _by_update(session: Session, telegram_update_id: int) -> MeasureFigure | None:
    return session.exec(
        select(MeasureFigure).where(MeasureFigure.telegram_update_id == telegram_update_id)
    ).first()


def _live_for(session: Session, measure_id: int, period: Period) -> MeasureFigure | None:
    return session.exec(
        select(MeasureFigure).where(
            MeasureFigure.measure_id == measure_id,
            MeasureFigure.period == str(period),
            _live(),
        )
    ).first()


def preview_figure(session: Session, *, code: str, period: Period) -> FigureView | None:
    """The live figure a new one for `period` would replace."""
    view = find_measure(session, code=code)
    return view.figure_for(period)


@dataclass(frozen=True)
class FigureUndone:
    """What /undo took back, and the figure of that period now standing (if any)."""

    code: str
    unit: str
    figure: FigureView
    restored: FigureView | None

    def show(self, value: float) -> str:
        return format_figure(value, self.unit)


def latest_figure_sent(session: Session, *, member_id: int) -> MeasureFigure | None:
    """The member's latest figure still standing, if any."""
    return session.exec(
        select(MeasureFigure)
        .where(MeasureFigure.member_id == member_id, _live())
        .order_by(col(MeasureFigure.created_at).desc(), col(MeasureFigure.id).desc())
    ).first()


def undo_figure(
    session: Session,
    *,
    figure: MeasureFigure,
    member_id: int,
    at: datetime,
    window: timedelta = UNDO_WINDOW,
) -> FigureUndone:
    """Withdraw the figure and put back the one it replaced; the audit trail keeps all."""
    if at - (as_utc(figure.created_at) or figure.created_at) > window:
        minutes = int(window.total_seconds() // 60)
        raise DomainError(f"You have no update or figure from the last {minutes} minutes to undo.")
    actor = Actor.member(member_id)
    before = snapshot(figure)
    figure.withdrawn_at = at
    record_change(session, actor=actor, at=at, record=figure, before=before)
    restored = None
    if figure.replaces_id is not None:
        earlier = session.get_one(MeasureFigure, figure.replaces_id)
        before = snapshot(earlier)
        earlier.superseded_at = None
        record_change(session, actor=actor, at=at, record=earlier, before=before)
        restored = _figure_view(earlier, None)
    measure = session.get_one(Measure, figure.measure_id)
    return FigureUndone(measure.code, measure.unit, _figure_view(figure, None), restored)


# --- many at once: `csp-bot figures import` ------------------------------------------------------


@dataclass(frozen=True)
class FigureRow:
    """One figure as a spreadsheet gives it: where it came from and what it says."""

    line: int
    code: str
    period: str
    value: str
    note: str = ""


class FiguresError(DomainError):
    """Figures that cannot be imported: one line per problem, `file:line: reason`."""

    def __init__(self, errors: Sequence[str]) -> None:
        shown = list(errors[:MAX_ERRORS])
        if len(errors) > MAX_ERRORS:
            shown.append(f"... and {len(errors) - MAX_ERRORS} more problems")
        super().__init__("the figures were rejected; nothing was stored:\n" + "\n".join(shown))
        self.errors = list(errors)


MAX_ERRORS = 20
FIGURE_COLUMNS = ("measure", "period", "value", "note")
FIGURES_FILE_BYTES = 5_000_000


def read_figures_csv(path: Path) -> list[FigureRow]:
    """The rows of a figures spreadsheet saved as CSV: a header row naming `measure`,
    `period`, `value` and optionally `note`, in any order and case."""
    try:
        if path.stat().st_size > FIGURES_FILE_BYTES:
            raise FiguresError([f"{path}:1: the file is over {FIGURES_FILE_BYTES:,} bytes"])
        text = path.read_text(encoding="utf-8-sig")  # Excel writes a byte order mark
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise FiguresError([f"{path}: cannot read the file: {reason}"]) from None
    reader = csv.reader(io.StringIO(text))
    header = [cell.strip().lower() for cell in next(reader, [])]
    missing = [name for name in FIGURE_COLUMNS[:3] if name not in header]
    if missing:
        wanted = ", ".join(FIGURE_COLUMNS)
        raise FiguresError(
            [
                f"{path}:1: the first row must name the columns {wanted} "
                f"(missing: {', '.join(missing)})"
            ]
        )
    at = {name: header.index(name) for name in FIGURE_COLUMNS if name in header}
    rows = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, as spreadsheets leave at the end
        cells += [""] * (len(header) - len(cells))
        rows.append(
            FigureRow(
                line=reader.line_num,
                code=cells[at["measure"]],
                period=cells[at["period"]],
                value=cells[at["value"]],
                note=cells[at["note"]] if "note" in at else "",
            )
        )
    return rows


@dataclass(frozen=True)
class FiguresImported:
    stored: int
    replaced: int


def import_figures(
    session: Session,
    *,
    rows: Sequence[FigureRow],
    source: str,
    at: datetime,
    actor: Actor,
    today: date,
) -> FiguresImported:
    """Check every row, then store them all; FiguresError (and nothing stored) if any is bad."""
    views = {view.code: view for view in measure_views(session)}
    checked: list[tuple[str, Period, float, str]] = []
    errors: list[str] = []
    seen: dict[tuple[str, Period], int] = {}
    for row in rows:
        try:
            item = _checked_row(views, row, today)
        except (FigureRefused, ValueError) as problem:
            errors.append(f"{source}:{row.line}: {problem}")
            continue
        first = seen.setdefault((item[0], item[1]), row.line)
        if first != row.line:
            errors.append(
                f"{source}:{row.line}: a second figure for {item[0]} {item[1]} (line {first})"
            )
        checked.append(item)
    if errors:
        raise FiguresError(errors)
    replaced = 0
    for code, period, value, note in checked:
        recorded = record_figure(
            session, code=code, period=period, value=value, note=note, at=at, actor=actor
        )
        replaced += recorded.replaced is not None
    return FiguresImported(stored=len(checked), replaced=replaced)


def _checked_row(
    views: dict[str, MeasureView], row: FigureRow, today: date
) -> tuple[str, Period, float, str]:
    code = row.code.strip().upper()
    view = views.get(code)
    if view is None:
        close = difflib.get_close_matches(code, list(views), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise FigureRefused(f"unknown measure {row.code.strip()!r}{hint}")
    period = read_period(view, row.period, today=today)
    return code, period, read_value(view, row.value), check_note(row.note, required=False)


def rag_words(view: MeasureView, figure: FigureView | None = None) -> str:
    """The RAG of a figure said in words, with the tolerance it was judged by."""
    figure = figure or view.latest
    rag = view.rag(figure)
    if figure is None or rag is None:
        return "not rated: no target"
    if rag is Status.GREEN:
        return "on target"
    within = "within" if rag is Status.AMBER else "beyond"
    return f"off target, {within} the tolerance of {view.show(view.tolerance)}"


def chart_description(view: MeasureView) -> str:
    """What a measure's trend chart shows, in words: its alt text."""
    parts = [f"Trend chart of {view.code}, {view.title}"]
    if view.figures:
        first, last = view.figures[0], view.figures[-1]
        if len(view.figures) == 1:
            parts.append(f"one figure, {view.show(last.value)} for {last.period}")
        else:
            parts.append(
                f"{len(view.figures)} figures from {first.period} ({view.show(first.value)}) "
                f"to {last.period} ({view.show(last.value)})"
            )
        target = view.target_for(last.period)
        if target is not None:
            parts.append(f"target for {last.period} {view.show(target)}")
    else:
        parts.append("no figures yet")
    if view.baseline is not None:
        parts.append(f"baseline {view.show(view.baseline[1])} ({view.baseline[0]})")
    parts.append(f"{view.better_word} is better")
    return "; ".join(parts) + "."


def undo_latest(session: Session, *, member_id: int, at: datetime) -> Undone | FigureUndone:
    """/undo: take back the member's latest update or figure, whichever came last."""
    figure = latest_figure_sent(session, member_id=member_id)
    update = session.exec(
        select(ProgressUpdate.created_at)
        .where(ProgressUpdate.member_id == member_id, col(ProgressUpdate.withdrawn_at).is_(None))
        .order_by(col(ProgressUpdate.created_at).desc())
    ).first()
    figure_at = None if figure is None else as_utc(figure.created_at)
    recent = figure_at is not None and at - figure_at <= UNDO_WINDOW
    if figure is not None and recent and (update is None or _not_after(update, figure_at)):
        return undo_figure(session, figure=figure, member_id=member_id, at=at)
    return undo_last_update(session, member_id=member_id, at=at)


def _not_after(moment: datetime, other: datetime | None) -> bool:
    return other is not None and (as_utc(moment) or moment) <= other


@dataclass
class RagCounts:
    """A priority's measures counted by the RAG of their latest figure."""

    red: int = 0
    amber: int = 0
    green: int = 0
    unrated: int = 0  # no figure yet, or no target for its period


def rag_counts(views: Iterable[MeasureView]) -> dict[str, RagCounts]:
    """Per priority code, its measures counted by RAG."""
    counts: dict[str, RagCounts] = defaultdict(RagCounts)
    for view in views:
        rag = view.rag()
        tally = counts[view.priority_code]
        name = {Status.RED: "red", Status.AMBER: "amber", Status.GREEN: "green"}.get(
            rag or Status.NOT_STARTED, "unrated"
        )
        setattr(tally, name, getattr(tally, name) + 1)
    return dict(counts)


def measure_codes(session: Session) -> set[str]:
    """Every measure's code."""
    return set(session.exec(select(Measure.code)).all())
