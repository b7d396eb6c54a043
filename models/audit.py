"""The audit trail: every change, with who made it and the record before and after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlmodel import Session, SQLModel

from csp_bot.models.tables import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who made a change: a member, or a named tool such as the command line."""

    label: str
    member_id: int | None = None

    @classmethod
    def member(cls, member_id: int, name: str) -> Actor:
        return cls(label=f"member {member_id} ({name})", member_id=member_id)


CLI = Actor("command line")
PLAN_IMPORT = Actor("plan import")


def snapshot(record: SQLModel) -> dict[str, Any]:
    """The record's columns as JSON-ready values."""
    return {key: _jsonable(value) for key, value in record.model_dump().items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def record_change(
    session: Session,
    *,
    actor: Actor,
    at: datetime,
    record: SQLModel,
    before: dict[str, Any] | None,
) -> AuditEntry | None:
    """Write one audit entry for `record` (flushed, so it has an id); None if nothing changed."""
    session.add(record)
    session.flush()
    after = snapshot(record)
    if before == after:
        return None
    entry = AuditEntry(
        at=at,
        actor=actor.label,
        member_id=actor.member_id,
        entity=str(record.__tablename__),
        entity_id=getattr(record, "id", None),
        change="created" if before is None else "updated",
        before=before,
        after=after,
    )
    session.add(entry)
    return entry


def record_removal(session: Session, *, actor: Actor, at: datetime, record: SQLModel) -> AuditEntry:
    """Delete `record`, writing an audit entry that keeps what it held."""
    entry = AuditEntry(
        at=at,
        actor=actor.label,
        member_id=actor.member_id,
        entity=str(record.__tablename__),
        entity_id=getattr(record, "id", None),
        change="deleted",
        before=snapshot(record),
        after=None,
    )
    session.delete(record)
    session.add(entry)
    session.flush()
    return entry
