"""Several instances on one PostgreSQL database, in-process: two Applications, each with its
own intake, web app and pool, share one inbox. One chat's updates, posted to either, are
handled once each, in order; a guided flow started on one goes on on the other; a stopping
instance answers 503."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session

from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser, EmulatorServer
from csp_bot.bot.intake import Intake
from csp_bot.bot.runner import BotRun
from csp_bot.bot.settings import Settings
from csp_bot.bot.webhook import web_app
from csp_bot.handlers.context import CspApplication
from csp_bot.models.chat_locks import ChatLocks, fold_to_int4, namespace_of
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from tests import test_crash
from tests.harness import OUTSIDER, PEOPLE, Harness, build_test_application
from tests.test_cli import TOKEN
from tests.test_crash import (
    WAIT,
    assert_quiet_about_the_token,
    database,
    poll,
    seed_police,
    webhook_env,
)
from tests.test_inbox import GatedRequest, inbox, stored_notes
from tests.test_instances import end_lock_holders
from tests.test_progress import current, data_for
from tests.test_webhook import HOOK, SECRET, free_port, start_update, stored

POLICE = PEOPLE["police"].user
CHAIR = PEOPLE["chair"].user
env = test_crash.env  # the fixture: a clean CSPBOT_* environment on the test database


@pytest.fixture
def on_postgresql(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL (CSPBOT_TEST_DATABASE_URL): SQLite runs one instance")


@pytest.fixture
async def second_db(db: Database, database_url: str) -> AsyncIterator[Database]:
    """The same database through a pool of its own, as another machine would reach it."""
    other = Database.from_url(database_url)
    yield other
    other.close()


async def idle(intake: Intake) -> None:
    """A receiver that takes nothing from Telegram itself: the test posts to the web app."""
    await asyncio.Event().wait()


@asynccontextmanager
async def instance(
    settings: Settings, db: Database, clock: FakeClock, emulator: BotApiEmulator
) -> AsyncIterator[tuple[BotRun, httpx.AsyncClient]]:
    """One instance running as `csp-bot run` runs it, and Telegram's side of its webhook."""
    application = build_test_application(settings, db, clock, emulator)
    async with BotRun(application, idle) as running:
        web = web_app(running.intake, webhook_path=HOOK, secret=SECRET)
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as http:
            yield running, http


