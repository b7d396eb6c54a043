"""Keeping pushed messages within Telegram's limits, so it never has to refuse them.

Telegram allows about 30 messages a second overall, 1 a second to one chat and 20 a minute
to one group. Overall, the pacer spaces messages evenly at a little under 30 a second:
evenly, because a burst of 30 followed by a pause is counted by Telegram on arrival, and the
smallest delay on the way then makes 31 in a second. To one chat or group it keeps a sliding
window of recent sends. When Telegram answers `RetryAfter` anyway, all sending pauses.
The clock and the sleep are injected, so tests can pace without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

OVERALL_PER_SECOND = 30
GROUP_PER_MINUTE = 20
# 95% of the ceiling: even spacing then absorbs up to 50 ms of jitter on the way to Telegram.
DEFAULT_RATE = 28.5
# Windows for one chat are a little longer than Telegram's, for the same reason.
WINDOW_MARGIN = 0.05
FORGET_CHATS_AFTER = 10_000


class Pacer:
    """Tells each send when it may go."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rate: float = DEFAULT_RATE,
    ) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        self._spacing = 1.0 / rate
        self._second = 1.0 + WINDOW_MARGIN
        self._minute = 60.0 + WINDOW_MARGIN
        self._next_slot = 0.0
        self._next_send = 0.0
        self._chats: dict[int, deque[float]] = {}
        self._paused_until = 0.0

    async def wait_turn(self, chat_id: int) -> None:
        """Return when a message to `chat_id` may be sent, and count it as sent."""
        while True:
            now = self._monotonic()
            wait = self._wait(chat_id, now)
            if wait <= 0:
                self._record(chat_id, now)
                return
            await self._sleep(wait)

    async def just_before_sending(self) -> None:
        """Keep the actual sends evenly spaced too: work between taking a turn and sending
        (claiming the reminder in the database) takes varying time, and would bunch them."""
        now = self._monotonic()
        if self._next_send > now:
            await self._sleep(self._next_send - now)
            now = self._monotonic()
        self._next_send = max(self._next_send, now - self._spacing) + self._spacing

    @property
    def paused_until(self) -> float:
        """The pacer's time until which nothing is sent (after a RetryAfter)."""
        return self._paused_until

    def pause(self, seconds: float) -> None:
        """Telegram asked the bot to wait (RetryAfter): nothing goes until then."""
        self._paused_until = max(self._paused_until, self._monotonic() + seconds)

    def _wait(self, chat_id: int, now: float) -> float:
        window, limit = (self._minute, GROUP_PER_MINUTE) if chat_id < 0 else (self._second, 1)
        chat = self._chats.setdefault(chat_id, deque())
        return max(
            self._paused_until - now,
            self._next_slot - now,
            _window_wait(chat, window, limit, now),
        )

    def _record(self, chat_id: int, now: float) -> None:
        # From the slot, not from now: a sleep that wakes a little late must not slow the
        # rate; after a quiet spell the next slot starts from now.
        self._next_slot = max(self._next_slot, now - self._spacing) + self._spacing
        self._chats[chat_id].append(now)
        if len(self._chats) > FORGET_CHATS_AFTER:  # drop chats whose windows have passed
            self._chats = {
                chat: sent
                for chat, sent in self._chats.items()
                if sent and sent[-1] > now - self._minute
            }


def _window_wait(sent: deque[float], window: float, limit: int, now: float) -> float:
    """Seconds until one more send fits in a sliding window of `limit` per `window`."""
    while sent and sent[0] <= now - window:
        sent.popleft()
    if len(sent) < limit:
        return 0.0
    return sent[0] + window - now


class InstantPacer(Pacer):
    """A pacer on a virtual clock that moves instead of sleeping: for tests."""

    def __init__(self) -> None:
        self.virtual_time = 0.0
        super().__init__(monotonic=lambda: self.virtual_time, sleep=self._advance)

    async def _advance(self, seconds: float) -> None:
        self.virtual_time += seconds
