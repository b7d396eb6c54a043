"""Per-chat locks that all instances on one PostgreSQL database share.

An instance handles a chat's updates only while it holds that chat's lock, so two instances
never handle one chat at the same time, and the chat's updates are taken from the inbox in
order by whichever holds it. The locks are PostgreSQL session advisory locks, held on one
connection kept for them: the server releases them all when that connection ends, so an
instance that dies (even by `kill -9`) leaves no chat locked.

The two-key form `pg_try_advisory_lock(namespace, key)` is used. The namespace is taken
from the database and schema, so bots (or test runs) in other schemas of one database do
not share locks; the key is the chat folded to 32 bits. Two chats whose keys fold alike
only take turns: the inbox sweep picks up whatever such a turn leaves behind.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

_INT4 = 2**32


def fold_to_int4(value: int) -> int:
    """`value` wrapped into PostgreSQL's signed 32-bit integer range."""
    return (value + 2**31) % _INT4 - 2**31


def namespace_of(place: str) -> int:
    """The locks' first key for a database and schema (`place`: "database.schema")."""
    return fold_to_int4(zlib.crc32(f"csp-bot chats {place}".encode()))


class ChatLocks:
    """Try and release per-chat advisory locks on a connection kept for them.

    The connection is used from one thread of its own: a lock call is one short round trip
    and never waits behind users' transactions in the database's worker threads.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chat-locks")
        self._connection: Connection | None = None
        self._namespace: int | None = None

    async def try_lock(self, chat_key: int) -> bool:
        """Take the chat's lock if no instance holds it; False if one does."""
        return await self._run(self._try_lock, chat_key)

    async def unlock(self, chat_key: int) -> None:
        """Release the chat's lock (held by this instance)."""
        await self._run(self._unlock, chat_key)

    async def close(self) -> None:
        """End the connection, which releases whatever lock is still held."""
        await self._run(self._close)
        self._thread.shutdown(wait=True)

    async def _run(self, call: Callable[..., bool], *args: int) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, call, *args)

    def _try_lock(self, chat_key: int) -> bool:
        taken = self._execute("SELECT pg_try_advisory_lock(:space, :key)", chat_key)
        return bool(taken)

    def _unlock(self, chat_key: int) -> bool:
        return bool(self._execute("SELECT pg_advisory_unlock(:space, :key)", chat_key))

    def _execute(self, sql: str, chat_key: int) -> object:
        connection = self._connect()
        try:
            return connection.execute(
                sa.text(sql), {"space": self._namespace, "key": fold_to_int4(chat_key)}
            ).scalar_one()
        except sa.exc.DBAPIError:
            # The connection is gone, and the server released its locks with it: start
            # afresh on the next call, and let this one fail (the sweep tries again).
            self._discard()
            raise

    def _connect(self) -> Connection:
        if self._connection is None:
            # Autocommit: each lock call stands alone, and no transaction stays open.
            self._connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            place = self._connection.execute(
                sa.text("SELECT current_database() || '.' || current_schema()")
            ).scalar_one()
            self._namespace = namespace_of(place)
        return self._connection

    def _discard(self) -> None:
        """Close the connection itself, not back into the pool: a pooled connection would
        keep its session's locks."""
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            except sa.exc.SQLAlchemyError:
                log.debug("the chat locks' connection could not be closed cleanly")
            self._connection = None

    def _close(self) -> bool:
        self._discard()
        return True
