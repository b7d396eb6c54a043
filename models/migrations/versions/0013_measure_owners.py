"""a measure's owners: members linked to it, who get its figure reminders and may send it

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from csp_bot.models.types import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "measure_owner",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("measure_id", sa.Integer(), sa.ForeignKey("measure.id"), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("member.id"), nullable=False),
        sa.Column("added_at", UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("measure_id", "member_id"),
    )
    op.create_index("ix_measure_owner_measure_id", "measure_owner", ["measure_id"])
    op.create_index("ix_measure_owner_member_id", "measure_owner", ["member_id"])


def downgrade() -> None:
    op.drop_index("ix_measure_owner_member_id", table_name="measure_owner")
    op.drop_index("ix_measure_owner_measure_id", table_name="measure_owner")
    op.drop_table("measure_owner")
