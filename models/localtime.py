"""Local time and relative dates: wall-clock times in the partnership's zone, "in 3 days".

Times are stored in UTC and meant in the partnership's zone (Europe/London). Everything that
turns one into the other, or says how far a day is from today, is here, so the models, the
scheduler, the templates and the handlers all say it the same way.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_OFFSET = re.compile(r"(?P<amount>\d{1,4})\s*(?P<unit>[dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_QUIET = re.compile(r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})")


def wall_clock(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive wall-clock time in `zone`, as UTC. In the autumn's repeated hour the first
    (summer time) is meant; a time skipped in spring is read with the winter offset."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


@functools.lru_cache(maxsize=8192)
def local_moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`at` o'clock on `day` in `zone`, as UTC (cached: a pure function planning calls often)."""
    return wall_clock(datetime.combine(day, at), zone)


def existing_local(moment: datetime, zone: ZoneInfo) -> datetime:
    """`moment` made aware: a naive one is a wall-clock time in `zone`, which must exist.

    Unlike `wall_clock`, a time someone typed in the spring-forward gap is refused
    (ValueError) rather than moved: zoneinfo would silently shift it by an hour.
    """
    if moment.tzinfo is not None:
        return moment
    local = moment.replace(tzinfo=zone)
    if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != moment:
        raise ValueError(
            f"{moment:%Y-%m-%d %H:%M} does not exist in {zone.key} (clocks go forward)"
        )
    return local


def local_day(value: date | datetime, zone: ZoneInfo) -> date:
    """The day `value` falls on in `zone` (a date is already one)."""
    return value.astimezone(zone).date() if isinstance(value, datetime) else value


def day_phrase(today: date, day: date) -> str:
    """`today`, `tomorrow`, `in 7 days`; `2 days ago` for a day gone."""
    days = (day - today).days
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days > 1:
        return f"in {days} days"
    return "yesterday" if days == -1 else f"{-days} days ago"


def moment_phrase(now: datetime, then: datetime, zone: ZoneInfo) -> str:
    """`in 45 minutes`, `in 2 hours`, `today at 14:00`, `tomorrow at 10:00`, `in 7 days`."""
    minutes = int((then - now).total_seconds() // 60)
    if minutes < 60:
        return f"in {max(minutes, 1)} minute{'s' if minutes != 1 else ''}"
    if minutes < 6 * 60:
        hours = round(minutes / 60)
        return f"in {hours} hour{'s' if hours != 1 else ''}"
    local = then.astimezone(zone)
    phrase = day_phrase(now.astimezone(zone).date(), local.date())
    return f"{phrase} at {local:%H:%M}" if phrase in ("today", "tomorrow") else phrase


@dataclass(frozen=True, order=True)
class Offset:
    """How long before an event a reminder goes: days keep the wall-clock time, hours do not.

    A reminder "7 days before" a 10:00 meeting goes at 10:00 a week earlier even when the
    clocks changed in between; "2 hours before" is two real hours.
    """

    minutes: int
    label: str = field(compare=False)

    @property
    def whole_days(self) -> int | None:
        """The number of days, for an offset written in days; None otherwise."""
        return self.minutes // 1440 if self.label.endswith("d") else None

    def before(self, event: datetime, zone: ZoneInfo) -> datetime:
        """The moment this offset before `event` (UTC in, UTC out)."""
        days = self.whole_days
        if days is None:
            return event - timedelta(minutes=self.minutes)
        local = event.astimezone(zone).replace(tzinfo=None) - timedelta(days=days)
        return wall_clock(local, zone)


def parse_offsets(text: str) -> tuple[Offset, ...]:
    """Offsets written like `7d,1d,2h` (days, hours, minutes), longest first."""
    offsets = []
    for part in text.split(","):
        match = _OFFSET.fullmatch(part.strip().lower())
        if match is None or int(match["amount"]) == 0:
            raise ValueError(f"{part.strip()!r} is not an offset; write e.g. 7d,1d,2h")
        amount, unit = int(match["amount"]), match["unit"]
        minutes = int(timedelta(**{_UNITS[unit]: amount}).total_seconds() // 60)
        offsets.append(Offset(minutes, f"{amount}{unit}"))
    if len({offset.minutes for offset in offsets}) != len(offsets):
        raise ValueError(f"{text!r} names the same offset twice")
    return tuple(sorted(offsets, reverse=True))


@dataclass(frozen=True)
class QuietHours:
    """The nightly quiet period, e.g. 20:00 to 08:00; `None` bounds mean quiet hours are off."""

    start: time | None
    end: time | None

    @property
    def off(self) -> bool:
        return self.start is None or self.end is None

    def open_periods(self) -> list[tuple[time, time | None]]:
        """The parts of a working day when pushing is allowed (None: until midnight)."""
        if self.start is None or self.end is None:
            return [(time(0), None)]
        if self.start > self.end:  # wraps midnight, the usual case
            return [(self.end, self.start)]
        periods: list[tuple[time, time | None]] = (
            [(time(0), self.start)] if self.start != time(0) else []
        )
        return [*periods, (self.end, None)]


def parse_quiet_hours(text: str) -> QuietHours:
    """`20:00-08:00`, or `off` (no quiet hours, no weekend or bank-holiday rule either)."""
    if text.strip().lower() == "off":
        return QuietHours(None, None)
    match = _QUIET.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a quiet period; write e.g. 20:00-08:00, or off")
    try:
        start, end = (
            time.fromisoformat(match["start"].zfill(5)),
            time.fromisoformat(match["end"].zfill(5)),
        )
    except ValueError:
        raise ValueError(f"{text!r} has a time that does not exist") from None
    if start == end:
        raise ValueError(f"{text!r} starts and ends at the same time; use off instead")
    return QuietHours(start, end)
