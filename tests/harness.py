"""Driving the real Application as Telegram users would, through the Bot API emulator."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Update
from telegram.request import BaseRequest

from csp_bot.bot.app import build_application, services_for
from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser, EmulatorRequest, SentMessage
from csp_bot.bot.settings import Settings
from csp_bot.handlers.context import CspApplication
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.scheduler.pacing import InstantPacer


@dataclass(frozen=True)
class Person:
    """A test user and how they are registered."""

    user: EmulatedUser
    organisation: str
    role: str


PEOPLE = {
    "coordinator": Person(
        EmulatedUser(1001, "Mike", "Greenway"), "North Northamptonshire Council", "admin"
    ),
    "chair": Person(
        EmulatedUser(1002, "Sarah", "Chair"), "North Northamptonshire Council", "chair"
    ),
    "board": Person(EmulatedUser(1003, "Priya", "Board"), "Probation Service", "board"),
    "police": Person(EmulatedUser(1004, "Dan", "Inspector"), "Northants Police", "partner"),
    "observer": Person(
        EmulatedUser(1005, "Olu", "Observer"), "East Midlands Ambulance Service", "observer"
    ),
}
OUTSIDER = EmulatedUser(9999, "Stranger")


def build_test_application(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    *,
    request: BaseRequest | None = None,
    updates_request: BaseRequest | None = None,
) -> CspApplication:
    """The bot as `csp-bot run` builds it, but talking to the emulator in-process, its
    sends paced on a virtual clock."""
    services = services_for(settings, db=db, clock=clock, pacer=InstantPacer())
    return build_application(
        services,
        token=emulator.token,
        request=request or EmulatorRequest(emulator),
        updates_request=updates_request or EmulatorRequest(emulator),
        sleep=no_wait,
    )


async def no_wait(seconds: float) -> None:
    """Backoff in tests: time is not slept on."""


class Harness:
    """Sends user messages and button presses to the Application and returns the replies."""

    def __init__(self, app: CspApplication, emulator: BotApiEmulator) -> None:
        self.app = app
        self.emulator = emulator

    async def send(
        self,
        user: EmulatedUser,
        text: str,
        *,
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> list[SentMessage]:
        """`user` types `text`; the messages the bot sent in reply."""
        update = self.emulator.build_message_update(
            user, text, chat_id=chat_id, chat_type=chat_type
        )
        return await self.process(update)

    async def press(self, user: EmulatedUser, message: SentMessage, data: str) -> list[SentMessage]:
        """`user` taps the button with `data` on `message`; the new messages the bot sent."""
        update = self.emulator.build_callback_update(
            user, message.message_id, data, chat_id=message.chat_id
        )
        return await self.process(update)

    async def process(self, update: dict[str, object]) -> list[SentMessage]:
        seen = len(self.emulator.messages())
        await self.app.process_update(Update.de_json(update, self.app.bot))
        return self.emulator.messages()[seen:]

    async def reply(self, user: EmulatedUser, text: str, **kwargs: object) -> str:
        """The one reply to `user` typing `text` (fails if the bot sent more or fewer)."""
        sent = await self.send(user, text, **kwargs)  # type: ignore[arg-type]
        assert len(sent) == 1, [message.text for message in sent]
        return sent[0].text
