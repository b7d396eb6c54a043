"""Keeping pushed messages within Telegram's limits, so it never has to refuse them.

Telegram allows about 30 messages a second overall, 1 a second to one chat (with short
bursts) and 20 a minute to one group. One pace covers every message the bot sends, replies
and reminders alike (`bot.transport` takes a turn for each reply, `handlers.delivery` for
each reminder).

In one process (`Pacer`), overall, the pacer is a token bucket filled at a little under 30
a second that holds at most 1.5 tokens: evenly spaced, because a burst of 30 followed by a
pause is counted by Telegram on arrival, and the smallest delay on the way then makes 31 in
a second. However long the process was stalled (a busy machine, a long garbage collection),
it never sends more than the bucket holds to catch up, so no second ever carries more than
30. To one chat or group it keeps a sliding window of recent sends. When Telegram answers
`RetryAfter` anyway, all sending pauses.

On PostgreSQL, where several instances may send, the turns come from the database
(`SharedPacer` over `models.send_pace`): the same limits with wider margins, as one generic
cell rate algorithm per chat and one overall, shared by every instance.

The clock and the sleep are injected, so tests can pace without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from csp_bot.models.db import DatabaseFailure
from csp_bot.models.send_pace import SharedPace, Spacing

log = logging.getLogger(__name__)

OVERALL_PER_SECOND = 30
GROUP_PER_MINUTE = 20
# Telegram's FAQ allows a chat "short bursts" over its one a second: an answer in three
# parts, or a reply just after a reminder, goes at once; beyond that, one a second.
CHAT_BURST = 3
# 95% of the ceiling: even spacing then absorbs up to 50 ms of jitter on the way to Telegram.
DEFAULT_RATE = 28.5
# Windows for one chat are a little longer than Telegram's, for the same reason.
WINDOW_MARGIN = 0.05
FORGET_CHATS_AFTER = 10_000
TOKEN_ROUNDING = 1e-9
# The same limits for the pace instances share, with wider margins: between a turn and its
# arrival at Telegram lie a round trip to the database (a reminder's claim) and another
# process's scheduling on a busy machine: with a margin of 50 ms three instances got 6
# answers 429 from one chat's limit in 2,900 replies and 2,000 reminders, and at 27 a
# second overall sends held up together for a tenth of a second made a 31st in a second
# (see the README). In any span of t seconds a generic cell rate algorithm lets at most
# 1 + (t + slack) / gap sends through: overall 26 in a second (up to 160 ms late still
# keeps 30); to one private chat 3 at once, then 1 in 1.2 s; to one group 20 in 60.8 s, 5
# of them at once.
SHARED_RATE = 25.0
OVERALL_SPACING = Spacing(gap=1 / SHARED_RATE, slack=0.5 / SHARED_RATE)
CHAT_SPACING = Spacing(gap=1.2, slack=(CHAT_BURST - 1) * 1.2)
GROUP_SPACING = Spacing(gap=3.8, slack=4 * 3.8)
# A send this much later than its turn moves the chat's next turn by as much.
LATE_ENOUGH_TO_MOVE = 0.02


class Pace(Protocol):
    """What every send asks before it goes."""

    async def wait_turn(self, chat_id: int) -> None:
        """Return when a message to `chat_id` may be sent, and count it as sent."""

    async def just_before_sending(self, chat_id: int) -> None:
        """Called last before the request (after a reminder's claim), to keep the requests
        spaced as their turns were."""

    async def pause(self, seconds: float) -> None:
        """Telegram asked the bot to wait (RetryAfter): nothing goes until then."""

    async def close(self) -> None:
        """The bot has stopped: let go of what the pace holds (a connection, a thread)."""


class TokenBucket:
    """`rate` tokens a second, at most `capacity` held; a send takes one.

    What a stall leaves unused is lost beyond `capacity`: in any span of `t` seconds at most
    `capacity + rate * t` sends go, whatever happened before.
    """

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self._tokens = 1.0  # the first send goes at once, without a burst behind it
        self._at = now

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0 or less: it is)."""
        self._refill(now)
        # Within rounding of a whole token is a token: a wait of 1e-18 s would not move a
        # clock of some thousands of seconds, and would be waited for ever.
        missing = 1.0 - self._tokens
        return missing / self.rate if missing > TOKEN_ROUNDING else 0.0

    def take(self, now: float) -> None:
        self._refill(now)
        self._tokens -= 1.0

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now


class Pacer:
    """Tells each send when it may go."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rate: float = DEFAULT_RATE,
        per_chat: bool = True,
    ) -> None:
        self._monotonic = monotonic
        self._per_chat = per_chat  # False only where no Telegram counts (the demo)
        self._sleep = sleep
        self._second = 1.0 + WINDOW_MARGIN
        self._minute = 60.0 + WINDOW_MARGIN
        # Up to Telegram's 30 in any second: the tokens held are the margin below it.
        capacity = max(1.0, OVERALL_PER_SECOND - rate)
        self._turns = TokenBucket(rate, capacity, monotonic())
        self._sends = TokenBucket(rate, capacity, monotonic())
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

    async def just_before_sending(self, chat_id: int) -> None:
        """Keep the actual sends evenly spaced too: work between taking a turn and sending
        (claiming the reminder in the database) takes varying time, and would bunch them.
        The chat's window counts this send from now, not from its turn."""
        while (wait := self._sends.wait(self._monotonic())) > 0:
            await self._sleep(wait)
        now = self._monotonic()
        self._sends.take(now)
        sent = self._chats.get(chat_id)
        if sent:
            sent[-1] = max(sent[-1], now)

    @property
    def paused_until(self) -> float:
        """The pacer's time until which nothing is sent (after a RetryAfter)."""
        return self._paused_until

    async def pause(self, seconds: float) -> None:
        """Telegram asked the bot to wait (RetryAfter): nothing goes until then."""
        self._paused_until = max(self._paused_until, self._monotonic() + seconds)

    async def close(self) -> None:
        """Nothing to let go: the pace is kept in memory."""

    def _wait(self, chat_id: int, now: float) -> float:
        if chat_id < 0:
            window, limit = self._minute, GROUP_PER_MINUTE
        else:  # 3 in any 3.15 s: never more than a burst of 3 and one a second allow
            window, limit = CHAT_BURST * self._second, CHAT_BURST
        chat = self._chats.setdefault(chat_id, deque())
        return max(
            self._paused_until - now,
            self._turns.wait(now),
            _window_wait(chat, window, limit, now) if self._per_chat else 0.0,
        )

    def _record(self, chat_id: int, now: float) -> None:
        # A sleep that wakes a little late does not slow the rate (the bucket holds a little
        # more than one token), and a long stall does not make a burst (no more than that).
        self._turns.take(now)
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

    def __init__(self, *, per_chat: bool = True) -> None:
        self.virtual_time = 0.0
        super().__init__(
            monotonic=lambda: self.virtual_time, sleep=self._advance, per_chat=per_chat
        )

    async def _advance(self, seconds: float) -> None:
        self.virtual_time += seconds


class SharedPacer:
    """Turns from the pace that every instance on one PostgreSQL database shares.

    If the database does not answer, this instance falls back to pacing its own sends
    until it answers again: the replies that say the database is down still go.
    """

    def __init__(
        self,
        pace: SharedPace,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        at: Callable[[], float | None] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pace = pace
        self._sleep = sleep
        self._at = at  # the database's clock unless a test's
        self._monotonic = monotonic
        self._alone = Pacer(sleep=sleep)
        self._unreachable = False
        self._granted: dict[int, float] = {}  # chat: when its turn was given

    async def wait_turn(self, chat_id: int) -> None:
        spacing = GROUP_SPACING if chat_id < 0 else CHAT_SPACING
        while True:
            try:
                wait = await self._pace.take(
                    chat_id, chat=spacing, overall=OVERALL_SPACING, at=self._at()
                )
            except DatabaseFailure:
                self._went_unreachable()
                await self._alone.wait_turn(chat_id)
                return
            self._reached()
            await self._sleep(abs(wait))
            if wait >= 0:
                self._granted[chat_id] = self._monotonic()
                return

    async def just_before_sending(self, chat_id: int) -> None:
        """A send that goes later than its turn (a slow claim, a busy machine) moves the
        chat's next turn as much later, so the next message to the chat, from whichever
        instance, still comes a whole gap after this one."""
        now = self._monotonic()
        late = now - self._granted.pop(chat_id, now)
        if late <= LATE_ENOUGH_TO_MOVE:
            return
        try:
            await self._pace.postpone(chat_id, seconds=late)
        except DatabaseFailure:
            self._went_unreachable()

    async def pause(self, seconds: float) -> None:
        try:
            await self._pace.pause(seconds, at=self._at())
        except DatabaseFailure:
            self._went_unreachable()
            await self._alone.pause(seconds)

    async def close(self) -> None:
        """The pace's connection and its thread end."""
        await self._pace.close()

    def _went_unreachable(self) -> None:
        if not self._unreachable:
            self._unreachable = True
            log.warning("the shared pace of sends is unreachable; pacing this instance alone")

    def _reached(self) -> None:
        if self._unreachable:
            self._unreachable = False
            log.warning("the shared pace of sends answers again")
