"""Several instances on one database: one leads the reminders at a time, and a second
instance where only one may run (polling, or any on SQLite) is refused."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session

import csp_bot.handlers.delivery
from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser, EmulatorServer
from csp_bot.bot.runner import keep_holding
from csp_bot.bot.settings import Settings
from csp_bot.handlers.context import CspApplication
from csp_bot.handlers.delivery import dispatch_due
from csp_bot.handlers.jobs import run_dispatcher_now, until_next_multiple
from csp_bot.models.audit import CLI
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database, make_engine
from csp_bot.models.leases import FileLease, Purpose, sole_instance_lease
from csp_bot.models.meetings import schedule_meeting
from csp_bot.models.membership import MemberView
from csp_bot.models.reminder_types import OutboxState, ReminderKind
from csp_bot.scheduler.pacing import InstantPacer
from tests.conftest import register
from tests.harness import PEOPLE, build_test_application
from tests.reminder_helpers import outbox, schedule, set_clock, texts
from tests.test_cli import TOKEN
from tests.test_crash import (  # noqa: F401 (env: a fixture)
    WAIT,
    bot_env,
    database,
    env,
    poll,
    seed_police,
    start_bot,
    webhook_env,
)
from tests.test_webhook import WELCOME_START, free_port

BOARD = ("chair", "board", "coordinator")
STRANGER = EmulatedUser(4001, "Stranger")
REFUSED_ON_SQLITE = (
    "csp-bot: another csp-bot is already running on this SQLite database, which takes one"
    " instance only; to run several, use PostgreSQL (CSPBOT_DATABASE_URL) in webhook mode"
    " (CSPBOT_WEBHOOK_URL)"
)
REFUSED_ON_POSTGRESQL = (
    "csp-bot: another csp-bot is already taking updates from Telegram by long polling on"
    " this database, which Telegram allows one process only; to run several, set"
    " CSPBOT_WEBHOOK_URL on every instance (webhook mode)"
)
EXIT_ALREADY_RUNNING = 4


@pytest.fixture
def postgres(db: Database) -> Database:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL (CSPBOT_TEST_DATABASE_URL): SQLite runs one instance")
    return db


@asynccontextmanager
async def instance(
    settings: Settings, clock: FakeClock, emulator: BotApiEmulator
) -> AsyncIterator[CspApplication]:
    """One more instance of the bot: its own engine and connections, the same database;
    its sends paced on a virtual clock."""
    database = Database(make_engine(settings.database_url))
    application = build_test_application(settings, database, clock, emulator)
    await application.initialize()
    try:
        yield application
    finally:
        await application.shutdown()
        application.services.leader.release()
        database.close()


def cut_the_holders_connection(db: Database, purpose: Purpose = Purpose.LEADER) -> int:
    """What a dead machine or a database restart does to a connection: the server ends the
    one holding the lease in this schema. Returns how many connections were ended."""

    def cut(session: Session) -> int:
        # The lease's key, as `models.leases` takes it (end_lock_holders folds it to the
        # lock table's unsigned form).
        key = session.execute(text("SELECT hashtext(current_schema())")).scalar_one()
        return end_lock_holders(session, space=int(purpose), key=int(key))

    return db.call(cut)


# How long to wait for an ended connection's server process to be gone (milliseconds): until
# it is, the locks it held are still held, and the next step would race against its exit.
ENDED_WITHIN_MS = 10_000


def end_lock_holders(session: Session, *, space: int, key: int) -> int:
    """End the connections holding the advisory lock (`space`, `key`), as a database restart
    would, and wait until they are gone. Returns how many were ended."""
    ended = session.execute(
        text(
            "SELECT pg_terminate_backend(pid, :wait) FROM pg_locks"
            " WHERE locktype = 'advisory' AND granted AND objsubid = 2"
            " AND classid = :space AND objid = :key"
        ),
        {"space": space & 0xFFFFFFFF, "key": key & 0xFFFFFFFF, "wait": ENDED_WITHIN_MS},
    ).scalars()
    return sum(1 for gone in ended if gone)


def board_texts(emulator: BotApiEmulator) -> dict[str, list[str]]:
    """The meeting reminders each board member got through one instance."""
    return {
        person: [sent for sent in texts(emulator, person) if "Board meeting" in sent]
        for person in BOARD
    }


async def test_only_the_lease_holder_sends_and_a_survivor_takes_over_at_its_next_round(
    postgres: Database, settings: Settings, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    telegram_a, telegram_b = BotApiEmulator(clock=clock), BotApiEmulator(clock=clock)
    schedule(postgres, clock, "2021-06-24T10:00")
    set_clock(clock, "2021-06-17T10:00")
    async with (
        instance(settings, clock, telegram_a) as a,
        instance(settings, clock, telegram_b) as b,
    ):
        await run_dispatcher_now(a)
        await run_dispatcher_now(b)
        await run_dispatcher_now(a)
        assert all(
            len(sent) == 1 and "Board meeting in 7 days" in sent[0]
            for sent in board_texts(telegram_a).values()
        ), board_texts(telegram_a)
        assert board_texts(telegram_b) == {"chair": [], "board": [], "coordinator": []}

        assert cut_the_holders_connection(postgres) == 1
        set_clock(clock, "2021-06-23T10:00")
        await run_dispatcher_now(b)  # its next round: the lease is free, and b takes it
        await run_dispatcher_now(a)  # a finds its connection gone and the lease taken
        await run_dispatcher_now(b)

    assert all(len(sent) == 1 for sent in board_texts(telegram_a).values())
    assert all(
        len(sent) == 1 and "Board meeting tomorrow at 10:00" in sent[0]
        for sent in board_texts(telegram_b).values()
    ), board_texts(telegram_b)
    meeting_reminders = outbox(postgres, ReminderKind.MEETING)
    sent = [entry for entry in meeting_reminders if entry.state == OutboxState.SENT]
    assert len(sent) == 6  # three board members, two offsets: each sent once
    # Every reminder of any kind that went, went once, through one instance or the other.
    all_sent = [entry for entry in outbox(postgres) if entry.state == OutboxState.SENT]
    assert len(telegram_a.messages()) + len(telegram_b.messages()) == len(all_sent)


async def test_the_lease_is_free_again_when_its_holder_lets_go(
    postgres: Database, settings: Settings, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    async with instance(settings, clock, BotApiEmulator(clock=clock)) as a:
        assert a.services.leader.held()
        async with instance(settings, clock, BotApiEmulator(clock=clock)) as b:
            assert not b.services.leader.held()
            a.services.leader.release()
            assert b.services.leader.held()
            assert not a.services.leader.held()


async def test_a_leader_that_lost_its_lease_mid_round_sends_no_further_batch(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(csp_bot.handlers.delivery, "BATCH", 2)
    schedule(db, clock, "2021-06-24T10:00")
    set_clock(clock, "2021-06-17T10:00")

    async def lost() -> bool:
        return False

    await dispatch_due(app, pacer=InstantPacer(), still_leading=lost)
    assert len(emulator.messages()) == 2  # the first batch; the new leader sends the rest
    states = [entry.state for entry in outbox(db)]
    assert states.count(OutboxState.SENT) == 2
    assert OutboxState.PENDING in states
    assert OutboxState.SENDING not in states


async def test_a_poller_whose_lock_another_took_after_a_database_restart_stops(
    postgres: Database,
) -> None:
    first = sole_instance_lease(postgres.engine, polling=True)
    second = sole_instance_lease(postgres.engine, polling=True)
    assert first is not None and second is not None
    try:
        assert first.held()
        assert not second.held()
        assert cut_the_holders_connection(postgres, Purpose.POLLING) == 1
        assert second.held()  # started while the first's connection was gone
        stop = asyncio.Event()
        assert await keep_holding(first, stop, every=0) is False
        assert stop.is_set()
    finally:
        first.release()
        second.release()


async def test_a_poller_takes_its_lock_again_when_still_free_after_a_restart(
    postgres: Database,
) -> None:
    lease = sole_instance_lease(postgres.engine, polling=True)
    assert lease is not None
    try:
        assert lease.held()
        assert cut_the_holders_connection(postgres, Purpose.POLLING) == 1
        assert lease.held()  # free: taken again on a new connection
        assert cut_the_holders_connection(postgres, Purpose.POLLING) == 1
    finally:
        lease.release()


def webhook_instance(server: EmulatorServer, cwd: Path) -> tuple[subprocess.Popen[str], int]:
    """A `csp-bot run` in webhook mode on a port of its own, planning every second and
    pushing at any hour (the test runs on the real clock)."""
    port = free_port()
    environment = webhook_env(server, port, "s3cret-for-the-test") | {
        "CSPBOT_REMINDER_ROUND_SECONDS": "1",
        "CSPBOT_QUIET_HOURS": "off",
    }
    bot = subprocess.Popen(
        [sys.executable, "-m", "csp_bot.bot.cli", "run"],
        env=environment,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return bot, port


def meeting_in_two_hours(url: str, title: str) -> None:
    """A meeting whose two-hour reminder is due now (a minute ago)."""
    with database(url) as db:
        now = datetime.now(UTC)
        db.call(schedule_meeting, title=title, starts_at=now + timedelta(hours=2, minutes=-1),
                location="Kettering", agenda=[], at=now, actor=CLI)  # fmt: skip


def meeting_reminders_to(emulator: BotApiEmulator, person: str) -> list[str]:
    return [sent for sent in texts(emulator, person) if "Board meeting" in sent]


def test_a_killed_leaders_reminders_are_taken_over_by_the_other_process(
    env: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    if not env.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (CSPBOT_TEST_DATABASE_URL): SQLite runs one instance")
    seed_police(env)
    with database(env) as db:
        register(db, FakeClock(datetime.now(UTC)), PEOPLE["chair"])
    emulator = BotApiEmulator(token=TOKEN)
    with EmulatorServer(emulator) as server:
        first, _ = webhook_instance(server, tmp_path)
        second: subprocess.Popen[str] | None = None
        try:
            meeting_in_two_hours(env, "First board")
            # The first alone: it leads, and sends the reminder.
            assert poll(lambda: len(meeting_reminders_to(emulator, "chair")) == 1)
            second, second_port = webhook_instance(server, tmp_path)
            with httpx.Client(base_url=f"http://127.0.0.1:{second_port}", timeout=5) as http:
                assert poll(lambda: serving(http))
            first.kill()  # kill -9: its lease connection goes with it
            first.communicate(timeout=WAIT)
            meeting_in_two_hours(env, "Second board")
            assert poll(lambda: len(meeting_reminders_to(emulator, "chair")) == 2)
        finally:
            for bot in (first, second):
                if bot is not None and bot.poll() is None:
                    bot.send_signal(signal.SIGTERM)
            _, second_logs = second.communicate(timeout=WAIT) if second else ("", "")
            first.communicate(timeout=WAIT)
    first_reminder, second_reminder = meeting_reminders_to(emulator, "chair")
    assert "First board" in first_reminder and "Second board" in second_reminder
    assert "this instance now holds the LEADER lease" in second_logs
    # Each reminder went once at most: a message for each row sent, and at most one for
    # each left `sending` by the killed leader (in doubt, never sent again).
    with database(env) as db:
        states = [entry.state for entry in outbox(db)]
    sent, in_doubt = states.count(OutboxState.SENT), states.count(OutboxState.SENDING)
    assert sent <= len(emulator.messages()) <= sent + in_doubt


def serving(http: httpx.Client) -> bool:
    try:
        return http.get("/healthz").text == "ok"
    except httpx.TransportError:
        return False


def second_instance(server: EmulatorServer, cwd: Path, *, webhook: bool) -> subprocess.Popen[str]:
    environment = bot_env(server)
    if webhook:
        environment |= {
            "CSPBOT_WEBHOOK_URL": "http://127.0.0.1:9/telegram",
            "CSPBOT_WEBHOOK_LISTEN": "127.0.0.1:1",  # never bound: refused first
            "CSPBOT_WEBHOOK_SECRET": "not-needed-it-is-refused-first",
        }
    return subprocess.Popen(
        [sys.executable, "-m", "csp_bot.bot.cli", "run"],
        env=environment,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_instance_is_refused_while_the_first_runs(env: str, tmp_path: Path) -> None:  # noqa: F811
    on_sqlite = env.startswith("sqlite")
    emulator = BotApiEmulator(token=TOKEN)
    with EmulatorServer(emulator) as server:
        first = start_bot(server, tmp_path)
        try:
            emulator.wait_for_pollers(1, timeout=WAIT)
            # On SQLite any second instance is refused, even one taking updates by webhook.
            second = second_instance(server, tmp_path, webhook=on_sqlite)
            out, err = second.communicate(timeout=WAIT)
            assert second.returncode == EXIT_ALREADY_RUNNING, err
            assert err.strip().splitlines()[-1] == (
                REFUSED_ON_SQLITE if on_sqlite else REFUSED_ON_POSTGRESQL
            )
            assert [line for line in err.splitlines() if line.startswith("csp-bot:")] == [
                err.strip().splitlines()[-1]
            ]
            assert "Traceback" not in out + err
            assert first.poll() is None  # the first runs on, alone
        finally:
            first.send_signal(signal.SIGKILL)  # its lock goes with it
            first.communicate(timeout=WAIT)
        # Killed, the first holds nothing: a new instance starts and answers.
        after = start_bot(server, tmp_path)
        try:
            emulator.send_text(STRANGER, "/start")
            [welcome] = emulator.wait_for_messages(STRANGER.id, 1, timeout=WAIT)
            assert welcome.text.startswith(WELCOME_START)
        finally:
            after.send_signal(signal.SIGINT)
            _, err = after.communicate(timeout=WAIT)
    assert after.returncode == 0, err


def test_the_lock_file_sits_beside_the_sqlite_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'csp-bot.db'}")
    try:
        lease = sole_instance_lease(engine, polling=False)
        assert isinstance(lease, FileLease)
        assert lease.path == Path(os.path.abspath(tmp_path / "csp-bot.db.lock"))
    finally:
        engine.dispose()


def test_every_instance_plans_on_the_same_moments() -> None:
    """A round every 60 s falls at :00 of each minute on every instance, however long each
    has run: a leader taking over plans at the next such moment, never twice in a minute."""
    assert until_next_multiple(60, 120_015.5) == 44.5
    assert until_next_multiple(60, 120_059.0) == 1.0
    assert until_next_multiple(2, 120_001.5) == 0.5
