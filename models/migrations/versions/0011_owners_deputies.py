"""owners and deputies: several members may own an action; a member away names a deputy

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from csp_bot.models.types import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "action_owner",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("action_id", sa.Integer(), sa.ForeignKey("action.id"), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("member.id"), nullable=False),
        sa.Column("added_at", UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("action_id", "member_id"),
    )
    op.create_index("ix_action_owner_action_id", "action_owner", ["action_id"])
    op.create_index("ix_action_owner_member_id", "action_owner", ["member_id"])
    # The one owner an action could have so far becomes its first linked owner.
    op.execute(
        "INSERT INTO action_owner (action_id, member_id, added_at) "
        "SELECT id, owner_member_id, CURRENT_TIMESTAMP FROM action "
        "WHERE owner_member_id IS NOT NULL"
    )
    with op.batch_alter_table("action") as batch_op:
        batch_op.drop_constraint("fk_action_owner_member_id_member", type_="foreignkey")
        batch_op.drop_column("owner_member_id")
    op.create_table(
        "absence",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("member.id"), nullable=False),
        sa.Column("deputy_member_id", sa.Integer(), sa.ForeignKey("member.id"), nullable=False),
        sa.Column("starts_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_absence_member_ends", "absence", ["member_id", "ends_at"])
    op.create_index("ix_absence_deputy_member_id", "absence", ["deputy_member_id"])


def downgrade() -> None:
    op.drop_index("ix_absence_deputy_member_id", table_name="absence")
    op.drop_index("ix_absence_member_ends", table_name="absence")
    op.drop_table("absence")
    with op.batch_alter_table("action") as batch_op:
        batch_op.add_column(sa.Column("owner_member_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_action_owner_member_id_member", "member", ["owner_member_id"], ["id"]
        )
    op.execute(
        "UPDATE action SET owner_member_id = "
        "(SELECT MIN(member_id) FROM action_owner WHERE action_owner.action_id = action.id)"
    )
    op.drop_index("ix_action_owner_member_id", table_name="action_owner")
    op.drop_index("ix_action_owner_action_id", table_name="action_owner")
    op.drop_table("action_owner")
