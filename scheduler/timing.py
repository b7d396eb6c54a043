"""When a reminder may be pushed: offsets before an event, quiet hours, weekends, bank holidays.

Everything here is a pure function of its arguments (the bank-holiday table is only cached).
Local time is the partnership's zone (Europe/London); a wall-clock time is turned into UTC
through the zone, so the days the clocks change come out right.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

# Bank holidays in England and Wales (the holidays library's England table; Wales has the same).
BANK_HOLIDAY_COUNTRY = "GB"
BANK_HOLIDAY_REGION = "ENG"
# How far the search for a working moment looks; Christmas with a weekend is under a week.
SEARCH_DAYS = 21
LATEST_MARGIN = timedelta(minutes=1)
SEND_TIME_CACHE = 100_000

_OFFSET = re.compile(r"(?P<amount>\d{1,4})\s*(?P<unit>[dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_QUIET = re.compile(r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})")


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


def wall_clock(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive wall-clock time in `zone`, as UTC. In the autumn's repeated hour the first
    (summer time) is meant; a time skipped in spring is read with the winter offset."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


@functools.lru_cache(maxsize=8192)
def local_moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`at` o'clock on `day` in `zone`, as UTC (cached: a pure function planning calls often)."""
    return wall_clock(datetime.combine(day, at), zone)


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


class WorkingCalendar:
    """Decides when a push is allowed: outside quiet hours, on weekdays that are not bank
    holidays in England and Wales, in the partnership's zone."""

    def __init__(self, quiet: QuietHours, zone: ZoneInfo) -> None:
        self.quiet = quiet
        self.zone = zone
        self._periods = quiet.open_periods()
        self._holidays_by_year: dict[int, frozenset[date]] = {}
        # Caches only: planning asks about the same days and times many times over.
        self._windows: dict[date, list[tuple[datetime, datetime]]] = {}
        self._send_times: dict[tuple[datetime, datetime], datetime] = {}

    def is_working_day(self, day: date) -> bool:
        if self.quiet.off:
            return True
        return day.weekday() < 5 and day not in self._bank_holidays(day.year)

    def _bank_holidays(self, year: int) -> frozenset[date]:
        known = self._holidays_by_year.get(year)
        if known is None:
            table = holidays.country_holidays(
                BANK_HOLIDAY_COUNTRY, subdiv=BANK_HOLIDAY_REGION, years=year
            )
            known = self._holidays_by_year[year] = frozenset(table)
        return known

    def open_windows(self, day: date) -> list[tuple[datetime, datetime]]:
        """The UTC windows on a local `day` when pushing is allowed (none on a day off)."""
        windows = self._windows.get(day)
        if windows is None:
            windows = self._windows[day] = self._working_windows(day)
        return windows

    def _working_windows(self, day: date) -> list[tuple[datetime, datetime]]:
        if not self.is_working_day(day):
            return []
        midnight = local_moment(day + timedelta(days=1), time(0), self.zone)
        return [
            (
                local_moment(day, start, self.zone),
                midnight if end is None else local_moment(day, end, self.zone),
            )
            for start, end in self._periods
        ]

    def is_open(self, moment: datetime) -> bool:
        day = moment.astimezone(self.zone).date()
        return any(start <= moment < end for start, end in self.open_windows(day))

    def next_open(self, moment: datetime) -> datetime:
        """The first allowed moment at or after `moment`: itself, or the next working morning."""
        day = moment.astimezone(self.zone).date()
        for offset in range(SEARCH_DAYS):
            for start, end in self.open_windows(day + timedelta(days=offset)):
                if moment < end:
                    return max(moment, start)
        return moment  # a calendar with no working time in weeks: do not hold forever

    def last_open_before(self, moment: datetime) -> datetime | None:
        """The latest allowed moment before `moment` (a minute before the window closes)."""
        day = moment.astimezone(self.zone).date()
        for offset in range(SEARCH_DAYS):
            for start, end in reversed(self.open_windows(day - timedelta(days=offset))):
                if start < moment:
                    return max(start, min(end, moment) - LATEST_MARGIN)
        return None

    def send_time(self, fire_at: datetime, event_at: datetime) -> datetime:
        """When a reminder due at `fire_at` about something at `event_at` goes.

        Held to the next working morning; if that is not before the event, it goes at the
        latest allowed moment before the event instead (even if that is before `fire_at`).
        """
        known = self._send_times.get((fire_at, event_at))
        if known is None:
            if len(self._send_times) > SEND_TIME_CACHE:
                self._send_times.clear()
            known = self._send_times[fire_at, event_at] = self._send_time(fire_at, event_at)
        return known

    def _send_time(self, fire_at: datetime, event_at: datetime) -> datetime:
        held = self.next_open(fire_at)
        if held < event_at:
            return held
        latest = self.last_open_before(event_at)
        return fire_at if latest is None else latest
