"""Several instances on one PostgreSQL database, in-process: two Applications, each with its
own intake, web app and pool, share one inbox. One chat's updates, posted to either, are
handled once each, in order; a guided flow started on one goes on on the other; a stopping
instance answers 503."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest

from csp_bot.bot.emulator import BotApiEmulator
from csp_bot.bot.intake import Intake
from csp_bot.bot.runner import BotRun
from csp_bot.bot.settings import Settings
from csp_bot.bot.webhook import web_app
from csp_bot.handlers.context import CspApplication
from csp_bot.models.chat_locks import ChatLocks
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from tests.harness import PEOPLE, Harness, build_test_application
from tests.test_inbox import inbox, stored_notes
from tests.test_progress import current, data_for
from tests.test_webhook import HOOK, SECRET, start_update, stored

POLICE = PEOPLE["police"].user
CHAIR = PEOPLE["chair"].user


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
    assert [reply.text.split("Note: ")[1].split("\n")[0] for reply in replies] == notes
    assert stored_notes(db) == notes
    assert len(emulator.messages(POLICE.id)) == 12  # none answered twice


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
