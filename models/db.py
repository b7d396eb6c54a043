"""The database engine, sessions, and running domain operations off the event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

P = ParamSpec("P")
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 5000
WROTE = "csp_bot_wrote"
SQLITE_CACHE_KIB = 64 * 1024
POSTGRES_WORKERS = 4

# The database itself failed (not one row's data): a caller lets it through, to try again later.
DatabaseFailure = SQLAlchemyError


def make_engine(url: str) -> Engine:
    """An engine for SQLite (WAL, busy timeout, usable from worker threads) or PostgreSQL."""
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, connect_args=_postgres_options(url))
    engine = create_engine(url, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _tune_sqlite)
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
    cursor.execute("PRAGMA foreign_keys=ON")
    # 64 MB of page cache instead of 2 MB: a summary reads every action of the plan.
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
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        workers = 1 if is_sqlite(engine) else POSTGRES_WORKERS
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="db")

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

    def _call_noting_writes(
        self, op: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> tuple[T, bool]:
        with self.session() as session:
            result = op(session, *args, **kwargs)
            wrote = bool(session.info.get(WROTE)) or bool(
                session.new or session.dirty or session.deleted
            )
        return result, wrote

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()
