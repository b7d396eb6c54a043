"""The inbox: every update Telegram delivers, stored before Telegram is told it arrived.

Polling and the webhook both write here and nowhere else, so one rule holds for both: an
update is committed first, then confirmed to Telegram (the next `getUpdates` offset, or the
webhook's 200), then processed; `done_at` records that it was handled. A bot that stops
in between finds its unfinished updates here on the next start, in the order they came.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import Executable
from sqlmodel import Session, col, select

from csp_bot.models.db import insert_new, note_write
from csp_bot.models.tables import InboxUpdate


@dataclass(frozen=True)
class Received:
    """One update as it arrived: its id, the chat it belongs to, and its JSON."""

    update_id: int
    chat_key: int
    payload: dict[str, Any]


def store_received(
    session: Session, *, updates: Sequence[Received], at: datetime, unreadable: Sequence[int] = ()
) -> list[int]:
    """Store a batch of updates; one already stored is left as it is.

    Those in `unreadable` are stored as done: nothing will handle them. Returns the ids
    stored now, in the order given: only these are new to this bot.
    """
    if not updates:
        return []
    rows = [
        {
            "update_id": update.update_id,
            "chat_key": update.chat_key,
            "payload": update.payload,
            "received_at": at,
            "done_at": at if update.update_id in unreadable else None,
        }
        for update in updates
    ]
    # One statement, no read first: this runs before every reply, so it is kept lean. A
    # redelivered update, or one another instance stores at the same moment, is skipped
    # by the conflict clause, and RETURNING names only the rows this statement inserted.
    stored = set(
        session.connection()
        .execute(insert_new(session, _INBOX).returning(_INBOX.c.update_id), rows)
        .scalars()
    )
    return [update.update_id for update in updates if update.update_id in stored]


_INBOX: sa.Table = InboxUpdate.__table__  # type: ignore[attr-defined]


def unfinished_updates(session: Session) -> list[Received]:
    """Updates stored but not yet handled, oldest first."""
    return _received(session, _UNFINISHED)


def unfinished_in_chat(session: Session, *, chat_key: int) -> list[Received]:
    """One chat's updates stored but not yet handled, oldest first."""
    return _received(session, _UNFINISHED_IN_CHAT, chat_key=chat_key)


# Read with Core, three columns, no ORM objects: a chat's turn reads this before its first
# update and after its last, on every message.
_UNFINISHED = (
    sa.select(_INBOX.c.update_id, _INBOX.c.chat_key, _INBOX.c.payload)
    .where(_INBOX.c.done_at.is_(None))
    .order_by(_INBOX.c.update_id)
)
_UNFINISHED_IN_CHAT = _UNFINISHED.where(_INBOX.c.chat_key == sa.bindparam("chat_key"))


def _received(session: Session, query: sa.Select[Any], **parameters: int) -> list[Received]:
    rows = session.connection().execute(query, parameters)
    return [Received(int(row.update_id), int(row.chat_key), dict(row.payload)) for row in rows]


def chats_with_unfinished(session: Session) -> list[int]:
    """The chats that have updates stored and not yet handled, the longest waiting first."""
    oldest = sa.func.min(col(InboxUpdate.update_id))
    rows = session.exec(
        select(col(InboxUpdate.chat_key))
        .where(col(InboxUpdate.done_at).is_(None))
        .group_by(col(InboxUpdate.chat_key))
        .order_by(oldest)
    ).all()
    return [int(key) for key in rows]


def mark_done(session: Session, *, update_ids: Sequence[int], at: datetime) -> None:
    """Record that these updates have been handled."""
    session.connection().execute(_MARK_DONE, {"update_ids": list(update_ids), "at": at})
    note_write(session)


# Built once, run with Core: every handled update is marked, a batch at a time.
_MARK_DONE = (
    sa.update(_INBOX)
    .where(_INBOX.c.update_id.in_(sa.bindparam("update_ids", expanding=True)))
    .where(_INBOX.c.done_at.is_(None))
    .values(done_at=sa.bindparam("at"))
)


@dataclass(frozen=True)
class AfterHandled:
    """A write that may wait until its update is marked done, and be committed with that:
    a statement built once and its parameters, so that the writes of a batch of updates
    that share a statement go as one (an executemany: one round trip on PostgreSQL)."""

    statement: Executable
    params: dict[str, Any]


_after_handled: ContextVar[list[AfterHandled] | None] = ContextVar(
    "csp_bot_after_handled", default=None
)


def collect_after_handled() -> list[AfterHandled]:
    """From here on (in this task), `write_after_handled` keeps its writes in the list
    returned, for `finish_handled` to commit with the update's mark done."""
    kept: list[AfterHandled] = []
    _after_handled.set(kept)
    return kept


def write_after_handled(write: AfterHandled) -> bool:
    """Keep `write` for the update's mark done; False (nothing kept) when this update did
    not come through the inbox, and the caller is to write it now."""
    kept = _after_handled.get()
    if kept is None:
        return False
    kept.append(write)
    return True


def finish_handled(
    session: Session, *, writes: Sequence[AfterHandled], update_ids: Sequence[int], at: datetime
) -> None:
    """The writes kept for handled updates, and their mark done, in one transaction."""
    by_statement: dict[Executable, list[dict[str, Any]]] = {}
    for write in writes:  # in the order kept, within each statement's
        by_statement.setdefault(write.statement, []).append(write.params)
    for statement, params in by_statement.items():
        session.connection().execute(statement, params)
        note_write(session)
    mark_done(session, update_ids=update_ids, at=at)


def prune_inbox(session: Session, *, now: datetime, keep: timedelta) -> int:
    """Delete handled updates older than `keep`; returns how many went."""
    result = session.execute(
        sa.delete(InboxUpdate)
        .where(col(InboxUpdate.done_at).is_not(None))
        .where(col(InboxUpdate.received_at) < now - keep)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def inbox_backlog(session: Session, *, now: datetime, older_than: timedelta) -> int:
    """How many updates have waited longer than `older_than` without being handled."""
    count = session.exec(
        select(sa.func.count())
        .select_from(InboxUpdate)
        .where(col(InboxUpdate.done_at).is_(None))
        .where(col(InboxUpdate.received_at) < now - older_than)
    ).one()
    return int(count)
