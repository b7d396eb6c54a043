"""One pace for every message the bot sends, replies and reminders alike, shared by every
instance on one PostgreSQL database (on a virtual clock: nothing is slept on)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from csp_bot.bot.app import build_application, services_for
from csp_bot.bot.emulator import BotApiEmulator, EmulatorRequest
from csp_bot.bot.runner import BotRun
from csp_bot.bot.settings import Settings
from csp_bot.handlers.context import CspApplication
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from csp_bot.models.send_pace import SharedPace
from csp_bot.scheduler.pacing import InstantPacer, SharedPacer
from tests.harness import PEOPLE, Harness, build_test_application
from tests.test_cluster import idle, on_postgresql, second_db
from tests.test_reminders import FloodedRequest

__all__ = ["on_postgresql", "second_db"]  # fixtures

START = 1_800_000_000.0  # the virtual clock's start, in seconds since the epoch


class VirtualTime:
    """One clock that every instance in a test reads, moved forward by their waits."""

    def __init__(self) -> None:
        self.now = START

    async def advance(self, seconds: float) -> None:
        self.now += seconds

    def pacer(self, db: Database) -> SharedPacer:
        return SharedPacer(
            SharedPace(db.engine),
            sleep=self.advance,
            at=lambda: self.now,
            monotonic=lambda: self.now,
        )


@pytest.fixture
async def instances(
    on_postgresql: None, db: Database, second_db: Database
) -> AsyncIterator[tuple[VirtualTime, SharedPacer, SharedPacer]]:
    """Two instances' pacers, on connections of their own, and the clock they share."""
    time = VirtualTime()
    first, second = time.pacer(db), time.pacer(second_db)
    yield time, first, second
    await first.close()
    await second.close()


async def sent_at(time: VirtualTime, pacer: SharedPacer, chat_id: int) -> float:
    """Seconds after the start at which a message to `chat_id` may go."""
    await pacer.wait_turn(chat_id)
    return round(time.now - START, 4)


async def test_a_chat_written_to_by_two_instances_gets_three_at_once_then_one_in_1_2_s(
    instances: tuple[VirtualTime, SharedPacer, SharedPacer],
) -> None:
    time, reply, reminder = instances
    times = [await sent_at(time, (reply, reminder)[n % 2], 1004) for n in range(5)]
    # A burst of 3 at the overall pace (1/25 s, each up to half a gap early), then 1.2 s.
    assert times == [0, 0.02, 0.06, 1.2, 2.4]
    # Another chat is not held up by that one: it goes one overall gap (1/25 s) after the
    # send before, less the half gap a send may go early.
    assert await sent_at(time, reminder, 1005) == 2.42


async def test_two_instances_together_send_under_thirty_a_second(
    instances: tuple[VirtualTime, SharedPacer, SharedPacer],
) -> None:
    time, first, second = instances
    times = [await sent_at(time, (first, second)[n % 2], 2000 + n) for n in range(60)]
    # The first at once, then one every 1/25 s, each up to half a gap early.
    assert times[:3] == [0, 0.02, 0.06]
    assert len([t for t in times if t < 1]) == 26
    assert len([t for t in times if t < 2]) == 51


async def test_a_group_gets_five_in_a_burst_then_twenty_a_minute(
    instances: tuple[VirtualTime, SharedPacer, SharedPacer],
) -> None:
    time, first, second = instances
    times = [await sent_at(time, (first, second)[n % 2], -100123) for n in range(21)]
    # Five at the overall pace, then one every 3.8 s.
    assert times[:7] == [0, 0.02, 0.06, 0.1, 0.14, 3.8, 7.6]
    assert len([t for t in times if t < 60.8]) == 20


async def test_a_pause_telegram_asks_of_one_instance_holds_the_other(
    instances: tuple[VirtualTime, SharedPacer, SharedPacer],
) -> None:
    time, first, second = instances
    await first.pause(5)
    assert await sent_at(time, second, 1004) == 4.98  # half a gap early, as ever


async def test_a_pace_the_database_does_not_answer_falls_back_to_this_instance_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nowhere = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    pacer = SharedPacer(SharedPace(nowhere))
    await pacer.wait_turn(1004)
    await pacer.pause(0)
    assert caplog.messages == [
        "the shared pace of sends is unreachable; pacing this instance alone"
    ]


async def test_a_reply_waits_its_turn_after_the_one_before_in_its_chat(
    app: CspApplication, bot: Harness, people: dict[str, MemberView]
) -> None:
    pacer = app.services.pacer
    assert isinstance(pacer, InstantPacer)
    police = PEOPLE["police"].user
    await bot.send(police, "/help")
    assert pacer.virtual_time == 0
    for _ in range(3):
        await bot.send(police, "/help")
    # Three messages to one chat go at once (at the overall pace); the fourth waits until
    # the first is 3.15 s old.
    assert pacer.virtual_time == pytest.approx(3.15)
    # Another chat waits only for the overall pace: half a gap of 1/28.5 s.
    await bot.send(PEOPLE["chair"].user, "/help")
    assert pacer.virtual_time == pytest.approx(3.1675, abs=1e-4)


async def test_a_reply_telegram_refuses_for_flood_control_goes_after_the_pause(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    app = build_test_application(
        settings, db, clock, emulator, request=FloodedRequest(emulator, refusals=1)
    )
    async with app:
        pacer = app.services.pacer
        assert isinstance(pacer, InstantPacer)
        replies = await Harness(app, emulator).send(PEOPLE["police"].user, "/help")
        # Telegram asked for 5 seconds: the reply went once, when they had passed, and
        # every other send waits for them too.
        assert len(replies) == 1 and replies[0].text.startswith("<b>")
        assert pacer.virtual_time == 5
        assert pacer.paused_until == 5


async def test_a_send_later_than_its_turn_moves_the_chats_next_turn_for_every_instance(
    instances: tuple[VirtualTime, SharedPacer, SharedPacer],
) -> None:
    time, reminder, reply = instances
    for _ in range(3):
        await sent_at(time, reply, 1004)  # the chat's burst
    time.now += 0.5  # the last one, a reminder, went half a second after its turn
    await reply.just_before_sending(1004)
    assert await sent_at(time, reminder, 1004) == 1.7  # its 1.2 s, from when it went


async def test_the_shared_pace_lets_go_of_its_connection_when_the_bot_stops(
    on_postgresql: None,
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
) -> None:
    services = services_for(settings, db=db, clock=clock)  # PostgreSQL: the shared pace
    application = build_application(
        services,
        token=emulator.token,
        request=EmulatorRequest(emulator),
        updates_request=EmulatorRequest(emulator),
    )
    async with BotRun(application, idle):
        await services.pacer.wait_turn(PEOPLE["police"].user.id)  # its first turn
        assert pace_threads() == 1
    assert pace_threads() == 0


def pace_threads() -> int:
    """The shared pace's own threads still running (each holds its connection)."""
    return sum(1 for thread in threading.enumerate() if thread.name.startswith("send-pace"))
