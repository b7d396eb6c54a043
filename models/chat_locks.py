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

import zlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from csp_bot.models.own_connection import OwnConnection

_INT4 = 2**32
# pg_locks shows the two keys of a lock as unsigned (oid) and marks the two-key form 2.
_HOLDS = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND objsubid = 2 AND pid = pg_backend_pid()"
    " AND classid = CAST(CAST(:space AS bigint) & 4294967295 AS oid)"
    " AND objid = CAST(CAST(:key AS bigint) & 4294967295 AS oid))"
)


def fold_to_int4(value: int) -> int:
    """`value` wrapped into PostgreSQL's signed 32-bit integer range."""
    return (value + 2**31) % _INT4 - 2**31


def namespace_of(place: str) -> int:
    """The locks' first key for a database and schema (`place`: "database.schema")."""
    return fold_to_int4(zlib.crc32(f"csp-bot chats {place}".encode()))


class ChatLocks:
    """Try and release per-chat advisory locks on a connection kept for them.

    A lock call is one short round trip. When the connection is lost, the server released
    its locks with it: the call fails (the sweep tries again) and the next starts afresh.
    """

    def __init__(self, engine: Engine) -> None:
        self._own = OwnConnection(engine, "chat-locks")
        self._namespace: int | None = None

    async def try_lock(self, chat_key: int) -> bool:
        """Take the chat's lock if no instance holds it; False if one does."""
        return await self._own.run(
            self._execute, "SELECT pg_try_advisory_lock(:space, :key)", chat_key
        )

    async def unlock(self, chat_key: int) -> None:
        """Release the chat's lock (held by this instance)."""
        await self._own.run(self._execute, "SELECT pg_advisory_unlock(:space, :key)", chat_key)

    async def holds(self, chat_key: int) -> bool:
        """Whether this instance still holds the chat's lock. Asked of the server: a lost
        connection took its locks with it, and a call since may have made a new one."""
        try:
            return await self._own.run(self._execute, _HOLDS, chat_key)
        except sa.exc.DBAPIError:
            return False  # the connection is gone, and its locks with it

    async def close(self) -> None:
        """End the connection, which releases whatever lock is still held."""
        await self._own.close()

    def _execute(self, connection: Connection, sql: str, chat_key: int) -> bool:
        if self._namespace is None:
            place = connection.execute(
                sa.text("SELECT current_database() || '.' || current_schema()")
            ).scalar_one()
            self._namespace = namespace_of(place)
        taken = connection.execute(
            sa.text(sql), {"space": self._namespace, "key": fold_to_int4(chat_key)}
        ).scalar_one()
        return bool(taken)
