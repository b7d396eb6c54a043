"""Background work (a reminder planning round) never queues in front of users' commands."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import event, text
from sqlmodel import Session

from csp_bot.models.db import POSTGRES_WORKERS, Database

PATIENCE = 30.0


def select_one(session: Session) -> int:
    return int(session.execute(text("SELECT 1")).scalar_one())


async def test_a_command_is_answered_while_a_planning_round_is_still_running(
    db: Database,
) -> None:
    release = threading.Event()

    def long_round(session: Session) -> int:
        select_one(session)
        assert release.wait(PATIENCE), "the command was not answered meanwhile"
        return 2

    planning = asyncio.ensure_future(db.run_apart(long_round))
    # On SQLite the users' worker is a single thread: this would wait behind the round.
    answered = await asyncio.wait_for(db.run(select_one), PATIENCE)
    release.set()

    assert answered == 1
    assert not planning.done() or planning.result() == 2
    assert await planning == 2


async def test_the_workers_keep_their_connections_until_the_database_closes(
    database_url: str,
) -> None:
    db = Database.from_url(database_url)
    taken: list[str] = []
    event.listen(db.engine.pool, "checkout", lambda *_: taken.append("out"))
    event.listen(db.engine.pool, "checkin", lambda *_: taken.append("in"))
    for _ in range(10):
        assert await db.run(select_one) == 1
        assert await db.run_apart(select_one) == 1
    # One connection for each worker that ran something (SQLite has one, PostgreSQL up to
    # four) and one for the background thread, none handed back between transactions.
    threads = 2 if db.engine.dialect.name == "sqlite" else POSTGRES_WORKERS + 1
    assert 2 <= taken.count("out") <= threads and "in" not in taken
    db.close()
    assert taken.count("in") == taken.count("out")