async def post(http: httpx.AsyncClient, update: dict[str, Any]) -> int:
    answer = await http.post(HOOK, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    return answer.status_code


async def test_one_chats_updates_sent_alternately_to_two_instances_are_handled_once_in_order(
    on_postgresql: None,
    settings: Settings,
    db: Database,
    second_db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(instance(settings, db, clock, emulator))
        second = await stack.enter_async_context(instance(settings, second_db, clock, emulator))
        for n in range(1, 13):  # Telegram posts the next once the last was answered
            _, http = first if n % 2 else second
            update = emulator.build_message_update(POLICE, f"/update SOC-1 green step {n}")
            assert await post(http, update) == 200
        replies = await emulator.wait_for_messages_async(POLICE.id, 12, timeout=30)
        await until_all_done(db)
    notes = [f"step {n}" for n in range(1, 13)]
    assert [note_in(reply.text) for reply in replies] == notes
    assert stored_notes(db) == notes
    assert len(emulator.messages(POLICE.id)) == 12  # none answered twice


def note_in(reply: str) -> str:
    """The note a reply to a one-line /update confirms (the whole reply if none)."""
    return reply.split("Note: ")[1].split("\n")[0] if "Note: " in reply else reply


async def until_all_done(db: Database) -> None:
    """Until every stored update is marked done (bounded: fails rather than hangs)."""
    for _ in range(1000):
        if all(done for _, done in inbox(db)):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"updates left unfinished: {inbox(db)}")


async def test_an_update_taken_while_another_instance_holds_the_chat_is_handled_after(
    on_postgresql: None,
    settings: Settings,
    db: Database,
    second_db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    """The holder dies (its connection ends) without handling it: the sweep takes it up,
    and an update already done is not handled again."""
    holder = ChatLocks(second_db.engine)
    assert await holder.try_lock(POLICE.id)
    async with instance(settings, db, clock, emulator) as (running, http):
        update = emulator.build_message_update(POLICE, "/update SOC-1 green held back")
        assert await post(http, update) == 200
        turns = running.turns
        assert turns is not None
        await until(lambda: not turns.under_way)  # woken, found the lock taken, left it
        assert await turns.sweep() == 1  # woken again: the lock is still taken
        await until(lambda: not turns.under_way)
        assert emulator.messages(POLICE.id) == []
        assert inbox(db) == [(update["update_id"], False)]
        await holder.close()  # the other instance goes: its lock with it
        assert await turns.sweep() == 1
        [reply] = await emulator.wait_for_messages_async(POLICE.id, 1, timeout=10)
        await until_all_done(db)
        assert await turns.sweep() == 0  # done: never handled again
    assert "Note: held back" in reply.text
    assert stored_notes(db) == ["held back"]


async def test_a_chat_whose_lock_key_another_chat_holds_is_taken_up_by_the_sweep(
    on_postgresql: None,
    settings: Settings,
    db: Database,
    second_db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    """Chat keys are folded to 32 bits for the lock: two chats that fold alike take turns.
    The one left waiting is not stranded (the sweep takes it up), and others go on."""
    folded = EmulatedUser(POLICE.id + 2**32, "Folded")  # user ids run past 32 bits
    holder = ChatLocks(second_db.engine)  # another instance, in the police chat's turn
    assert await holder.try_lock(POLICE.id)
    async with instance(settings, db, clock, emulator) as (running, http):
        assert await post(http, emulator.build_message_update(folded, "/start")) == 200
        assert await post(http, emulator.build_message_update(CHAIR, "/whoami")) == 200
        [chair] = await emulator.wait_for_messages_async(CHAIR.id, 1, timeout=10)
        turns = running.turns
        assert turns is not None
        await until(lambda: not turns.under_way)
        assert emulator.messages(folded.id) == []  # its key is held elsewhere
        await holder.close()
        assert await turns.sweep() == 1
        [reply] = await emulator.wait_for_messages_async(folded.id, 1, timeout=10)
        await until_all_done(db)
    assert chair.text.startswith("<b>Sarah</b>")
    assert reply.text.startswith("Hello Folded. I'm the assistant for the members")


def end_the_chat_locks_connection(db: Database, chat_id: int) -> int:
    """What a database restart does to the connection holding a chat's lock (in this
    schema's namespace only: other test runs share the server). How many were ended."""

    def end(session: Session) -> int:
        place = session.execute(
            text("SELECT current_database() || '.' || current_schema()")
        ).scalar_one()
        return end_lock_holders(session, space=namespace_of(place), key=fold_to_int4(chat_id))

    return db.call(end)


async def test_a_turn_whose_lock_connection_is_lost_loses_and_repeats_nothing(
    on_postgresql: None,
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    """The server ends the lock's connection while the chat's turn is under way: the
    update is still handled once and marked done, and the chat's next update takes the
    lock again on a new connection."""
    gated = GatedRequest(emulator, slow_chat=POLICE.id)
    application = build_test_application(settings, db, clock, emulator, request=gated)
    async with BotRun(application, idle) as running:
        first = emulator.build_message_update(POLICE, "/update SOC-1 green one")
        await running.intake.accept([first])
        await until(lambda: gated.held == 1)  # its reply is on the way, the lock held
        assert end_the_chat_locks_connection(db, POLICE.id) == 1
        gated.gate.set()
        await emulator.wait_for_messages_async(POLICE.id, 1, timeout=10)
        turns = running.turns
        assert turns is not None
        await until(lambda: not turns.under_way)  # letting go failed: the turn ended
        second = emulator.build_message_update(POLICE, "/update SOC-1 green two")
        await running.intake.accept([second])
        replies = await emulator.wait_for_messages_async(POLICE.id, 2, timeout=10)
        await until_all_done(db)
        assert await turns.sweep() == 0
    assert [note_in(reply.text) for reply in replies] == ["one", "two"]
    assert stored_notes(db) == ["one", "two"]
    assert len(emulator.messages(POLICE.id)) == 2  # none answered twice


async def test_a_turn_that_lost_its_lock_leaves_the_chats_next_update_to_the_new_holder(
    on_postgresql: None,
    settings: Settings,
    db: Database,
    second_db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    """Two updates wait in one chat. While the first is handled, the server ends the lock's
    connection and another instance takes the chat: the second is left to that one."""
    gated = GatedRequest(emulator, slow_chat=POLICE.id)
    application = build_test_application(settings, db, clock, emulator, request=gated)
    async with BotRun(application, idle) as running:
        first = emulator.build_message_update(POLICE, "/update SOC-1 green one")
        second = emulator.build_message_update(POLICE, "/update SOC-1 green two")
        await running.intake.accept([first, second])
        await until(lambda: gated.held == 1)  # the first's reply is on the way
        assert end_the_chat_locks_connection(db, POLICE.id) == 1
        holder = ChatLocks(second_db.engine)  # another instance, now in the chat's turn
        assert await holder.try_lock(POLICE.id)
        gated.gate.set()
        await emulator.wait_for_messages_async(POLICE.id, 1, timeout=10)
        turns = running.turns
        assert turns is not None
        await until(lambda: not turns.under_way)
        assert stored_notes(db) == ["one"]  # the second waits for the chat's holder
        assert len(emulator.messages(POLICE.id)) == 1
        await holder.close()  # it died: the sweep takes the chat up
        assert await turns.sweep() == 1
        replies = await emulator.wait_for_messages_async(POLICE.id, 2, timeout=10)
        await until_all_done(db)
    assert [note_in(reply.text) for reply in replies] == ["one", "two"]
    assert stored_notes(db) == ["one", "two"]


async def until(condition: Any, tries: int = 1000) -> None:
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never got there")


async def test_a_guided_update_started_on_one_instance_goes_on_on_the_other(
    on_postgresql: None,
    settings: Settings,
    db: Database,
    second_db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    async with two_applications(settings, db, second_db, clock, emulator) as (one, other):
        [picker] = await one.send(POLICE, "/update")
        await other.press(POLICE, picker, data_for(emulator, picker, "🟢 SOC-1"))
        status_step = current(emulator, picker)
        assert "<b>What is its status?</b>" in status_step.text
        await one.press(POLICE, status_step, data_for(emulator, status_step, "🔴"))
        assert "Type a short note on progress" in current(emulator, picker).text
        [ask_mitigation] = await other.send(POLICE, "Provider pulled out")
        assert "Type the mitigation" in ask_mitigation.text
        [ask_forecast] = await one.send(POLICE, "Re-procuring through the PFCC framework")
        assert "will it recover by the due date" in ask_forecast.text
        [done] = await other.press(POLICE, ask_forecast, data_for(emulator, ask_forecast, "No"))
    assert done.text.startswith("Stored:\n<b>SOC-1</b>")
    assert "Note: Provider pulled out" in done.text
    assert "Mitigation: Re-procuring through the PFCC framework" in done.text
    assert "Forecast: Not expected to recover by the due date" in done.text
    assert stored_notes(db) == ["Provider pulled out"]


@asynccontextmanager
async def two_applications(
    settings: Settings,
    db: Database,
    second_db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
) -> AsyncIterator[tuple[Harness, Harness]]:
    applications: list[CspApplication] = []
    for pool in (db, second_db):
        application = build_test_application(settings, pool, clock, emulator)
        await application.initialize()
        applications.append(application)
    try:
        yield Harness(applications[0], emulator), Harness(applications[1], emulator)
    finally:
        for application in applications:
            await application.shutdown()


async def test_a_stopping_instance_is_not_ready_and_refuses_updates_with_503(
    app: CspApplication, db: Database
) -> None:
    intake = Intake(app)
    web = web_app(intake, webhook_path=HOOK, secret=SECRET)
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as http:
        assert (await http.get("/readyz")).status_code == 200
        intake.refusing = True  # what SIGTERM sets first
        ready = await http.get("/readyz")
        refused = await post(http, start_update(1))
    assert (ready.status_code, ready.json()) == (503, {"ready": False, "reason": "stopping"})
    assert refused == 503
    assert stored(db) == []  # Telegram sends it again, to an instance that stays


# --- the real `csp-bot run`: two processes in webhook mode, restarted one at a time -----------


def start_instance(server: EmulatorServer, port: int, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "csp_bot.bot.cli", "run"],
        env=webhook_env(server, port, SECRET),
        cwd=cwd,
        stderr=subprocess.PIPE,
        text=True,
    )


def until_ready(port: int, bot: subprocess.Popen[str]) -> None:
    """Until the instance's /readyz answers 200 (bounded)."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        for _ in range(1200):
            assert bot.poll() is None, "the bot stopped"
            try:
                if http.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise TimeoutError(f"the instance on port {port} never became ready")


class Telegram:
    """Posts updates one at a time, each to the next instance, and on any answer but 200
    (or none) to the other, until one takes it: a load balancer and Telegram's retries."""

    def __init__(self, ports: list[int]) -> None:
        self.clients = [
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) for port in ports
        ]
        self.refused = 0
        self._next = 0

    def deliver(self, update: dict[str, Any]) -> None:
        for _ in range(2000):
            client = self.clients[self._next % len(self.clients)]
            self._next += 1
            try:
                answer = client.post(
                    "/hook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
                )
                if answer.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            self.refused += 1
            time.sleep(0.02)
        raise TimeoutError(f"no instance took update {update['update_id']}")

    def close(self) -> None:
        for client in self.clients:
            client.close()


def stop_gracefully(bot: subprocess.Popen[str]) -> str:
    """SIGTERM; the instance must end, cleanly, within 30 s. Returns what it logged."""
    bot.send_signal(signal.SIGTERM)
    _, logs = bot.communicate(timeout=30)
    assert bot.returncode == 0, logs
    return logs


def test_a_rolling_restart_of_two_instances_loses_and_doubles_no_update(
    env: str, tmp_path: Path
) -> None:
    if not env.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (CSPBOT_TEST_DATABASE_URL): SQLite runs one instance")
    seed_police(env)
    emulator = BotApiEmulator(token=TOKEN)
    ports = [free_port(), free_port()]
    # Replies to one chat go about one a second (Telegram's limit, which the instances
    # keep), so each chat's count of updates sets the test's length: enough for each
    # instance to stop, and updates to arrive while it is down and starting again.
    notes = [f"rolling {n}" for n in range(1, 17)]
    with EmulatorServer(emulator) as server:
        bots = [start_instance(server, port, tmp_path) for port in ports]
        telegram = Telegram(ports)
        logs: list[str] = []
        try:
            for port, bot in zip(ports, bots, strict=True):
                until_ready(port, bot)
            for n, note in enumerate(notes):
                telegram.deliver(
                    emulator.build_message_update(POLICE, f"/update SOC-1 green {note}")
                )
                telegram.deliver(emulator.build_message_update(OUTSIDER, "/start"))
                if n in (4, 10):  # one instance, then the other, goes down and comes back
                    which = 0 if n == 4 else 1
                    logs.append(stop_gracefully(bots[which]))
                    bots[which] = start_instance(server, ports[which], tmp_path)
                if n in (6, 12):
                    until_ready(ports[0 if n == 6 else 1], bots[0 if n == 6 else 1])
            # The partner may be sent a reminder meanwhile (the instances run on real time).
            assert poll(lambda: len(update_replies(emulator)) >= len(notes))
            replies = update_replies(emulator)
            welcomes = emulator.wait_for_messages(OUTSIDER.id, len(notes), timeout=WAIT)
            assert poll(lambda: all_done(env))
        finally:
            telegram.close()
            for bot in bots:
                if bot.poll() is None:
                    logs.append(stop_gracefully(bot))
    assert [note_in(reply) for reply in replies] == notes
    assert len(welcomes) == len(notes)  # none lost, none answered twice
    assert stored_police_notes(env) == notes
    assert telegram.refused > 0  # the stopping instances did turn updates away
    assert_quiet_about_the_token(*logs)


def update_replies(emulator: BotApiEmulator) -> list[str]:
    """The partner's replies to /update, in the order sent."""
    return [m.text for m in emulator.messages(POLICE.id) if m.text.startswith("Stored:")]


def all_done(url: str) -> bool:
    with database(url) as db:
        return all(done for _, done in inbox(db))


def stored_police_notes(url: str) -> list[str]:
    with database(url) as db:
        return stored_notes(db)
