"""Background work (a reminder planning round) never queues in front of users' commands."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import text
from sqlmodel import Session

from csp_bot.models.db import Database

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
