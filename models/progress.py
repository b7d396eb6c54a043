"""Progress on actions: logging and taking back updates, and the views that read them.

The read side is one query layer: every list of actions (a partner's, a priority's, the
status overview) comes from `action_views`, so "overdue" and "quiet" mean the same thing
wherever they are shown.
"""

from __future__ import annotations

import difflib
import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    type_coerce,
)
from sqlalchemy import select as sql_select
from sqlalchemy import update as update_rows
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from csp_bot.models import access
from csp_bot.models.audit import (
    Actor,
    Change,
    insert_changes,
    record_change,
    row_snapshot,
    snapshot,
)
from csp_bot.models.db import note_write
from csp_bot.models.enums import Status
from csp_bot.models.errors import DomainError, NotFound
from csp_bot.models.limits import check_note
from csp_bot.models.membership import MemberView, active_member, member_view_columns
from csp_bot.models.owners import extra_action_ids, may_update_action
from csp_bot.models.status_since import status_changed_at
from csp_bot.models.tables import Action, Member, Organisation, Priority, ProgressUpdate
from csp_bot.models.types import UTCDateTime, as_utc

UNDO_WINDOW = timedelta(minutes=15)
# Worst first: the order in which exception lists show statuses.
STATUS_ORDER = (Status.RED, Status.AMBER, Status.NOT_STARTED, Status.GREEN, Status.COMPLETE)
_RANK = {Status.RED: 0, Status.AMBER: 1, Status.GREEN: 2, Status.COMPLETE: 3}


class Direction(StrEnum):
    """Direction of travel between two reports on the same action."""

    IMPROVING = "improving"
    STEADY = "steady"
    WORSENING = "worsening"
    FIRST = "first report"


def direction(before: Status, after: Status) -> Direction:
    """How the status moved; from not started there is no direction yet."""
    if before == Status.NOT_STARTED or after == Status.NOT_STARTED:
        return Direction.FIRST if before == Status.NOT_STARTED else Direction.WORSENING
    if _RANK[after] > _RANK[before]:
        return Direction.IMPROVING
    return Direction.WORSENING if _RANK[after] < _RANK[before] else Direction.STEADY


@dataclass(frozen=True, slots=True)
class ActionView:
    """An action as lists show it, with the flags that make it an exception."""

    id: int
    ref: str
    title: str
    description: str
    priority_code: str
    lead_organisation_id: int
    lead_organisation: str
    owner: str | None
    due_on: date | None
    status: Status
    status_at: datetime
    last_update_at: datetime | None
    overdue: bool
    quiet: bool


@dataclass(frozen=True)
class UpdateView:
    """One progress update as /action and /history show it."""

    id: int
    ref: str
    status: Status
    note: str
    mitigation: str | None
    forecast: str | None
    author: str
    created_at: datetime
    direction: Direction


@dataclass(frozen=True)
class PriorityStatus:
    """One priority's line in /status."""

    code: str
    title: str
    counts: dict[Status, int]
    overdue: int
    quiet: int

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class LoggedUpdate:
    """A stored update and where it moved the action from."""

    update: UpdateView
    action: ActionView
    previous_status: Status
    duplicate: bool


class UnknownAction(NotFound):
    """No action has this reference; `suggestions` holds the closest ones."""

    def __init__(self, ref: str, suggestions: list[str]) -> None:
        super().__init__(f"no action {ref}")
        self.ref = ref
        self.suggestions = suggestions


class NotPermitted(DomainError):
    """The member may not change this action."""


def normalise_ref(ref: str) -> str:
    """References are case-insensitive and stored upper-case."""
    return ref.strip().upper()


def may_update(member: MemberView, lead_organisation_id: int) -> bool:
    """Chair and coordinator may update any action; partners their own organisation's."""
    return access.may_update(
        member.role,
        organisation_id=member.organisation_id,
        lead_organisation_id=lead_organisation_id,
    )


def refusal(member: MemberView, action: ActionView) -> str:
    """Why `member` may not update `action`, in words they can act on."""
    if member.role in access.UPDATE_OWN:
        return (
            f"{action.ref} is led by {action.lead_organisation}. Partners can update only "
            f"their own organisation's actions ({member.organisation})."
        )
    return "Board members and observers can read progress but not update it."


# --- the query layer -------------------------------------------------------------------


