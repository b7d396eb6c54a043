"""Counts of committed write transactions, so that a cached answer knows it is current.

Every transaction that writes to a table the answers read counts `data_version` up, in the
same transaction, at its commit: a reader that sees the count unchanged sees the same data.
It is watched at the engine, below the ORM, so writes through Core or plain SQL count too.
Writes that no answer reads (the inbox, the reminder outbox, dialogue drafts, the audit
trail, ...) do not count: otherwise every incoming message would empty the caches.

A second count, `planning_version`, does the same for what reminder planning reads (which
includes members' reminder settings and snoozes): a planning round that finds it unchanged
need not read the facts again.

A third, `history_version`, counts the transactions that changed or deleted progress
updates already stored (a withdrawal, an erasure, retention), rather than adding new ones:
while it stands, what was derived from the updates' history still holds for every update
it saw, and only the updates added since need reading (`models.summary.BaselineStatuses`).

A fourth, `measures_version`, counts the writes to what the measures' views read (the
measures, their targets and figures, and the names shown beside them), so that they are
kept while partners' updates come and go (`models.measures.MeasureCache`).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

# Set on a connection (by `models.migrate`) while migrations run: the table may not exist.
MIGRATING = "csp_bot_migrating"
_CHANGED = "csp_bot_data_changed"
_PLANNING_CHANGED = "csp_bot_planning_data_changed"
_HISTORY_CHANGED = "csp_bot_history_changed"
_MEASURES_CHANGED = "csp_bot_measures_changed"
# Row 1 counts writes the cached answers read; row 2 writes reminder planning reads; row 3
# the progress updates rewritten or deleted; row 4 writes the measures' views read.
ANSWERS_ROW, PLANNING_ROW, HISTORY_ROW, MEASURES_ROW = 1, 2, 3, 4
_FLAGS = (
    (ANSWERS_ROW, _CHANGED),
    (PLANNING_ROW, _PLANNING_CHANGED),
    (HISTORY_ROW, _HISTORY_CHANGED),
    (MEASURES_ROW, _MEASURES_CHANGED),
)
HISTORY_TABLE = "progress_update"
READ_BY_MEASURES = frozenset(
    {"measure", "measure_target", "measure_figure", "priority", "organisation", "member"}
)
# Each row is made by the first write (a database nobody has written to holds none).
_BUMP = (
    "INSERT INTO data_version (id, version) VALUES {rows}"
    " ON CONFLICT (id) DO UPDATE SET version = data_version.version + 1"
)
_READ = "SELECT version FROM data_version WHERE id = {row}"
_WRITE = re.compile(
    r'\s*(INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.IGNORECASE
)
# Tables no cached answer reads: writing them leaves every answer as it was.
UNREAD = frozenset(
    {
        "data_version",
        "alembic_version",
        "inbox_update",
        "reminder_outbox",
        "dialogue_draft",
        "reminder_preference",
        "action_snooze",
        "meeting_reply",
        "invite",
        "audit_entry",
        "send_pace",
    }
)
# Tables reminder planning never reads. The outbox is among them: planning reads the keys
# it needs afresh each round, and counting deliveries would make every round read the facts.
PLANNING_UNREAD = frozenset(
    {
        "data_version",
        "alembic_version",
        "inbox_update",
        "reminder_outbox",
        "dialogue_draft",
        "meeting_reply",
        "invite",
        "audit_entry",
        "group_link",
        "send_pace",
    }
)


def watch_writes(engine: Engine) -> None:
    """Count up `data_version` at the commit of every transaction that wrote data."""
    if not event.contains(engine, "commit", _count_up):
        event.listen(engine, "before_cursor_execute", _note_write)
        event.listen(engine, "commit", _count_up)
        event.listen(engine, "rollback", _forget)


def data_version(session: Session) -> int:
    """The count as this transaction sees it."""
    return _read(session, ANSWERS_ROW)


def planning_version(session: Session) -> int:
    """The count of writes to what reminder planning reads, as this transaction sees it."""
    return _read(session, PLANNING_ROW)


def history_version(session: Session) -> int:
    """The count of transactions that rewrote or deleted stored progress updates."""
    return _read(session, HISTORY_ROW)


def measures_version(session: Session) -> int:
    """The count of writes to what the measures' views read."""
    return _read(session, MEASURES_ROW)


def _read(session: Session, row: int) -> int:
    statement = _READ.format(row=row)
    return int(session.connection().exec_driver_sql(statement).scalar_one_or_none() or 0)


def _note_write(
    connection: Connection, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any
) -> None:
    # `info` belongs to the pooled connection and outlives this transaction: the flag is
    # cleared at its commit or rollback.
    if connection.info.get(MIGRATING):
        return
    written = _WRITE.match(statement)
    if written is None:
        return
    verb, table = written.group(1).upper(), written.group(2).lower()
    if table not in UNREAD:
        connection.info[_CHANGED] = True
    if table not in PLANNING_UNREAD:
        connection.info[_PLANNING_CHANGED] = True
    if table == HISTORY_TABLE and not verb.startswith("INSERT"):
        connection.info[_HISTORY_CHANGED] = True
    if table in READ_BY_MEASURES:
        connection.info[_MEASURES_CHANGED] = True


def _count_up(connection: Connection) -> None:
    # Still inside the transaction (the event comes before the database's COMMIT). Every
    # count that moves in one statement: a round trip fewer per write on PostgreSQL.
    rows = [row for row, flag in _FLAGS if connection.info.pop(flag, False)]
    if rows:
        connection.exec_driver_sql(_BUMP.format(rows=", ".join(f"({row}, 1)" for row in rows)))


def _forget(connection: Connection) -> None:
    # A connection the server dropped has nothing to forget, and reading its `info` would
    # try to reconnect in the middle of the rollback.
    if not connection.invalidated:
        for _row, flag in _FLAGS:
            connection.info.pop(flag, None)
