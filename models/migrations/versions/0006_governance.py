"""member lifecycle and erasure: when a member was deactivated or erased; the audit trail
refers to members by id only

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01 19:00:00
"""

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from csp_bot.models.types import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Labels were "member 7 (Dan Smith)"; from here on they are "member 7".
NAMED_ACTOR = re.compile(r"^member (\d+) \(.*\)$", re.DOTALL)
PERSONAL = ("name", "telegram_id")


def upgrade() -> None:
    with op.batch_alter_table("member") as batch:
        batch.add_column(sa.Column("deactivated_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("erased_at", UTCDateTime(timezone=True), nullable=True))
    _strip_names_from_audit()


def _strip_names_from_audit() -> None:
    """Names out of actor labels and member snapshots: the member row is their one home."""
    audit = sa.table(
        "audit_entry",
        sa.column("id", sa.Integer),
        sa.column("actor", sa.String),
        sa.column("entity", sa.String),
        sa.column("before", sa.JSON),
        sa.column("after", sa.JSON),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(audit.c.id, audit.c.actor, audit.c.entity, audit.c.before, audit.c.after).where(
            sa.or_(audit.c.actor.like("member %"), audit.c.entity == "member")
        )
    ).all()
    for entry_id, actor, entity, before, after in rows:
        named = NAMED_ACTOR.match(actor)
        values: dict[str, Any] = {"actor": f"member {named.group(1)}" if named else actor}
        if entity == "member":
            values["before"], values["after"] = _without_personal(before), _without_personal(after)
        connection.execute(sa.update(audit).where(audit.c.id == entry_id).values(**values))


def _without_personal(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {key: value for key, value in record.items() if key not in PERSONAL}


def downgrade() -> None:
    # The names taken out of the audit trail are not put back: they are in the member rows.
    with op.batch_alter_table("member") as batch:
        batch.drop_column("erased_at")
        batch.drop_column("deactivated_at")
