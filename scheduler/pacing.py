"""Keeping pushed messages within Telegram's limits, so it never has to refuse them.

Telegram allows about 30 messages a second overall, 1 a second to one chat and 20 a minute
to one group. The pacer keeps a sliding window of recent sends for each limit and makes a
sender wait for its turn; when Telegram answers `RetryAfter` anyway, all sending pauses.
The clock and the sleep are injected, so tests can pace without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

OVERALL_PER_SECOND = 30
GROUP_PER_MINUTE = 20
# Windows are a little longer than Telegram's, so that timing jitter between this process and
# Telegram's servers never adds up to one message too many.
DEFAULT_MARGIN = 0.03


class Pacer:
    """Tells each send when it may go."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        margin: float = DEFAULT_MARGIN,
        overall: int = OVERALL_PER_SECOND,
    ) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        self._second = 1.0 + margin
        self._minute = 60.0 + margin
        self._overall_limit = overall
        self._overall: deque[float] = deque()
        self._chats: dict[int, deque[float]] = {}
        self._paused_until = 0.0
        self.waited = 0.0  # seconds spent waiting, for reports

    async def wait_turn(self, chat_id: int) -> None:
        """Return when a message to `chat_id` may be sent, and count it as sent."""
        while True:
            now = self._monotonic()
            wait = self._wait(chat_id, now)
            if wait <= 0:
                self._record(chat_id, now)
                return
            self.waited += wait
            await self._sleep(wait)

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
            _window_wait(self._overall, self._second, self._overall_limit, now),
            _window_wait(chat, window, limit, now),
        )

    def _record(self, chat_id: int, now: float) -> None:
        self._overall.append(now)
        self._chats[chat_id].append(now)
        if len(self._chats) > 10_000:  # forget chats whose windows have long passed
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
    """A pacer on a virtual clock that moves instead of sleeping: for tests and the demo."""

    def __init__(self) -> None:
        self.virtual_time = 0.0
        super().__init__(monotonic=lambda: self.virtual_time, sleep=self._advance)

    async def _advance(self, seconds: float) -> None:
        self.virtual_time += seconds
