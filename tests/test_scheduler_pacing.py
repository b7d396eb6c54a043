"""The pacer keeps pushed messages within Telegram's limits (on a virtual clock: no sleeping)."""

from __future__ import annotations

from csp_bot.scheduler.pacing import DEFAULT_RATE, InstantPacer


async def test_evenly_spaced_a_little_under_thirty_a_second_overall() -> None:
    pacer = InstantPacer()
    for chat in range(1, 58):
        await pacer.wait_turn(chat)
    # 57 messages to different chats: 56 gaps of 1/28.5 s, so just under two seconds.
    assert abs(pacer.virtual_time - 56 / DEFAULT_RATE) < 1e-9
    assert 56 / pacer.virtual_time <= 30


async def test_one_a_second_to_one_chat() -> None:
    pacer = InstantPacer()
    for _ in range(3):
        await pacer.wait_turn(42)
    assert 2.0 < pacer.virtual_time < 2.2


async def test_twenty_a_minute_to_one_group() -> None:
    pacer = InstantPacer()
    for _ in range(21):
        await pacer.wait_turn(-100123)
    assert 60.0 < pacer.virtual_time < 60.1


async def test_a_pause_holds_every_chat() -> None:
    pacer = InstantPacer()
    await pacer.wait_turn(1)
    pacer.pause(5)
    await pacer.wait_turn(2)
    assert pacer.virtual_time == 5
