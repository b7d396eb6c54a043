"""a dashboard form's key on the update it stored

A form sent twice (the page resent after a lost answer, or a second tab) carries the key it
was rendered with; the second finds the first's update and stores nothing.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 05:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("progress_update") as batch:
        batch.add_column(sa.Column("form_key", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_progress_update_form_key", ["form_key"])


def downgrade() -> None:
    with op.batch_alter_table("progress_update") as batch:
        batch.drop_constraint("uq_progress_update_form_key", type_="unique")
        batch.drop_column("form_key")
