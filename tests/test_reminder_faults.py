"""Reminders under Telegram's faults: claimed only at the moment of sending, what Telegram
did not take is tried again with backoff, and given up only after several tries, when the
coordinator's digest says so."""

from __future__ import annotations

import pytest

from csp_bot.bot.emulator import BotApiEmulator, EmulatorRequest, Fault
from csp_bot.bot.settings import Settings
from csp_bot.handlers.context import CspApplication
from csp_bot.handlers.delivery import dispatch_due
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from csp_bot.models.reminder_types import OutboxState, ReminderKind
from csp_bot.scheduler.pacing import InstantPacer
from tests.reminder_helpers import chat, schedule, set_clock, states, tick
from tests.test_reminders import meeting_reminders, only_the_chair_is_invited, started


def chair_7d(people: dict[str, MemberView]) -> str:
    return f"{people['chair'].id}:7d"


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="status", status=500, methods={"sendmessage"}, times=2),
        Fault(kind="status", status=502, methods={"sendmessage"}, times=2),
        Fault(kind="status", status=404, methods={"sendmessage"}, times=2),
        Fault(kind="reset", methods={"sendmessage"}, times=2),
    ],
    ids=["500", "502", "404", "reset"],
)
async def test_a_reminder_telegram_did_not_take_goes_again_and_arrives_once(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    fault: Fault,
) -> None:
    only_the_chair_is_invited(db, people)
    schedule(db, clock, "2021-06-24T10:00")
    emulator.faults.add(fault)
    set_clock(clock, "2021-06-17T10:00")
    assert (await tick(app)).retried == 1
    assert states(db, ReminderKind.MEETING)[chair_7d(people)] == OutboxState.PENDING
    clock.advance(seconds=5)  # the first wait is 10 seconds
    assert (await tick(app)).outcomes == {}
    clock.advance(seconds=10)
    assert (await tick(app)).retried == 1  # refused again; the wait doubles
    clock.advance(seconds=20)
    assert (await tick(app)).outcomes == {OutboxState.SENT: 1}
    assert meeting_reminders(emulator) == ["Board meeting in 7 days"]
    assert states(db, ReminderKind.MEETING)[chair_7d(people)] == OutboxState.SENT


async def test_a_reminder_refused_every_time_fails_and_the_digest_lists_it(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    only_the_chair_is_invited(db, people)
    schedule(db, clock, "2021-06-24T10:00")
    chair = people["chair"].telegram_id
    refusal = emulator.faults.add(
        Fault(kind="status", status=502, methods={"sendmessage"}, chat_id=chair)
    )
    set_clock(clock, "2021-06-17T10:00")
    outcomes = []
    for _ in range(8):
        report = await tick(app)
        outcomes.append((report.retried, report.outcomes))
        clock.advance(minutes=11)  # past the longest wait (10 minutes)
    assert outcomes == [(1, {})] * 7 + [(0, {OutboxState.FAILED: 1})]
    assert states(db, ReminderKind.MEETING)[chair_7d(people)] == OutboxState.FAILED
    emulator.faults.remove(refusal)
    set_clock(clock, "2021-06-21T09:00")  # Monday: the coordinator's digest
    await tick(app)
    digest = chat(emulator, "coordinator")[-1].text
    assert "Weekly digest" in digest
    assert (
        "<b>Reminders that could not be delivered</b> (Telegram refused every try)\n"
        "• meeting to Sarah, Thu 17 Jun" in digest
    )


class Killed(Exception):
    """The bot process dies here."""


async def test_a_crash_while_waiting_for_a_slot_leaves_the_reminder_pending(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    only_the_chair_is_invited(db, people)
    schedule(db, clock, "2021-06-24T10:00")
    set_clock(clock, "2021-06-17T10:00")

    class DyingPacer(InstantPacer):
        async def wait_turn(self, chat_id: int) -> None:
            raise Killed("killed while waiting for the pacer")

    with pytest.raises(Killed):
        await dispatch_due(app, pacer=DyingPacer())
    # Nothing was claimed: the reminder still goes, once.
    assert states(db, ReminderKind.MEETING)[chair_7d(people)] == OutboxState.PENDING
    await tick(app)
    assert meeting_reminders(emulator) == ["Board meeting in 7 days"]


async def test_a_dropped_answer_is_in_doubt_and_not_resent(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    only_the_chair_is_invited(db, people)
    schedule(db, clock, "2021-06-24T10:00")
    emulator.faults.add(Fault(kind="drop", methods={"sendmessage"}, times=1, delay=2.0))
    # The bot gives up waiting for the answer after 0.1 s: the request had left.
    app = await started(settings, db, clock, EmulatorRequest(emulator, read_timeout=0.1))
    set_clock(clock, "2021-06-17T10:00")
    await tick(app)
    clock.advance(minutes=30)
    await tick(app)
    # Telegram had it (the emulator stored it) but no answer came: it is not sent again.
    assert meeting_reminders(emulator) == ["Board meeting in 7 days"]
    assert states(db, ReminderKind.MEETING)[chair_7d(people)] == OutboxState.UNCONFIRMED
    await app.shutdown()
