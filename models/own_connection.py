"""A PostgreSQL connection kept for one purpose, used from one thread of its own.

The per-chat locks and the shared pace of sends each make short calls, one round trip each,
many times a second. On a connection and a thread of their own they never wait for a
connection from the pool, nor behind users' transactions in the database's worker threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class OwnConnection:
    """An autocommit connection, made on first use and made again after it is lost."""

    def __init__(self, engine: Engine, purpose: str) -> None:
        self.engine = engine
        self.purpose = purpose
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=purpose)
        self._connection: Connection | None = None

    async def run(
        self, call: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`call(connection, *args)` in the connection's thread.

        A database error ends the connection (the server dropped it, or it is unusable):
        the next call starts afresh, and this one fails.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: self._call(call, *args, **kwargs))

    async def close(self) -> None:
        """End the connection and the thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._discard)
        self._thread.shutdown(wait=True)

    def _call(
        self, call: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        try:
            return call(self._connect(), *args, **kwargs)
        except sa.exc.DBAPIError:
            self._discard()
            raise

    def _connect(self) -> Connection:
        if self._connection is None:
            # Autocommit: each call stands alone, and no transaction stays open.
            self._connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._connection

    def _discard(self) -> None:
        """Close the connection itself, not back into the pool: a pooled connection would
        keep its session's advisory locks."""
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            except sa.exc.SQLAlchemyError:
                log.debug("the %s connection could not be closed cleanly", self.purpose)
            self._connection = None
