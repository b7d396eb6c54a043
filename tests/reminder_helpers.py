"""Helpers for the reminder tests: moving the clock to UK times, running the dispatcher as
the job would, scheduling meetings, reading the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from csp_bot.bot.emulator import BotApiEmulator, SentMessage
from csp_bot.bot.settings import Settings
from csp_bot.handlers.context import CspApplication
from csp_bot.handlers.delivery import DeliveryReport, dispatch_due
from csp_bot.models.audit import CLI
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.localtime import wall_clock
from csp_bot.models.meetings import MeetingView, schedule_meeting
from csp_bot.models.reminder_types import OutboxState, ReminderKind
from csp_bot.models.tables import OutboxEntry
from csp_bot.scheduler.pacing import InstantPacer
from tests.harness import PEOPLE, build_test_application

LONDON = ZoneInfo("Europe/London")


def uk(text: str) -> datetime:
    """A UK wall-clock time, as the UTC moment it is."""
    return wall_clock(datetime.fromisoformat(text), LONDON)


def set_clock(clock: FakeClock, text: str) -> None:
    clock.now = uk(text)


@asynccontextmanager
async def restarted(
    settings: Settings, db: Database, clock: FakeClock, emulator: BotApiEmulator
) -> AsyncIterator[CspApplication]:
    """The bot started again on the same database and Telegram, as after a crash."""
    application = build_test_application(settings, db, clock, emulator)
    await application.initialize()
    try:
        yield application
    finally:
        await application.shutdown()


async def tick(app: CspApplication) -> DeliveryReport:
    """One run of the dispatcher job, pacing on a virtual clock (no sleeping)."""
    return await dispatch_due(app, pacer=InstantPacer())


def schedule(
    db: Database, clock: FakeClock, at: str, *, title: str = "North Northants CSP Board"
) -> MeetingView:
    return db.call(
        schedule_meeting,
        title=title,
        starts_at=uk(at),
        location="Municipal Offices, Kettering",
        agenda=["Exception report", "Funding for 2022/23"],
        at=clock(),
        actor=CLI,
    )


def chat(emulator: BotApiEmulator, person: str) -> list[SentMessage]:
    """What the bot has sent to one of the test people, oldest first."""
    return emulator.messages(PEOPLE[person].user.id)


def texts(emulator: BotApiEmulator, person: str) -> list[str]:
    return [message.text for message in chat(emulator, person)]


def outbox(db: Database, kind: ReminderKind | None = None) -> list[OutboxEntry]:
    def read(session: object) -> list[OutboxEntry]:
        query = select(OutboxEntry).order_by(col(OutboxEntry.id))
        if kind is not None:
            query = query.where(OutboxEntry.kind == kind)
        return list(session.exec(query).all())  # type: ignore[attr-defined]

    return db.call(read)


def states(db: Database, kind: ReminderKind) -> dict[str, OutboxState]:
    """Each reminder of a kind by `member id:offset`, with its state."""
    return {
        f"{entry.member_id}:{entry.occurrence.split('/')[-1]}": entry.state
        for entry in outbox(db, kind)
    }
