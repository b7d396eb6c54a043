"""Two updates to one action at the same instant, on PostgreSQL, where writers really overlap.

SQLite has one writer thread, so there the updates queue whatever the code does. On
PostgreSQL the second update must wait for the first: it is held at the action's row lock
while the first, paused after reading the action's status, finishes. Without the lock both
read the same status, and the second's "previous status" is wrong.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session

import csp_bot.models.progress
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.enums import Status
from csp_bot.models.membership import MemberView
from csp_bot.models.progress import LoggedUpdate, log_progress

# Only a guard against hanging: each wait ends as soon as the other side has moved.
PATIENCE = 30.0


def waiting_on_a_lock(db: Database, pid: int) -> bool:
    with db.engine.connect() as connection:
        event = connection.execute(
            text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        ).scalar()
    return event == "Lock"


async def test_a_second_update_waits_for_the_first_at_the_row_lock(
    db: Database, clock: FakeClock, people: dict[str, MemberView], monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL (CSPBOT_TEST_DATABASE_URL): SQLite has a single writer")
    first_read = threading.Event()
    second_read = threading.Event()
    second_pid: list[int] = []
    real_insert_changes = csp_bot.models.progress.insert_changes

    def pausing_insert_changes(session: Session, **values: Any) -> Any:
        """The first update, having read the action, waits until the second is stuck at the
        lock (or, with no lock, has read the same status); the second goes straight on."""
        if threading.current_thread().name == "first" and not first_read.is_set():
            first_read.set()
            deadline = time.monotonic() + PATIENCE
            while not second_read.is_set() and time.monotonic() < deadline:
                if second_pid and waiting_on_a_lock(db, second_pid[0]):
                    break
                time.sleep(0.01)
        elif threading.current_thread().name == "second":
            second_read.set()
        return real_insert_changes(session, **values)

    monkeypatch.setattr(csp_bot.models.progress, "insert_changes", pausing_insert_changes)

    def update(member: MemberView, status: Status, note: str) -> Callable[[Session], LoggedUpdate]:
        def op(session: Session) -> LoggedUpdate:
            if threading.current_thread().name == "second":
                assert first_read.wait(PATIENCE)
                second_pid.append(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            return log_progress(
                session, ref="SOC-1", member_id=member.id, status=status, note=note, at=clock()
            )

        return op

    def run(name: str, op: Callable[[Session], LoggedUpdate]) -> LoggedUpdate:
        threading.current_thread().name = name
        return db.call(op)

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(run, "first", update(people["chair"], Status.RED, "from the chair"))
        second = pool.submit(run, "second", update(people["police"], Status.AMBER, "police"))
        chair, police = first.result(PATIENCE), second.result(PATIENCE)

    assert chair.previous_status == Status.GREEN
    # The second saw what the first left, not the status both started from.
    assert police.previous_status == Status.RED
    assert police.action.status == Status.AMBER