def action_views(session: Session, *, at: datetime, quiet_after: timedelta) -> list[ActionView]:
    """Every action, in plan order, each with its exception flags."""
    return query_action_views(session, at=at, quiet_after=quiet_after)


def action_by_id(
    session: Session, *, action_id: int, at: datetime, quiet_after: timedelta
) -> ActionView | None:
    """One action with its exception flags; None if there is no such action."""
    where = col(Action.id) == action_id
    views = query_action_views(session, at=at, quiet_after=quiet_after, where=where)
    return views[0] if views else None


def query_action_views(
    session: Session,
    *,
    at: datetime,
    quiet_after: timedelta,
    where: ColumnElement[bool] | None = None,
    first_by: Sequence[Any] = (),
    limit: int | None = None,
) -> list[ActionView]:
    """Actions (filtered by the SQL condition `where`), in plan order, with exception flags.

    `first_by` orders them before plan order does; `limit` keeps the first so many.

    For the domain's own operations: above `models`, callers use the named ones.

    One statement whatever the number of actions, and no pass over the updates: the time of
    each action's latest live update is kept on the action (`Action.last_update_at`).
    """
    last_at = col(Action.last_update_at)
    query = (
        sql_select(*_VIEW_COLUMNS, col(Priority.code), col(Organisation.name), last_at)
        .join(Priority, col(Priority.id) == Action.priority_id)
        .join(Organisation, col(Organisation.id) == Action.lead_organisation_id)
        # Plan order: the priority's, then the action's (by the action's own column, which
        # its indexes hold).
        .order_by(*first_by, col(Action.priority_id), col(Action.id))
        .limit(limit)
    )
    if where is not None:
        query = query.where(where)
    # Plain rows rather than ORM entities: the status overview reads every action, and
    # building 10,000 tracked objects costs more than the query. Taken row by row, without
    # a list of every row beside the views.
    return [_view(row, at, quiet_after) for row in session.connection().execute(query)]


@functools.cache
def _views_select() -> Select[*tuple[Any, ...]]:
    """The views' query with no condition, built once: building it costs more than running
    it for one action."""
    return (
        sql_select(
            *_VIEW_COLUMNS,
            col(Priority.code),
            col(Organisation.name),
            col(Action.last_update_at),
        )
        .join(Priority, col(Priority.id) == Action.priority_id)
        .join(Organisation, col(Organisation.id) == Action.lead_organisation_id)
        .order_by(col(Priority.id), col(Action.id))
    )


@functools.cache
def _view_by_ref() -> Select[*tuple[Any, ...]]:
    return _views_select().where(col(Action.ref) == bindparam("ref"))


_VIEW_COLUMNS = (
    col(Action.id),
    col(Action.ref),
    col(Action.title),
    col(Action.description),
    col(Action.lead_organisation_id),
    col(Action.owner),
    col(Action.due_on),
    col(Action.status),
    # A view's `status_at` is since when the status has held, as every list shows it.
    type_coerce(func.coalesce(Action.status_changed_at, Action.status_at), UTCDateTime()),
)


def _view(row: Any, at: datetime, quiet_after: timedelta) -> ActionView:
    id_, ref, title, description, lead_id, owner, due_on, status, status_at, code, org, last = row
    last_at = as_utc(last)
    finished = status == Status.COMPLETE
    last_activity = last_at or status_at
    # Positional: a frozen dataclass built from keywords costs twice as much, and
    # the status overview builds one per action.
    return ActionView(
        id_,
        ref,
        title,
        description,
        code,
        lead_id,
        org,
        owner,
        due_on,
        status,
        status_at,
        last_at,
        not finished and due_on is not None and due_on < at.date(),  # overdue
        not finished and at - last_activity >= quiet_after,  # quiet
    )


def organisation_actions(
    session: Session, *, organisation_id: int, at: datetime, quiet_after: timedelta
) -> list[ActionView]:
    """The actions an organisation leads (a partner's /my)."""
    condition = col(Action.lead_organisation_id) == organisation_id
    return query_action_views(session, at=at, quiet_after=quiet_after, where=condition)


def updatable_actions(
    session: Session, *, member: MemberView, at: datetime, quiet_after: timedelta
) -> list[ActionView]:
    """What `member` may update, open actions first: by their role, then those they own
    (or own for someone away whom they cover for)."""
    if member.role in access.UPDATE_ANY:
        views = action_views(session, at=at, quiet_after=quiet_after)
    elif member.role in access.UPDATE_OWN:
        views = member_actions(session, member=member, at=at, quiet_after=quiet_after)
    else:
        views = []
    return sorted(views, key=lambda view: view.status == Status.COMPLETE)


