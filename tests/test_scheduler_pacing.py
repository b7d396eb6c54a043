"""The pacer keeps pushed messages within Telegram's limits (on a virtual clock: no sleeping)."""

from __future__ import annotations

import pytest

from csp_bot.scheduler.pacing import DEFAULT_RATE, InstantPacer


async def test_evenly_spaced_a_little_under_thirty_a_second_overall() -> None:
    pacer = InstantPacer()
    for chat in range(1, 58):
        await pacer.wait_turn(chat)
    # 57 messages to different chats: 56 gaps of 1/28.5 s, so just under two seconds.
    assert abs(pacer.virtual_time - 56 / DEFAULT_RATE) < 1e-9
    assert 56 / pacer.virtual_time <= 30


async def test_three_at_once_then_three_a_window_to_one_chat() -> None:
    """A short burst of 3 (Telegram allows short bursts over one a second), then no more
    than 3 in any 3.15 s: the overall pace spaces the burst, the window the rest."""
    pacer = InstantPacer()
    sent_at = []
    for _ in range(6):
        await pacer.wait_turn(42)
        sent_at.append(round(pacer.virtual_time, 4))
    assert sent_at == [0, 0.0351, 0.0702, 3.15, 3.1851, 3.2202]


async def test_without_per_chat_limits_one_chat_goes_at_the_overall_rate() -> None:
    """The demo's pacer: its emulator counts no limits, so one chat is not held to a second."""
    pacer = InstantPacer(per_chat=False)
    for _ in range(3):
        await pacer.wait_turn(42)
    # Two gaps of 1/28.5 s.
    assert abs(pacer.virtual_time - 2 / DEFAULT_RATE) < 1e-9


async def test_twenty_a_minute_to_one_group() -> None:
    pacer = InstantPacer()
    for _ in range(21):
        await pacer.wait_turn(-100123)
    assert 60.0 < pacer.virtual_time < 60.1


async def test_a_pause_holds_every_chat() -> None:
    pacer = InstantPacer()
    await pacer.wait_turn(1)
    await pacer.pause(5)
    await pacer.wait_turn(2)
    assert pacer.virtual_time == 5


async def test_after_a_stall_the_pacer_does_not_burst_to_catch_up() -> None:
    pacer = InstantPacer()
    for chat in range(1, 11):
        await pacer.wait_turn(chat)
        await pacer.just_before_sending(chat)
    pacer.virtual_time += 10.0  # the process was stalled (a busy machine) for ten seconds
    stalled_until = pacer.virtual_time
    sent_at = []
    for chat in range(11, 71):
        await pacer.wait_turn(chat)
        await pacer.just_before_sending(chat)
        sent_at.append(pacer.virtual_time)
    # What the stall left unused is not sent now: at most one and a half tokens are held,
    # so no second after it carries more than Telegram's 30, and the pace is the usual one.
    for start in sent_at:
        assert sum(start <= at < start + 1.0 for at in sent_at) <= 30
    assert sum(at < stalled_until + 1.0 for at in sent_at) <= 30
    assert sent_at[-1] - sent_at[0] >= (len(sent_at) - 2.5) / DEFAULT_RATE


async def test_a_send_later_than_its_turn_moves_the_chats_next_turn() -> None:
    """A reminder's claim took half a second after its turn: the chat's window counts that
    message from when it went, so the fourth waits 3.15 s from then, not from its turn."""
    pacer = InstantPacer()
    await pacer.wait_turn(42)
    pacer.virtual_time += 0.5
    for _ in range(3):
        await pacer.just_before_sending(42)
        await pacer.wait_turn(42)
    assert pacer.virtual_time == pytest.approx(3.65)
