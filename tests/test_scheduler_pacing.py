"""The pacer keeps pushed messages within Telegram's limits (on a virtual clock: no sleeping)."""

from __future__ import annotations

from scheduler.pacing import InstantPacer


async def test_thirty_a_second_overall() -> None:
    pacer = InstantPacer()
    for chat in range(1, 61):
        await pacer.wait_turn(chat)
    # 60 messages to different chats need two full windows (each a little over a second).
    assert 1.0 < pacer.virtual_time < 1.1


async def test_one_a_second_to_one_chat() -> None:
    pacer = InstantPacer()
    for _ in range(3):
        await pacer.wait_turn(42)
    assert 2.0 < pacer.virtual_time < 2.1


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