def member_actions(
    session: Session,
    *,
    member: MemberView,
    at: datetime,
    quiet_after: timedelta,
    covered: list[int] | None = None,
) -> list[ActionView]:
    """A member's /my: their organisation's actions and, for one who may update, those they
    own or own for someone they cover for, in plan order (`covered`: as `extra_action_ids`)."""
    extra = sorted(extra_action_ids(session, member=member, at=at, covered=covered))
    params = {"organisation_id": member.organisation_id, "action_ids": extra}
    rows = session.connection().execute(_member_views(bool(extra)), params)
    return [_view(row, at, quiet_after) for row in rows]


@functools.cache
def _member_views(with_extra: bool) -> Select[*tuple[Any, ...]]:
    """`member_actions`' query, built once (with the actions picked by id, or without, so
    that the common case keeps to the organisation's index)."""
    condition = col(Action.lead_organisation_id) == bindparam("organisation_id")
    if with_extra:
        condition = or_(condition, col(Action.id).in_(bindparam("action_ids", expanding=True)))
    return _views_select().where(condition)


def find_action(session: Session, *, ref: str, at: datetime, quiet_after: timedelta) -> ActionView:
    """The action with this reference (any case), or UnknownAction with the closest ones."""
    wanted = normalise_ref(ref)
    row = session.connection().execute(_view_by_ref(), {"ref": wanted}).first()
    if row is None:
        raise UnknownAction(wanted, closest_refs(session, ref=wanted))
    return _view(row, at, quiet_after)


def closest_refs(session: Session, *, ref: str, limit: int = 3) -> list[str]:
    """References that look like `ref`, best first (same priority code counts most)."""
    refs = session.exec(select(Action.ref).order_by(col(Action.id))).all()
    close = difflib.get_close_matches(ref, refs, n=limit, cutoff=0.5)
    if close:
        return close
    prefix = ref.split("-")[0]
    return [candidate for candidate in refs if candidate.startswith(prefix + "-")][:limit]


def priority_actions(
    session: Session, *, code: str, at: datetime, quiet_after: timedelta
) -> tuple[Priority, list[ActionView]]:
    """A priority (any case) and its actions; NotFound lists the valid codes."""
    priority = session.exec(select(Priority).where(Priority.code == code.strip().upper())).first()
    if priority is None:
        codes = ", ".join(session.exec(select(Priority.code).order_by(col(Priority.id))).all())
        raise NotFound(f"No priority {code.strip().upper()}. The priorities are {codes}.")
    condition = col(Action.priority_id) == priority.id
    return priority, query_action_views(session, at=at, quiet_after=quiet_after, where=condition)


def status_overview(
    session: Session, *, at: datetime, quiet_after: timedelta
) -> list[PriorityStatus]:
    """Per priority: how many actions are in each status, overdue and quiet."""
    counts = status_counts(session, at=at, quiet_after=quiet_after)
    priorities = session.exec(select(Priority).order_by(col(Priority.id))).all()
    return [priority_status(p, counts.get(p.id or 0)) for p in priorities]


@dataclass
class StatusCounts:
    """One priority's actions counted by status and flag, and its latest live update."""

    counts: Counter[Status]
    overdue: int = 0
    # Of the overdue ones, those off track: the summary counts off track or overdue once.
    overdue_off_track: int = 0
    quiet: int = 0
    latest_update_at: datetime | None = None
    # The earliest moment one of its open actions that is not quiet yet becomes quiet.
    next_quiet_at: datetime | None = None


def exception_flags(
    *, at: datetime, quiet_after: timedelta
) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """`overdue` and `quiet` as SQL conditions on Action, meaning what `ActionView` says."""
    unfinished = col(Action.status) != Status.COMPLETE
    overdue = unfinished & (col(Action.due_on) < at.date())
    quiet = unfinished & (last_activity() <= at - quiet_after)
    return overdue, quiet


def last_activity() -> Any:
    """An action's latest live update, or with none the time the plan set its status."""
    return func.coalesce(col(Action.last_update_at), col(Action.status_at))


