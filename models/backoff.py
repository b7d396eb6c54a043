"""Trying again after a failure: doubling waits up to a ceiling, a bounded number of tries.

Used by the Bot API transport (seconds within one call) and the reminder outbox (minutes
across dispatcher rounds), so both back off the same way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """How often and how patiently to try again, in seconds."""

    first: float
    ceiling: float
    tries: int | None  # None: until it works

    def wait(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failure (1 for the first)."""
        return float(min(self.ceiling, self.first * 2 ** (failures - 1)))

    def exhausted(self, failures: int) -> bool:
        """Whether `failures` failures use up every try."""
        return self.tries is not None and failures >= self.tries
