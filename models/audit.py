"""The audit trail: every change, with who made it and the record before and after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, SQLModel

from csp_bot.models.db import note_write
from csp_bot.models.tables import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who made a change: a member, or a named tool such as the command line."""

    label: str
    member_id: int | None = None

    @classmethod
    def member(cls, member_id: int) -> Actor:
        # By id only: the name lives in the member row alone, so erasing it is one change.
        return cls(label=f"member {member_id}", member_id=member_id)


CLI = Actor("command line")
PLAN_IMPORT = Actor("plan import")


# Columns that identify a person: never copied into the audit trail, which refers to the
# member by id, so that erasing a member (models.rights) changes their row and nothing else.
PERSONAL_COLUMNS = {"member": frozenset({"name", "telegram_id"})}


def snapshot(record: SQLModel) -> dict[str, Any]:
    """The record's columns as JSON-ready values, without a person's identifying details."""
    personal = PERSONAL_COLUMNS.get(str(record.__tablename__), frozenset())
    return {
        key: jsonable(value) for key, value in record.model_dump().items() if key not in personal
    }


def jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def row_snapshot(row: Any) -> dict[str, Any]:
    """A row read with Core (its mapping), as `snapshot` gives the same record."""
    return {key: jsonable(value) for key, value in row.items()}


@dataclass(frozen=True)
class Change:
    """One audit entry to write: the record (table and id) before and after."""

    entity: str
    entity_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any]


_AUDIT_INSERT = insert(AuditEntry.__table__)  # type: ignore[attr-defined]


def insert_changes(session: Session, *, actor: Actor, at: datetime, changes: list[Change]) -> None:
    """Write the audit entries of changes made with Core, in one statement.

    The same entries as `record_change` writes for ORM records, without the flushes and
    `model_dump` it needs: on the hot write paths those cost more than the change itself.
    A change that changed nothing gets no entry, as there.
    """
    rows = [
        {
            "at": at,
            "actor": actor.label,
            "member_id": actor.member_id,
            "entity": change.entity,
            "entity_id": change.entity_id,
            "change": "created" if change.before is None else "updated",
            "before": change.before,
            "after": change.after,
        }
        for change in changes
        if change.before != change.after
    ]
    if rows:
        session.connection().execute(_AUDIT_INSERT, rows)
        note_write(session)


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


def record_event(
    session: Session,
    *,
    actor: Actor,
    at: datetime,
    entity: str,
    entity_id: int | None,
    change: str,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write an audit entry for something done that is not a row's new values (a refused
    rejoin, an erasure, a prune), with what is worth keeping about it in `detail`."""
    entry = AuditEntry(
        at=at,
        actor=actor.label,
        member_id=actor.member_id,
        entity=entity,
        entity_id=entity_id,
        change=change,
        before=None,
        after=detail,
    )
    session.add(entry)
    session.flush()
    return entry