def status_counts(
    session: Session,
    *,
    at: datetime,
    quiet_after: timedelta,
    where: ColumnElement[bool] | None = None,
) -> dict[int, StatusCounts]:
    """Each priority's counts by priority id, in one GROUP BY over the actions: counting
    needs no action built in Python."""
    overdue, quiet = exception_flags(at=at, quiet_after=quiet_after)
    unfinished_fresh = (col(Action.status) != Status.COMPLETE) & ~quiet
    query = sql_select(
        col(Action.priority_id),
        col(Action.status),
        func.count(),
        func.sum(case((overdue, 1), else_=0)),
        func.sum(case((quiet, 1), else_=0)),
        func.max(col(Action.last_update_at)),
        func.min(case((unfinished_fresh, last_activity()))),
    ).group_by(col(Action.priority_id), col(Action.status))
    if where is not None:
        query = query.where(where)
    counted: dict[int, StatusCounts] = {}
    for priority_id, status, *figures in session.connection().execute(query).all():
        _add(counted.setdefault(priority_id, StatusCounts(Counter())), Status(status), figures)
    for counts in counted.values():
        if counts.next_quiet_at is not None:
            counts.next_quiet_at += quiet_after
    return counted


def _add(counts: StatusCounts, status: Status, figures: list[Any]) -> None:
    number, overdue, quiet, latest, fresh = figures
    counts.counts[status] += number
    counts.overdue += overdue or 0
    if status == Status.RED:
        counts.overdue_off_track += overdue or 0
    counts.quiet += quiet or 0
    counts.latest_update_at = _latest(counts.latest_update_at, as_utc(latest))
    fresh = as_utc(fresh)
    if fresh is not None and (counts.next_quiet_at is None or fresh < counts.next_quiet_at):
        counts.next_quiet_at = fresh


