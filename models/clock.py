"""Time as a dependency: the bot asks a clock, and the tests move one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The real time, aware, in UTC."""
    return datetime.now(UTC)


class FakeClock:
    """A clock that stands still until moved; used by tests and benchmarks."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class ShiftedClock:
    """Real time, moved to start at `start`: the demo lives inside the sample plan's year."""

    def __init__(self, start: datetime) -> None:
        self.offset = start - system_clock()

    def __call__(self) -> datetime:
        return system_clock() + self.offset
