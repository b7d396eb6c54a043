"""measures: a priority's performance measures, their targets and the figures sent

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from csp_bot.models.types import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "measure",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", TEXT(), nullable=False),
        sa.Column("priority_id", sa.Integer(), sa.ForeignKey("priority.id"), nullable=False),
        sa.Column("title", TEXT(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("unit", TEXT(), nullable=False),
        sa.Column("frequency", TEXT(), nullable=False),
        sa.Column(
            "supplier_organisation_id",
            sa.Integer(),
            sa.ForeignKey("organisation.id"),
            nullable=False,
        ),
        sa.Column("contact", TEXT(), nullable=True),
        sa.Column("lower_is_better", sa.Boolean(), nullable=False),
        sa.Column("baseline_value", sa.Float(), nullable=True),
        sa.Column("baseline_period", TEXT(), nullable=True),
        sa.Column("tolerance", sa.Float(), nullable=False),
    )
    op.create_index("ix_measure_code", "measure", ["code"], unique=True)
    op.create_index("ix_measure_priority_id", "measure", ["priority_id"])
    op.create_index("ix_measure_supplier_organisation_id", "measure", ["supplier_organisation_id"])
    op.create_table(
        "measure_target",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("measure_id", sa.Integer(), sa.ForeignKey("measure.id"), nullable=False),
        sa.Column("period", TEXT(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.UniqueConstraint("measure_id", "period"),
    )
    op.create_index("ix_measure_target_measure_id", "measure_target", ["measure_id"])
    op.create_table(
        "measure_figure",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("measure_id", sa.Integer(), sa.ForeignKey("measure.id"), nullable=False),
        sa.Column("period", TEXT(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("member.id"), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("replaces_id", sa.Integer(), sa.ForeignKey("measure_figure.id"), nullable=True),
        sa.Column("superseded_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("telegram_update_id", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("telegram_update_id"),
    )
    op.create_index("ix_measure_figure_measure_period", "measure_figure", ["measure_id", "period"])
    op.create_index("ix_measure_figure_created_at", "measure_figure", ["created_at"])


def downgrade() -> None:
    op.drop_table("measure_figure")
    op.drop_table("measure_target")
    op.drop_table("measure")
