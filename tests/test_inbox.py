"""The inbox: nothing Telegram delivered is lost, nothing is stored twice, chats do not wait
for each other. Driven through the real Application and the emulator, in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from csp_bot.bot.emulator import BotApiEmulator, EmulatorRequest
from csp_bot.bot.intake import Intake
from csp_bot.bot.polling import Poller
from csp_bot.bot.runner import BotRun
from csp_bot.bot.settings import Settings
from csp_bot.handlers.context import CspApplication
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.dialogue import load_draft, save_draft
from csp_bot.models.inbox import prune_inbox
from csp_bot.models.membership import MemberView
from csp_bot.models.tables import InboxUpdate, ProgressUpdate
from tests.harness import PEOPLE, Harness, build_test_application
from tests.test_progress import current, data_for, pick

POLICE = PEOPLE["police"].user
CHAIR = PEOPLE["chair"].user
STORED = "Stored:\n<b>SOC-1</b>"


def inbox(db: Database) -> list[tuple[int, bool]]:
    """(update id, handled) for every update in the inbox, oldest first."""

    def read(session: Session) -> list[tuple[int, bool]]:
        rows = session.exec(select(InboxUpdate).order_by(InboxUpdate.update_id)).all()
        return [(row.update_id, row.done_at is not None) for row in rows]

    return db.call(read)


def stored_notes(db: Database) -> list[str]:
    return db.call(lambda s: [u.note for u in s.exec(select(ProgressUpdate)).all()])


async def one_poll(settings: Settings, db: Database, clock: FakeClock, em: BotApiEmulator) -> None:
    """A bot that takes one batch from Telegram and dies before handling any of it."""
    application = build_test_application(settings, db, clock, em)
    await application.initialize()
    await Poller(Intake(application), timeout=0).poll_once()
    await application.shutdown()  # the queue in memory goes with it


@asynccontextmanager
async def running(
    settings: Settings, db: Database, clock: FakeClock, em: BotApiEmulator, **kwargs: Any
) -> AsyncIterator[CspApplication]:
    """The bot as `csp-bot run` runs it (polling the emulator), until the block ends."""
    application = build_test_application(settings, db, clock, em, **kwargs)
    async with BotRun(application, lambda intake: Poller(intake, timeout=1).run()):
        yield application


async def test_an_update_is_confirmed_to_telegram_only_after_it_is_stored(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    emulator.send_text(POLICE, "/update SOC-1 green first")
    await one_poll(settings, db, clock, emulator)
    [(update_id, handled)] = inbox(db)
    assert not handled
    # The batch was fetched but not yet confirmed: Telegram still holds it.
    assert [u["update_id"] for u in emulator.pending_updates()] == [update_id]


async def test_a_crash_between_fetching_and_handling_loses_nothing(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    emulator.send_text(POLICE, "/update SOC-1 green first")
    emulator.send_text(POLICE, "/update SOC-1 amber second")
    await one_poll(settings, db, clock, emulator)
    assert stored_notes(db) == []
    async with running(settings, db, clock, emulator):
        replies = await emulator.wait_for_messages_async(POLICE.id, 2, timeout=10)
    # Handled in the order sent, each once, although Telegram delivered them again.
    assert replies[0].text.startswith(STORED) and "Note: first" in replies[0].text
    assert "will it recover by the due date" in replies[1].text
    assert stored_notes(db) == ["first"]
    assert [handled for _, handled in inbox(db)] == [True, True]
    assert emulator.pending_updates() == []  # confirmed at last


async def test_an_update_handled_again_after_a_crash_is_stored_once(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    emulator.send_text(POLICE, "/update SOC-1 green all good")
    async with running(settings, db, clock, emulator):
        await emulator.wait_for_messages_async(POLICE.id, 1, timeout=10)
    # A crash after the update was stored and answered, before it was marked done.
    db.call(forget_it_was_handled)
    async with running(settings, db, clock, emulator):
        replies = await emulator.wait_for_messages_async(POLICE.id, 2, timeout=10)
    assert replies[0].text.startswith(STORED)
    assert replies[1].text.startswith("That update was already stored:\n<b>SOC-1</b>")
    assert stored_notes(db) == ["all good"]  # the reply went again; the update did not


def forget_it_was_handled(session: Session) -> None:
    row = session.exec(select(InboxUpdate)).one()
    row.done_at = None
    session.add(row)


class GatedRequest(EmulatorRequest):
    """The emulator, but sends to one chat wait until the test opens the gate."""

    def __init__(self, emulator: BotApiEmulator, slow_chat: int) -> None:
        super().__init__(emulator)
        self.slow_chat = slow_chat
        self.gate = asyncio.Event()
        self.held = 0

    async def do_request(
        self, url: str, method: str, request_data: Any = None, *args: Any, **kwargs: Any
    ) -> tuple[int, bytes]:
        if url.endswith("/sendMessage") and self._chat(request_data) == self.slow_chat:
            self.held += 1
            await self.gate.wait()
        return await super().do_request(url, method, request_data, *args, **kwargs)

    @staticmethod
    def _chat(request_data: Any) -> int | None:
        return None if request_data is None else int(request_data.json_parameters["chat_id"])


async def test_a_slow_chat_does_not_hold_up_another_and_keeps_its_own_order(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    gated = GatedRequest(emulator, slow_chat=POLICE.id)
    async with running(settings, db, clock, emulator, request=gated):
        try:
            emulator.send_text(POLICE, "/update SOC-1 green one")
            emulator.send_text(POLICE, "/update SOC-1 green two")
            await until(lambda: gated.held == 1)  # the partner's first reply is held
            emulator.send_text(CHAIR, "/whoami")
            [chair] = await emulator.wait_for_messages_async(CHAIR.id, 1, timeout=10)
            assert chair.text.startswith("<b>Sarah</b>")
            assert gated.held == 1  # the partner's second update waits for the first
            assert emulator.messages(POLICE.id) == []
        finally:
            gated.gate.set()
        replies = await emulator.wait_for_messages_async(POLICE.id, 2, timeout=10)
    assert ["Note: one" in replies[0].text, "Note: two" in replies[1].text] == [True, True]
    assert stored_notes(db) == ["one", "two"]


async def until(condition: Callable[[], bool], tries: int = 1000) -> None:
    """Let the bot run until `condition` holds (bounded: fails rather than hangs)."""
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the bot never got there")


async def test_handled_updates_are_pruned_after_the_configured_days(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    emulator.send_text(POLICE, "/whoami")
    async with running(settings, db, clock, emulator):
        await emulator.wait_for_messages_async(POLICE.id, 1, timeout=10)
    emulator.send_text(POLICE, "/whoami")
    await one_poll(settings, db, clock, emulator)  # stored, never handled
    keep = timedelta(days=7)
    assert db.call(prune_inbox, now=clock() + timedelta(days=6), keep=keep) == 0
    assert db.call(prune_inbox, now=clock() + timedelta(days=8), keep=keep) == 1
    assert [handled for _, handled in inbox(db)] == [False]  # unhandled ones stay


class TroubledPolling(EmulatorRequest):
    """The emulator, but the first `failures` getUpdates calls answer with `status`."""

    def __init__(self, emulator: BotApiEmulator, status: int, failures: int) -> None:
        super().__init__(emulator)
        self.status = status
        self.failures = failures

    async def do_request(self, url: str, method: str, *args: Any, **kwargs: Any) -> Any:
        if url.endswith("/getUpdates") and self.failures:
            self.failures -= 1
            body = b"<html>Bad Gateway</html>" if self.status == 200 else b'{"ok": false}'
            return self.status, body
        return await super().do_request(url, method, *args, **kwargs)


@pytest.mark.parametrize("status", [500, 502, 503, 404, 200])
async def test_polling_goes_on_through_server_errors_and_garbled_answers(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    status: int,
) -> None:
    troubled = TroubledPolling(emulator, status, failures=3)
    emulator.send_text(POLICE, "/whoami")
    async with running(settings, db, clock, emulator, updates_request=troubled):
        [reply] = await emulator.wait_for_messages_async(POLICE.id, 1, timeout=10)
    assert reply.text.startswith("<b>Dan</b>")
    assert troubled.failures == 0


async def test_an_update_the_library_cannot_read_does_not_stop_polling(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    # Telegram's answer is valid JSON; one update in it lacks what every message has.
    broken = emulator.queue({"message": {"message_id": 1, "text": "no date, no chat"}})
    emulator.send_text(POLICE, "/whoami")
    async with running(settings, db, clock, emulator):
        [reply] = await emulator.wait_for_messages_async(POLICE.id, 1, timeout=10)
    assert reply.text.startswith("<b>Dan</b>")
    assert inbox(db) == [(broken, True), (broken + 1, True)]  # kept, and not retried
    assert emulator.pending_updates() == []  # confirmed, so Telegram does not resend it


async def test_a_guided_note_handled_again_after_a_crash_is_not_taken_as_the_mitigation(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [picker] = await bot.send(POLICE, "/update")
    await pick(bot, POLICE, picker, "🟢 SOC-1")
    await pick(bot, POLICE, current(emulator, picker), "🔴")
    note = emulator.build_message_update(POLICE, "Provider pulled out")
    [ask_mitigation] = await bot.process(note)
    assert "Type the mitigation" in ask_mitigation.text
    # The bot died before marking the note done: the inbox hands it over again.
    assert await bot.process(note) == []
    [ask_forecast] = await bot.send(POLICE, "Re-procuring through the PFCC framework")
    assert ask_forecast.text == "<b>SOC-1</b>: will it recover by the due date (Thu 31 Mar 2022)?"
    await bot.press(POLICE, ask_forecast, data_for(emulator, ask_forecast, "Yes"))
    [stored] = db.call(lambda s: s.exec(select(ProgressUpdate)).all())
    assert (stored.note, stored.mitigation) == (
        "Provider pulled out",
        "Re-procuring through the PFCC framework",
    )


async def test_a_button_press_handled_again_after_a_crash_before_its_step_was_saved(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    [picker] = await bot.send(POLICE, "/update")
    await pick(bot, POLICE, picker, "🟢 SOC-1")
    before = db.call(load_draft, user_id=POLICE.id, at=clock()).draft
    assert before is not None
    press = emulator.build_callback_update(
        POLICE, picker.message_id, data_for(emulator, current(emulator, picker), "🟢")
    )
    await bot.process(press)
    assert "Type a short note on progress" in current(emulator, picker).text
    # The bot died after editing the message and before saving the step: replayed.
    db.call(save_draft, user_id=POLICE.id, draft=before)
    await bot.process(press)
    [confirmation] = await bot.send(POLICE, "Provider on site two days a week")
    assert confirmation.text.startswith("Stored:\n<b>SOC-1</b>")
    assert stored_notes(db) == ["Provider on site two days a week"]
