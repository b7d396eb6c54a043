"""The database engine, sessions, and running domain operations off the event loop."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlmodel import Session, create_engine

from csp_bot.models.data_version import watch_writes

P = ParamSpec("P")
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 5000
WROTE = "csp_bot_wrote"
SQLITE_CACHE_KIB = 8 * 1024
POSTGRES_WORKERS = 4
# PostgreSQL connections are replaced after half an hour, before servers, proxies or
# firewalls that drop idle connections (commonly after an hour or more) would.
POSTGRES_RECYCLE_SECONDS = 1800

# The database itself failed (not one row's data): a caller lets it through, to try again later.
DatabaseFailure = SQLAlchemyError


def make_engine(url: str) -> Engine:
    """An engine for SQLite (WAL, busy timeout, usable from worker threads) or PostgreSQL."""
    if make_url(url).get_backend_name() != "sqlite":
        # No ping at every checkout: it is one more round trip per transaction, a third of
        # an update's. A connection dropped anyway (the server restarted) fails its
        # transaction, which rolls back whole; SQLAlchemy then discards the pool, and
        # `Database` runs the operation again on a new connection.
        engine = create_engine(
            url,
            pool_pre_ping=False,
            pool_recycle=POSTGRES_RECYCLE_SECONDS,
            connect_args=_postgres_options(url),
        )
    else:
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _tune_sqlite)
    watch_writes(engine)
    return engine


def _postgres_options(url: str) -> dict[str, str]:
    """Connection options: the URL's own, plus two for speed.

    The bot's queries are short, and PostgreSQL's JIT compiling costs more than they do.
    With the session in UTC, psycopg hands back times already in `datetime.UTC`, which
    `UTCDateTime` then passes through untouched (times are stored UTC either way).
    """
    given = make_url(url).query.get("options", "")
    own = given if isinstance(given, str) else " ".join(given)
    return {"options": f"{own} -c jit=off -c timezone=UTC".strip()}


def _tune_sqlite(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # In WAL mode, NORMAL syncs the log at checkpoints rather than at every commit: a
    # commit then survives the bot's process crashing or being killed (what the inbox is
    # for), and only a power cut or an operating-system crash can take back the last
    # commits before it. FULL costs an fsync per commit (about 3 ms here, and two or three
    # commits per update), which caps a partnership's bot well below Telegram's own pace.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # 8 MB of page cache instead of 2 MB: a summary reads every action of the plan. More
    # made no read faster (16 MB and 4 MB gave the same times on 10,000 actions, 64 MB was
    # tried before), and the board paper, which reads every update, fills whatever is
    # given: resident memory the bot then keeps (16 MB took 8 MB more at its peak).
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@dataclass
class WriteRecord:
    """Whether anything was committed while one update was handled."""

    wrote: bool = False


_writes: ContextVar[WriteRecord | None] = ContextVar("csp_bot_writes", default=None)


def track_writes() -> WriteRecord:
    """From here on (in this task), note every transaction that commits a change."""
    record = WriteRecord()
    _writes.set(record)
    return record


def committed_writes() -> bool:
    """Whether a change was committed since `track_writes()` (False if not tracking)."""
    record = _writes.get()
    return record is not None and record.wrote


def note_write(session: Session) -> None:
    """Note a change made with Core (`session.connection().execute`), which the ORM's
    events below do not see."""
    session.info[WROTE] = True


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, _context: Any) -> None:
    session.info[WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _note_statement(state: Any) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[WROTE] = True


class Database:
    """Runs each domain operation whole, in one transaction, in a worker thread.

    SQLite allows one writer at a time, so it gets a single worker: transactions queue
    in the bot instead of fighting over the file lock.

    Each of its own threads keeps one connection open for all the transactions it runs
    (`_Held`): taking a connection from the pool and handing it back was a third of the
    cost of a transaction that reads one row (96 against 69 µs here, on SQLite), and a
    one-line update is three transactions.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        watch_writes(engine)
        self._held = _Held(engine)
        workers = 1 if is_sqlite(engine) else POSTGRES_WORKERS
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="db", initializer=self._held.keep
        )
        # Long background work (a reminder planning round) runs on a thread and connection
        # of its own, so it never queues in front of users' commands on SQLite's single
        # worker. Its reads run beside the worker's (WAL); only its short final write
        # waits for the file lock, as any second writer would (the busy timeout).
        self._background = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="db-bg", initializer=self._held.keep
        )

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(make_engine(url))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends cleanly and rolls back otherwise."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def call(
        self, op: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `op(session, ...)` in its own transaction, in this thread."""
        result, _ = self._call_noting_writes(op, *args, **kwargs)
        return result

    async def run(
        self, op: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `op(session, ...)` in its own transaction in the worker thread."""
        loop = asyncio.get_running_loop()
        job = functools.partial(self._call_noting_writes, op, *args, **kwargs)
        result, wrote = await loop.run_in_executor(self._executor, job)
        record = _writes.get()
        if wrote and record is not None:
            record.wrote = True
        return result

    async def run_apart(
        self, op: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `op(session, ...)` in its own transaction on the background thread."""
        loop = asyncio.get_running_loop()
        job = functools.partial(self._call_noting_writes, op, *args, **kwargs)
        result, _ = await loop.run_in_executor(self._background, job)
        return result

    def _call_noting_writes(
        self, op: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> tuple[T, bool]:
        try:
            return self._transaction(op, *args, **kwargs)
        except DBAPIError as failed:
            if not failed.connection_invalidated:
                raise
            # The connection was gone (there is no ping before use). The transaction rolled
            # back, or, lost during its commit, stored effects keyed on the update that a
            # replay does not store twice; the pool now holds only new connections, so the
            # whole operation runs once more. A second failure is an outage, and is raised.
            return self._transaction(op, *args, **kwargs)

    def _transaction(
        self, op: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> tuple[T, bool]:
        connection = self._held.connection()
        if connection is None:  # a thread of the caller's (`call`): a pooled connection
            with self.session() as session:
                return op(session, *args, **kwargs), _wrote(session)
        try:
            # The session joins the connection's transaction, which commits when the block
            # ends cleanly and rolls back otherwise.
            with connection.begin(), Session(bind=connection, expire_on_commit=False) as session:
                result = op(session, *args, **kwargs)
                session.flush()
                return result, _wrote(session)
        except DatabaseFailure:
            self._held.drop()  # the next transaction takes a new one from the pool
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._background.shutdown(wait=True)
        self._held.close_all()
        self.engine.dispose()


def _wrote(session: Session) -> bool:
    return bool(session.info.get(WROTE)) or bool(session.new or session.dirty or session.deleted)


class _Held:
    """The connection each of `Database`'s own threads keeps open between transactions.

    A thread holds one only once `keep` has run in it (the executors' initializer), so
    `Database.call` from any other thread takes a pooled connection as before. One that
    failed is dropped; on PostgreSQL one is also replaced after `POSTGRES_RECYCLE_SECONDS`,
    as the pool replaces its own.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[Connection] = set()
        self._recycle = None if is_sqlite(engine) else POSTGRES_RECYCLE_SECONDS

    def keep(self) -> None:
        self._local.keeps = True

    def connection(self) -> Connection | None:
        if not getattr(self._local, "keeps", False):
            return None
        held: Connection | None = getattr(self._local, "connection", None)
        if held is not None and self._too_old():
            self.drop()
            held = None
        if held is None:
            held = self.engine.connect()
            self._local.connection, self._local.opened_at = held, time.monotonic()
            with self._lock:
                self._open.add(held)
        return held

    def _too_old(self) -> bool:
        age = time.monotonic() - self._local.opened_at
        return self._recycle is not None and age > self._recycle

    def drop(self) -> None:
        held: Connection | None = getattr(self._local, "connection", None)
        self._local.connection = None
        if held is not None:
            with self._lock:
                self._open.discard(held)
            held.close()

    def close_all(self) -> None:
        """Close every thread's connection (their threads have ended)."""
        with self._lock:
            open_, self._open = self._open, set()
        for held in open_:
            held.close()


def insert_new(session: Session, table: sa.Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING into `table`, in the dialect of the session's database:
    a row already there (by any unique key) is left as it is."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()