def _latest(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None or second is None:
        return first if second is None else second
    return max(first, second)


def priority_status(priority: Priority, counts: StatusCounts | None) -> PriorityStatus:
    """A priority's line in /status from its counts (None: it has no actions)."""
    counts = counts or StatusCounts(Counter())
    return PriorityStatus(
        code=priority.code,
        title=priority.title,
        counts={status: counts.counts.get(status, 0) for status in STATUS_ORDER},
        overdue=counts.overdue,
        quiet=counts.quiet,
    )


def action_updates(
    session: Session, *, ref: str, limit: int, offset: int = 0
) -> tuple[list[UpdateView], int]:
    """An action's updates, newest first, one page of them, and how many there are in all."""
    action = session.exec(select(Action).where(Action.ref == normalise_ref(ref))).first()
    if action is None:
        raise UnknownAction(normalise_ref(ref), closest_refs(session, ref=normalise_ref(ref)))
    live = (col(ProgressUpdate.action_id) == action.id) & col(ProgressUpdate.withdrawn_at).is_(None)
    total = session.exec(select(func.count()).select_from(ProgressUpdate).where(live)).one()
    rows = session.exec(
        select(ProgressUpdate, Member.name, Member.erased_at, Organisation.name)
        .outerjoin(Member, col(Member.id) == ProgressUpdate.member_id)
        .outerjoin(Organisation, col(Organisation.id) == Member.organisation_id)
        .where(live)
        .order_by(col(ProgressUpdate.created_at).desc(), col(ProgressUpdate.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return [
        _update_view(update, action.ref, _author(name, erased, organisation))
        for update, name, erased, organisation in rows
    ], total


def _author(name: str | None, erased: datetime | None, organisation: str | None) -> str | None:
    """Who wrote an update; an erased member's stay on record as their organisation's."""
    return f"{name}, {organisation}" if erased is not None and organisation else name


def _update_view(update: ProgressUpdate, ref: str, author: str | None) -> UpdateView:
    assert update.id is not None
    return UpdateView(
        id=update.id,
        ref=ref,
        status=update.status,
        note=update.note,
        mitigation=update.mitigation,
        forecast=update.forecast,
        author=author or "plan import",
        created_at=update.created_at,
        direction=direction(update.previous_status, update.status),
    )


# --- the write side --------------------------------------------------------------------


def log_progress(
    session: Session,
    *,
    ref: str,
    member_id: int,
    status: Status,
    note: str,
    at: datetime,
    mitigation: str | None = None,
    forecast: str | None = None,
    telegram_update_id: int | None = None,
    form_key: str | None = None,
    quiet_after: timedelta = timedelta(days=28),
) -> LoggedUpdate:
    """Store a progress update, move the action's status, and write the audit trail.

    The action row is locked first, so two people updating the same action land one after
    the other. The same Telegram update delivered twice returns the first result, and so
    does the same dashboard form (`form_key`) sent twice: looked for once the action is
    locked, so a second copy sent at the same moment waits for the first and finds it.

    Core statements built once, rather than the ORM: this runs for every update a partner
    sends, and the unit of work and statement building cost more than the SQL (four
    statements: the locked action with the replay check and the member, two inserts and an
    update).
    """
    found = _action_to_update(session, ref, member_id, telegram_update_id)
    if isinstance(found, int):
        return _logged_before(session, found, at, quiet_after)
    member, action = found
    if form_key is not None:
        earlier = _update_from_form(session, form_key, at, quiet_after)
        if earlier is not None:
            return earlier
    if not may_update_action(
        session,
        member=member,
        action_id=action["id"],
        lead_organisation_id=action["lead_organisation_id"],
        at=at,
    ):
        raise NotPermitted(refusal(member, _view_after(action, action, at, quiet_after)))
    if status == Status.NOT_STARTED:
        raise DomainError("An update needs a status: on track, at risk, off track or complete.")
    update = _update_values(
        action, member, status, note, mitigation, forecast, at, telegram_update_id
    ) | {"form_key": form_key}
    update["id"] = session.connection().execute(_INSERT_UPDATE, update).scalar_one()
    # "Since" moves only when the status does (an update that keeps it keeps its date).
    changed_at = at if status != action["status"] else _since(action)
    last_at = max(at, action["last_update_at"] or at)
    moved = {
        **action,
        "status": status,
        "status_at": at,
        "status_changed_at": changed_at,
        "last_update_at": last_at,
    }
    session.connection().execute(
        _MOVE_ACTION,
        {
            "action_id": action["id"],
            "new_status": status,
            "at": at,
            "changed_at": changed_at,
            "last_at": last_at,
        },
    )
    note_write(session)
    before, after = (row_snapshot(_action_columns(row)) for row in (action, moved))
    insert_changes(
        session,
        actor=Actor.member(member.id),
        at=at,
        changes=[
            Change("progress_update", update["id"], None, row_snapshot(_in_column_order(update))),
            Change("action", action["id"], before, after),
        ],
    )
    return LoggedUpdate(
        update=_new_update_view(update, action["ref"], member.name),
        action=_view_after(action, moved, at, quiet_after),
        previous_status=action["status"],
        duplicate=False,
    )


_UPDATE_TABLE = ProgressUpdate.__table__  # type: ignore[attr-defined]
_ACTION_TABLE = Action.__table__  # type: ignore[attr-defined]
_INSERT_UPDATE = insert(_UPDATE_TABLE).returning(_UPDATE_TABLE.c.id)
_MOVE_ACTION = (
    update_rows(_ACTION_TABLE)
    .where(_ACTION_TABLE.c.id == bindparam("action_id"))
    .values(
        status=bindparam("new_status"),
        status_at=bindparam("at"),
        status_changed_at=bindparam("changed_at"),
        last_update_at=bindparam("last_at"),
    )
)
_FROM_TELEGRAM = sql_select(_UPDATE_TABLE.c.id).where(
    _UPDATE_TABLE.c.telegram_update_id == bindparam("update_id")
)
_MEMBER_ORGANISATION = aliased(Organisation)
# The member's view, as `MemberView` takes it, under names of its own beside the action's.
_MEMBER_COLUMNS = member_view_columns(_MEMBER_ORGANISATION, prefix="member_")
_MEMBER_ROW = tuple(column.name for column in _MEMBER_COLUMNS)
_ACTION_ROW = (*(column.name for column in _ACTION_TABLE.c), "code", "lead_name")
# The action with what its view shows, the acting member (if active) and the id of an update
# stored already from this Telegram update (if any): three reads in one round trip. On
# PostgreSQL only the action's row is locked (not its priority's or organisation's, which
# every other update of the priority would wait for, nor the member's).
_LOCKED_ACTION = (
    sql_select(
        _ACTION_TABLE,
        col(Priority.code),
        col(Organisation.name).label("lead_name"),
        _FROM_TELEGRAM.scalar_subquery().label("earlier_id"),
        *_MEMBER_COLUMNS,
    )
    .join(Priority, col(Priority.id) == _ACTION_TABLE.c.priority_id)
    .join(Organisation, col(Organisation.id) == _ACTION_TABLE.c.lead_organisation_id)
    .outerjoin(Member, and_(col(Member.id) == bindparam("member_id"), col(Member.active).is_(True)))
    .outerjoin(_MEMBER_ORGANISATION, col(_MEMBER_ORGANISATION.id) == Member.organisation_id)
    .where(_ACTION_TABLE.c.ref == bindparam("ref"))
    .with_for_update(of=_ACTION_TABLE)
)
INACTIVE = "Only active members can log progress."


def _action_to_update(
    session: Session, ref: str, member_id: int, telegram_update_id: int | None
) -> int | tuple[MemberView, dict[str, Any]]:
    """The id of the update stored already from this Telegram update, if there is one;
    otherwise who is updating (refused if not active) and the action, its row locked
    (UnknownAction if there is none). One statement, unless there is no such action."""
    wanted = normalise_ref(ref)
    params = {"ref": wanted, "member_id": member_id, "update_id": telegram_update_id}
    row = session.connection().execute(_LOCKED_ACTION, params).mappings().first()
    if row is None:
        # The rare path: each check in its own statement, in the same order.
        earlier = _id_from_telegram(session, telegram_update_id)
        if earlier is not None:
            return earlier
        _acting_member(session, member_id)
        raise UnknownAction(wanted, closest_refs(session, ref=wanted))
    if row["earlier_id"] is not None:
        return int(row["earlier_id"])
    if row["member_name"] is None:
        raise NotPermitted(INACTIVE)
    member = MemberView(*(row[name] for name in _MEMBER_ROW))
    return member, {name: row[name] for name in _ACTION_ROW}


def _acting_member(session: Session, member_id: int) -> MemberView:
    member = active_member(session, member_id=member_id)
    if member is None:
        raise NotPermitted(INACTIVE)
    return member


def _id_from_telegram(session: Session, telegram_update_id: int | None) -> int | None:
    if telegram_update_id is None:
        return None
    found = session.connection().execute(_FROM_TELEGRAM, {"update_id": telegram_update_id})
    return found.scalar_one_or_none()


def _action_columns(row: dict[str, Any]) -> dict[str, Any]:
    """The action's own columns (what the audit trail keeps), in the table's order."""
    return {column.name: row[column.name] for column in _ACTION_TABLE.c}


def _in_column_order(values: dict[str, Any]) -> dict[str, Any]:
    return {column.name: values.get(column.name) for column in _UPDATE_TABLE.c}


def _update_values(
    action: dict[str, Any],
    member: MemberView,
    status: Status,
    note: str,
    mitigation: str | None,
    forecast: str | None,
    at: datetime,
    telegram_update_id: int | None,
) -> dict[str, Any]:
    """The new progress update's columns (all but its id), checked."""
    return {
        "action_id": action["id"],
        "member_id": member.id,
        "status": status,
        "note": check_note(note),
        "mitigation": check_note(mitigation, what="mitigation") if mitigation else None,
        "forecast": check_note(forecast, what="forecast") if forecast else None,
        "created_at": at,
        "previous_status": action["status"],
        "previous_status_at": action["status_at"],
        "telegram_update_id": telegram_update_id,
        "withdrawn_at": None,
    }


def _new_update_view(update: dict[str, Any], ref: str, author: str) -> UpdateView:
    return UpdateView(
        id=update["id"],
        ref=ref,
        status=update["status"],
        note=update["note"],
        mitigation=update["mitigation"],
        forecast=update["forecast"],
        author=author,
        created_at=update["created_at"],
        direction=direction(update["previous_status"], update["status"]),
    )


def _view_after(
    action: dict[str, Any], moved: dict[str, Any], at: datetime, quiet_after: timedelta
) -> ActionView:
    """The action's view once `moved` is stored, as `query_action_views` would read it.

    After an update, the action's latest live update is the one just stored, at its
    `status_at`; before (a refusal), the view's last update time is not shown, so none
    is read for it.
    """
    last = moved["last_update_at"] if moved is not action else None
    row = (
        *(moved[name] for name in _VIEW_NAMES if name != "status_at"),
        _since(moved),
        action["code"],
        action["lead_name"],
        last,
    )
    return _view(row, at, quiet_after)


def _since(action: dict[str, Any]) -> datetime:
    """`status_since` of an action read as a row: when its status last changed."""
    since: datetime = action["status_changed_at"] or action["status_at"]
    return since


# The names of `_VIEW_COLUMNS`, in their order (the last read as `_since`).
_VIEW_NAMES = (
    "id",
    "ref",
    "title",
    "description",
    "lead_organisation_id",
    "owner",
    "due_on",
    "status",
    "status_at",
)


def _view_of(session: Session, action: Action, at: datetime, quiet_after: timedelta) -> ActionView:
    where = col(Action.id) == action.id
    return query_action_views(session, at=at, quiet_after=quiet_after, where=where)[0]


def _logged_before(
    session: Session, earlier_id: int, at: datetime, quiet_after: timedelta
) -> LoggedUpdate:
    """The update stored already from this Telegram update, as the first handling said."""
    earlier = session.get_one(ProgressUpdate, earlier_id)
    return _logged(session, earlier, at, quiet_after, duplicate=True)


def _update_from_form(
    session: Session, form_key: str, at: datetime, quiet_after: timedelta
) -> LoggedUpdate | None:
    earlier = session.exec(
        select(ProgressUpdate).where(ProgressUpdate.form_key == form_key)
    ).first()
    return None if earlier is None else _logged(session, earlier, at, quiet_after, duplicate=True)


def _logged(
    session: Session,
    update: ProgressUpdate,
    at: datetime,
    quiet_after: timedelta,
    *,
    duplicate: bool,
) -> LoggedUpdate:
    action = session.get_one(Action, update.action_id)
    author = session.get(Member, update.member_id) if update.member_id else None
    return LoggedUpdate(
        update=_update_view(update, action.ref, author.name if author else None),
        action=_view_of(session, action, at, quiet_after),
        previous_status=update.previous_status,
        duplicate=duplicate,
    )


@dataclass(frozen=True)
class Undone:
    """What /undo took back, and the status the action is left with."""

    update: UpdateView
    action_status: Status


def undo_last_update(
    session: Session, *, member_id: int, at: datetime, window: timedelta = UNDO_WINDOW
) -> Undone:
    """Withdraw the member's latest update if it is recent; the audit trail keeps both."""
    update = session.exec(
        select(ProgressUpdate)
        .where(ProgressUpdate.member_id == member_id, col(ProgressUpdate.withdrawn_at).is_(None))
        .order_by(col(ProgressUpdate.created_at).desc(), col(ProgressUpdate.id).desc())
    ).first()
    if update is None or at - update.created_at > window:
        minutes = int(window.total_seconds() // 60)
        raise DomainError(f"You have no update from the last {minutes} minutes to undo.")
    member = session.get_one(Member, member_id)
    actor = Actor.member(member_id)
    action = session.exec(select(Action).where(_is_id(update.action_id)).with_for_update()).one()
    before = snapshot(update)
    update.withdrawn_at = at
    record_change(session, actor=actor, at=at, record=update, before=before)
    before = snapshot(action)
    action.status, action.status_at = _standing_status(session, update.action_id)
    changed = status_changed_at(session, where=_is_id(update.action_id))
    action.status_changed_at = changed.get(update.action_id, action.status_at)
    action.last_update_at = _latest_live_at(session, update.action_id)
    record_change(session, actor=actor, at=at, record=action, before=before)
    return Undone(update=_update_view(update, action.ref, member.name), action_status=action.status)


def _is_id(action_id: int) -> ColumnElement[bool]:
    return col(Action.id) == action_id


def _standing_status(session: Session, action_id: int) -> tuple[Status, datetime]:
    """The status the live updates leave an action with, and since when.

    The latest live update decides; with none left, the status from before the first
    update (the plan's) stands. Recomputed rather than taken from the withdrawn update,
    because an earlier update may have been withdrawn already.
    """
    updates = select(ProgressUpdate).where(ProgressUpdate.action_id == action_id)
    latest = session.exec(
        updates.where(col(ProgressUpdate.withdrawn_at).is_(None)).order_by(
            col(ProgressUpdate.id).desc()
        )
    ).first()
    if latest is not None:
        return latest.status, latest.created_at
    first = session.exec(updates.order_by(col(ProgressUpdate.id))).first()
    assert first is not None, "an update is being withdrawn, so the action has one"
    return first.previous_status, first.previous_status_at


def _latest_live_at(session: Session, action_id: int) -> datetime | None:
    """When the action's latest live update was made (None with none left)."""
    live = (col(ProgressUpdate.action_id) == action_id) & col(ProgressUpdate.withdrawn_at).is_(None)
    return as_utc(session.exec(select(func.max(ProgressUpdate.created_at)).where(live)).one())
