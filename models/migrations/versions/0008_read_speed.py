"""each action's latest update time kept on the action; a count of write transactions

`action.last_update_at` replaces a search of the updates on every read, and is filled
here from the live updates. `data_version` holds one row (made by the first write) that
every write transaction counts up, so a cached answer can tell whether anything has
changed. The indexes serve the summary's exception queries.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from csp_bot.models.types import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = sa.text(
    "UPDATE action SET last_update_at = (SELECT max(u.created_at) FROM progress_update u"
    " WHERE u.action_id = action.id AND u.withdrawn_at IS NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table("action") as batch:
        batch.add_column(sa.Column("last_update_at", UTCDateTime(timezone=True), nullable=True))
    op.execute(BACKFILL)
    op.create_index("ix_action_status", "action", ["status", "priority_id"])
    op.create_index("ix_action_due_on", "action", ["due_on"])
    op.create_index("ix_action_last_update_at", "action", ["last_update_at"])
    op.create_table(
        "data_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("data_version")
    op.drop_index("ix_action_last_update_at", table_name="action")
    op.drop_index("ix_action_due_on", table_name="action")
    op.drop_index("ix_action_status", table_name="action")
    with op.batch_alter_table("action") as batch:
        batch.drop_column("last_update_at")
