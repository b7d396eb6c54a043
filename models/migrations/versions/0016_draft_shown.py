"""whether a dialogue's screen was shown is a column of its own

After every reply the bot notes that the screen was shown. Kept among the draft's JSON
data, that was a read, a decode, an encode and a write of the whole row; as a column it is
one `UPDATE` (`models.dialogue.mark_shown`), which the inbox runs with the update's mark
done. The flag moves out of the JSON of the rows there are.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 04:00:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DRAFTS = sa.table(
    "dialogue_draft",
    sa.column("user_id", sa.BigInteger()),
    sa.column("data", sa.JSON()),
    sa.column("shown", sa.Boolean()),
)


def upgrade() -> None:
    with op.batch_alter_table("dialogue_draft") as table:
        table.add_column(
            sa.Column("shown", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    bind = op.get_bind()
    for user_id, data, _shown in bind.execute(sa.select(DRAFTS)).all():
        rest = _loaded(data)
        shown = bool(rest.pop("shown", False))
        bind.execute(
            DRAFTS.update().where(DRAFTS.c.user_id == user_id).values(data=rest, shown=shown)
        )


def downgrade() -> None:
    bind = op.get_bind()
    for user_id, data, shown in bind.execute(sa.select(DRAFTS)).all():
        with_flag = {**_loaded(data), "shown": bool(shown)}
        bind.execute(DRAFTS.update().where(DRAFTS.c.user_id == user_id).values(data=with_flag))
    with op.batch_alter_table("dialogue_draft") as table:
        table.drop_column("shown")


def _loaded(data: object) -> dict[str, object]:
    """The JSON column as a dict (a driver may hand back its text)."""
    loaded = json.loads(data) if isinstance(data, str) else data
    return dict(loaded) if isinstance(loaded, dict) else {}
