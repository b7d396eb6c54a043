"""Leases: which instance may do what only one instance at a time may do.

Two kinds, both held by a process for as long as it keeps them and freed by its death:

- On PostgreSQL, a session-level advisory lock (`pg_try_advisory_lock`) taken on a
  connection of its own and kept open by the holder. When the holder dies its connection
  closes and PostgreSQL frees the lock; no row, no expiry, no clock to trust. Keepalives
  on both ends bound how long a vanished machine (no FIN ever sent) can look alive.
- On SQLite, an exclusive `fcntl.flock` on a file beside the database, which the kernel
  frees when the process ends, however it ends.

Locks are per database, and the bot may share a database with other partnerships' bots in
schemas of their own, so the advisory lock's key names the schema as well as the purpose.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from enum import IntEnum
from pathlib import Path
from typing import IO, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

# The holder's connection: the server drops it after about 10 + 3 x 5 = 25 s without an
# answer from a machine that vanished, and the holder's own checks fail after 10 s unacked.
KEEPALIVE_OPTIONS = (
    "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
)
CLIENT_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
    "connect_timeout": 10,
}


class Purpose(IntEnum):
    """The first half of an advisory lock's key: what the lock is for."""

    LEADER = 0x43535001  # plans reminders, sends them, sends the digest, prunes
    POLLING = 0x43535002  # takes updates from Telegram by long polling


class Lease(Protocol):
    def held(self) -> bool:
        """Whether this process holds the lease now: taken if free, checked if held."""
        ...

    def release(self) -> None:
        """Give the lease up (for another instance to take), if held."""
        ...


class AlwaysHeld:
    """The lease where only one instance can run at all (SQLite)."""

    def held(self) -> bool:
        return True

    def release(self) -> None:
        pass


class AdvisoryLease:
    """A PostgreSQL session-level advisory lock kept on a connection of its own.

    The jobs ask from worker threads, one at a time (a lock), over the one connection.
    """

    _TAKE = sa.text("SELECT pg_try_advisory_lock(:purpose, hashtext(current_schema()))")
    _GIVE = sa.text("SELECT pg_advisory_unlock(:purpose, hashtext(current_schema()))")

    def __init__(self, engine: Engine, purpose: Purpose) -> None:
        self.purpose = purpose
        self._engine = _dedicated_engine(engine)
        self._connection: Connection | None = None
        self._asking = threading.Lock()

    def held(self) -> bool:
        with self._asking:
            if self._connection is not None and self._still_alive(self._connection):
                return True
            self._connection = self._take()
            return self._connection is not None

    def _still_alive(self, connection: Connection) -> bool:
        """A held lease is trusted only while its connection answers: a connection the
        server dropped (a restart, a network cut) means the lock is free, or another's."""
        try:
            connection.execute(sa.text("SELECT 1"))
        except DBAPIError:
            log.warning("the connection holding the %s lease was lost", self.purpose.name)
            self._forget(connection)
            return False
        return True

    def _take(self) -> Connection | None:
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = connection.execute(self._TAKE, {"purpose": int(self.purpose)}).scalar()
        except BaseException:
            self._forget(connection)
            raise
        if not taken:
            connection.close()
            return None
        log.info("this instance now holds the %s lease", self.purpose.name)
        return connection

    def release(self) -> None:
        with self._asking:
            connection, self._connection = self._connection, None
            if connection is None:
                return
            try:
                connection.execute(self._GIVE, {"purpose": int(self.purpose)})
            except DBAPIError:
                pass  # the connection is gone, and the lock with it
            finally:
                self._forget(connection)

    @staticmethod
    def _forget(connection: Connection) -> None:
        try:
            connection.invalidate()
        finally:
            connection.close()


class FileLease:
    """An exclusive `flock` on a file (kept open while held); the kernel frees it on exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def held(self) -> bool:
        if self._file is not None:
            return True
        file = open(self.path, "ab")  # noqa: SIM115 (kept open while held)
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return False
        self._file = file
        return True

    def release(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()  # closing the file drops the lock


def _dedicated_engine(engine: Engine) -> Engine:
    """An engine without a pool for the lease's connection: it is held, not shared, and
    the pool's recycling of old connections must never close it."""
    given = engine.url.query.get("options", "")
    own = given if isinstance(given, str) else " ".join(given)
    return sa.create_engine(
        engine.url.difference_update_query(["options"]),
        poolclass=NullPool,
        connect_args={"options": f"{own} {KEEPALIVE_OPTIONS}".strip(), **CLIENT_KEEPALIVES},
    )


def leader_lease(engine: Engine) -> Lease:
    """The lease on the jobs only one instance may run: reminders, the digest, pruning."""
    if engine.dialect.name == "sqlite":
        return AlwaysHeld()  # SQLite runs one instance only (`sole_instance_lease`)
    return AdvisoryLease(engine, Purpose.LEADER)


def sole_instance_lease(engine: Engine, *, polling: bool) -> Lease | None:
    """The lease a process must hold for its whole life to run at all, or None when any
    number may run (webhook mode on PostgreSQL).

    Telegram answers long polling for one process only, and SQLite takes one writer: so a
    polling instance on PostgreSQL holds an advisory lock, and any instance on SQLite holds
    a lock file beside the database (`csp-bot.db.lock`).
    """
    if engine.dialect.name != "sqlite":
        return AdvisoryLease(engine, Purpose.POLLING) if polling else None
    database = engine.url.database
    if not database or database == ":memory:":
        return AlwaysHeld()  # a database of this process alone
    return FileLease(Path(os.path.abspath(database) + ".lock"))
