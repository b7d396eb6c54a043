"""Since when each action has had its current status: the time it last changed.

An action's `status_at` moves with every update, even one that keeps the status, so it
says when the action was last reported on, not since when it has been off track. The
lists and the paper say "off track since …": `Action.status_changed_at`, kept by each
update and recomputed here from the live updates when one is withdrawn.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, String, case, func, type_coerce
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from csp_bot.models.tables import Action, ProgressUpdate
from csp_bot.models.types import as_utc


def status_changed_at(
    session: Session, *, where: ColumnElement[bool] | None = None
) -> dict[int, datetime]:
    """Since when each action with live updates (of those matching `where`) has had its
    status, by action id; an action missing has had no live update, so its `status_at`
    (the plan's) stands."""
    order = (col(ProgressUpdate.created_at), col(ProgressUpdate.id))
    per_action = col(ProgressUpdate.action_id)
    status = type_coerce(ProgressUpdate.status, String)
    # What each live update moved from: the live update before it, or for the first one the
    # status it recorded as previous (withdrawn updates are skipped over either way).
    before = func.coalesce(
        func.lag(status).over(partition_by=per_action, order_by=order),
        type_coerce(ProgressUpdate.previous_status, String),
    )
    ranked = sql_select(
        col(ProgressUpdate.action_id).label("action_id"),
        case((status != before, col(ProgressUpdate.created_at))).label("changed_at"),
        func.first_value(col(ProgressUpdate.previous_status_at))
        .over(partition_by=per_action, order_by=order)
        .label("held"),
    ).where(col(ProgressUpdate.withdrawn_at).is_(None))
    if where is not None:
        ranked = ranked.where(col(ProgressUpdate.action_id).in_(select(Action.id).where(where)))
    runs = ranked.subquery()
    query = sql_select(
        runs.c.action_id, func.max(runs.c.changed_at), func.min(runs.c.held)
    ).group_by(runs.c.action_id)
    rows = session.connection().execute(query).all()
    # With no change among the live updates, the status is the one held before the first.
    since = {action_id: as_utc(last) or as_utc(held) for action_id, last, held in rows}
    return {action_id: at for action_id, at in since.items() if at is not None}


def status_since(action: Action) -> datetime:
    """Since when `action` has had its status."""
    return action.status_changed_at or action.status_at
