"""group links: the group chats the coordinator has linked, each with its audience

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from csp_bot.models.types import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "group_link",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("audience", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("linked_at", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_group_link_chat_id", "group_link", ["chat_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_group_link_chat_id", table_name="group_link")
    op.drop_table("group_link")
