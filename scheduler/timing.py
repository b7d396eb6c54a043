"""When a reminder may be pushed: outside quiet hours, not at weekends or on bank holidays.

Everything here is a pure function of its arguments (the bank-holiday table is only cached).
Local time is the partnership's zone (Europe/London), through `models.localtime`, so the days
the clocks change come out right.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from csp_bot.models.localtime import QuietHours, local_moment

# Bank holidays in England and Wales (the holidays library's England table; Wales has the same).
BANK_HOLIDAY_COUNTRY = "GB"
BANK_HOLIDAY_REGION = "ENG"
# How far the search for a working moment looks; Christmas with a weekend is under a week.
SEARCH_DAYS = 21
LATEST_MARGIN = timedelta(minutes=1)
SEND_TIME_CACHE = 100_000


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
