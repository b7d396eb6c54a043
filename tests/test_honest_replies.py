"""When a reply cannot be sent or a handler fails, the user is told the truth about storage."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import col, select

from csp_bot.bot.app import build_application, services_for
from csp_bot.bot.emulator import BotApiEmulator, EmulatorRequest
from csp_bot.bot.settings import Settings
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.enums import Status
from csp_bot.models.membership import MemberView
from csp_bot.models.tables import ProgressUpdate
from csp_bot.scheduler.pacing import InstantPacer
from tests.harness import PEOPLE, Harness, no_wait

POLICE = PEOPLE["police"].user
ONE_LINE = "/update SOC-1 green provider on site, first sessions held"
SAVED_BUT_FAILED = (
    "What you sent was saved, but something went wrong before I could finish answering. "
    "There is no need to send it again: /my shows where things stand."
)
APOLOGY = (
    "Sorry, something went wrong on my side and nothing was stored. Please try again; "
    "if it keeps happening, let your partnership coordinator know."
)
BAD_GATEWAY = json.dumps({"ok": False, "error_code": 502, "description": "Bad Gateway"}).encode()


class FailingSends(EmulatorRequest):
    """The emulator, but the next `failures` sendMessage calls answer 502 Bad Gateway."""

    def __init__(self, emulator: BotApiEmulator) -> None:
        super().__init__(emulator)
        self.failures = 0
        self.refused = 0

    async def do_request(
        self, url: str, method: str, *args: Any, **kwargs: Any
    ) -> tuple[int, bytes]:
        if url.endswith("/sendMessage") and self.failures:
            self.failures -= 1
            self.refused += 1
            return 502, BAD_GATEWAY
        return await super().do_request(url, method, *args, **kwargs)


@pytest.fixture
def sends(emulator: BotApiEmulator) -> FailingSends:
    return FailingSends(emulator)


@pytest.fixture
async def bot(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    sends: FailingSends,
) -> AsyncIterator[Harness]:
    """The real Application, its replies going through `sends` to the emulator."""
    services = services_for(settings, db=db, clock=clock, pacer=InstantPacer())
    app = build_application(
        services,
        token=emulator.token,
        request=sends,
        updates_request=EmulatorRequest(emulator),
        sleep=no_wait,
    )
    await app.initialize()
    yield Harness(app, emulator)
    await app.shutdown()


def stored_updates(db: Database) -> list[ProgressUpdate]:
    return list(
        db.call(lambda s: s.exec(select(ProgressUpdate).order_by(col(ProgressUpdate.id))).all())
    )


def chat_texts(emulator: BotApiEmulator) -> list[str]:
    return [message.text for message in emulator.messages(POLICE.id)]


@pytest.mark.parametrize(
    "failures",
    [
        6,  # the confirmation is given up on; the next message goes through
        9,  # and the first tries of the next one fail too
    ],
)
async def test_a_stored_update_whose_confirmation_fails_is_reported_saved(
    bot: Harness,
    db: Database,
    emulator: BotApiEmulator,
    sends: FailingSends,
    people: dict[str, MemberView],
    failures: int,
) -> None:
    sends.failures = failures
    await bot.send(POLICE, ONE_LINE)
    assert sends.refused == failures
    [update] = stored_updates(db)
    assert (update.status, update.note) == (Status.GREEN, "provider on site, first sessions held")
    assert chat_texts(emulator) == [SAVED_BUT_FAILED]


async def test_when_nothing_can_be_sent_the_user_is_never_told_nothing_was_stored(
    bot: Harness,
    db: Database,
    emulator: BotApiEmulator,
    sends: FailingSends,
    people: dict[str, MemberView],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sends.failures = 100
    await bot.send(POLICE, ONE_LINE)
    assert sends.refused == 12  # six tries for the confirmation, six for saying it was saved
    assert len(stored_updates(db)) == 1
    assert chat_texts(emulator) == []
    assert "could not tell the user what happened" in caplog.text
    sends.failures = 0
    text = await bot.reply(POLICE, "/my")  # once Telegram takes messages again
    assert "last update Thu 10 Jun 2021" in text
    assert APOLOGY not in chat_texts(emulator)


async def test_a_failure_before_anything_is_stored_is_an_apology(
    bot: Harness,
    db: Database,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the plan could not be read")

    monkeypatch.setattr("csp_bot.handlers.progress.log_progress", broken)
    assert await bot.reply(POLICE, ONE_LINE) == APOLOGY
    assert stored_updates(db) == []


async def test_a_confirmation_that_fails_once_arrives_once(
    bot: Harness,
    db: Database,
    emulator: BotApiEmulator,
    sends: FailingSends,
    people: dict[str, MemberView],
) -> None:
    sends.failures = 1
    [confirmation] = await bot.send(POLICE, ONE_LINE)
    assert sends.refused == 1
    assert confirmation.text.startswith("Stored:\n<b>SOC-1</b>")
    assert "Note: provider on site, first sessions held" in confirmation.text
    assert len(stored_updates(db)) == 1
    assert chat_texts(emulator) == [confirmation.text]  # nothing else: no need to send again


async def test_a_button_press_whose_confirmation_fails_is_reported_saved(
    bot: Harness,
    db: Database,
    emulator: BotApiEmulator,
    sends: FailingSends,
    people: dict[str, MemberView],
) -> None:
    [ask] = await bot.send(POLICE, "/update SOC-1 amber waiting for the provider")
    forecast = next(data for label, data in emulator.buttons(ask) if label.startswith("Yes"))
    sends.failures = 6  # the press is answered and stored; its confirmation is given up on
    await bot.press(POLICE, ask, forecast)
    [update] = stored_updates(db)
    assert (update.status, update.note) == (Status.AMBER, "waiting for the provider")
    assert chat_texts(emulator)[-1] == SAVED_BUT_FAILED
    assert len(emulator.callback_answers) == 1
