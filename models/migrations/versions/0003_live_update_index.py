"""an index of each action's live updates by time

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("withdrawn_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_progress_update_action_live",
        "progress_update",
        ["action_id", "created_at"],
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_progress_update_action_live", table_name="progress_update")
