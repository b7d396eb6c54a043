"""A connection PostgreSQL dropped is recovered without a ping before every transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import Session

from csp_bot.models.db import Database
from tests.test_instances import ENDED_WITHIN_MS


def backend_pid(session: Session) -> int:
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def terminate(session: Session, *, pid: int) -> None:
    """End the connection, and wait until its server process is gone."""
    session.execute(
        text("SELECT pg_terminate_backend(:pid, :wait)"), {"pid": pid, "wait": ENDED_WITHIN_MS}
    )


def test_an_operation_on_a_dropped_connection_runs_again_on_a_new_one(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL (CSPBOT_TEST_DATABASE_URL): SQLite has no server")
    first = db.call(backend_pid)
    with db.engine.connect() as other:  # a second pooled connection, dropped as well
        dropped = [first, int(other.execute(text("SELECT pg_backend_pid()")).scalar_one())]
    admin = Database.from_url(db.engine.url.render_as_string(hide_password=False))
    for pid in dropped:
        admin.call(terminate, pid=pid)
    admin.close()

    again = db.call(backend_pid)

    assert again not in dropped
    assert db.call(backend_pid) not in dropped


async def test_a_worker_replaces_the_connection_it_keeps_when_the_server_dropped_it(
    db: Database,
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL (CSPBOT_TEST_DATABASE_URL): SQLite has no server")
    kept = await db.run_apart(backend_pid)
    assert await db.run_apart(backend_pid) == kept  # the background thread keeps it
    admin = Database.from_url(db.engine.url.render_as_string(hide_password=False))
    admin.call(terminate, pid=kept)
    admin.close()

    again = await db.run_apart(backend_pid)

    assert again != kept
    assert await db.run_apart(backend_pid) == again
