"""since when each action has had its status

`action.status_at` moves with every update, even one that keeps the status; lists and the
board paper say "off track since ..." and need the time the status last changed. Filled in
from the live updates: the last that changed the status, or with none, the status's time
before the first.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 19:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from csp_bot.models.types import UTCDateTime, as_utc

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTION = sa.table("action", sa.column("id"), sa.column("status_changed_at", UTCDateTime()))
UPDATE = sa.table(
    "progress_update",
    sa.column("id"),
    sa.column("action_id"),
    sa.column("status", sa.String()),
    sa.column("previous_status", sa.String()),
    sa.column("previous_status_at", UTCDateTime()),
    sa.column("created_at", UTCDateTime()),
    sa.column("withdrawn_at", UTCDateTime()),
)


def upgrade() -> None:
    with op.batch_alter_table("action") as batch:
        batch.add_column(sa.Column("status_changed_at", UTCDateTime(timezone=True), nullable=True))
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE action SET status_changed_at = status_at"))
    changes = [
        {"action_id": action_id, "since": since} for action_id, since in _changes(bind).items()
    ]
    if changes:
        bind.execute(
            ACTION.update()
            .where(ACTION.c.id == sa.bindparam("action_id"))
            .values(status_changed_at=sa.bindparam("since")),
            changes,
        )


def _changes(bind: sa.Connection) -> dict[int, object]:
    """Per action with live updates: the last change of status, or the status's time before
    the first live update."""
    u = UPDATE.c
    order = (u.created_at, u.id)
    lag = sa.func.lag(u.status).over(partition_by=u.action_id, order_by=order)
    before = sa.func.coalesce(lag, u.previous_status)
    runs = (
        sa.select(
            u.action_id,
            sa.case((u.status != before, u.created_at)).label("changed_at"),
            sa.func.first_value(u.previous_status_at)
            .over(partition_by=u.action_id, order_by=order)
            .label("held"),
        )
        .where(u.withdrawn_at.is_(None))
        .subquery()
    )
    query = sa.select(
        runs.c.action_id, sa.func.max(runs.c.changed_at), sa.func.min(runs.c.held)
    ).group_by(runs.c.action_id)
    return {
        action_id: as_utc(last) or as_utc(held) for action_id, last, held in bind.execute(query)
    }


def downgrade() -> None:
    with op.batch_alter_table("action") as batch:
        batch.drop_column("status_changed_at")
