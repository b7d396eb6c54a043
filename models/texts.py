"""Reading the dates and times people type for meetings, deadlines and funding.

People in the UK write dates day first, so `10/12/2026` is 10 December; ISO dates work too.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from csp_bot.models.errors import DomainError
from csp_bot.models.values import OutOfRange, check_year, parse_date, parse_datetime

DATE_FORMATS = ("%d/%m/%Y", "%d %b %Y", "%d %B %Y", "%a %d %b %Y")
TIME_FORMATS = ("%H:%M", "%H.%M", "%I:%M%p", "%I%p")
WHEN_EXAMPLE = "e.g. 10/12/2026 14:00 or 2026-12-10 14:00"
DAY_EXAMPLE = "e.g. 31/01/2027 or 2027-01-31"


def parse_day(text: str) -> date:
    """A date typed as 31/01/2027, 31 Jan 2027 or 2027-01-31, in the years 2000 to 2100."""
    try:
        day = _read_day(" ".join(text.split()))
    except OutOfRange as problem:
        raise out_of_range(problem) from None
    if day is None:
        raise DomainError(f"I can't read “{text.strip()}” as a date ({DAY_EXAMPLE}).")
    return day


def out_of_range(problem: OutOfRange) -> DomainError:
    """What people are told about a date far in the past or the future."""
    return DomainError(f"{problem}: please check the date.")


def _read_day(stripped: str) -> date | None:
    """The date, None if unreadable; OutOfRange if outside the years 2000 to 2100."""
    try:
        return parse_date(stripped)
    except OutOfRange:
        raise
    except ValueError:
        pass
    for pattern in DATE_FORMATS:
        try:
            day = datetime.strptime(stripped, pattern).date()
        except ValueError:
            continue
        check_year(day.year, shown=stripped)
        return day
    return None


def parse_when(text: str, *, zone: ZoneInfo) -> datetime:
    """A date and time typed in local time (or ISO with an offset), as UTC."""
    try:
        return _read_when(text, zone=zone)
    except OutOfRange as problem:
        raise out_of_range(problem) from None


def _read_when(text: str, *, zone: ZoneInfo) -> datetime:
    stripped = " ".join(text.split())
    try:
        return parse_datetime(stripped, zone=zone)
    except OutOfRange:
        raise
    except ValueError as problem:
        if "does not exist" in str(problem):
            raise _no_such_time(stripped, zone) from None
    day_part, _, time_part = stripped.rpartition(" ")
    moment = _combine(day_part, time_part.upper())
    if moment is None:
        raise _unreadable_when(stripped)
    try:
        return parse_datetime(moment.isoformat(timespec="minutes"), zone=zone)
    except ValueError:
        raise _no_such_time(stripped, zone) from None


def _unreadable_when(stripped: str) -> DomainError:
    """Why a date and time could not be read: a date alone lacks only the time."""
    if stripped and _read_day(stripped) is not None:
        return DomainError(f"“{stripped}” has no time: type the time too, e.g. {stripped} 14:00.")
    return DomainError(f"I can't read “{stripped}” as a date and time ({WHEN_EXAMPLE}).")


def _no_such_time(stripped: str, zone: ZoneInfo) -> DomainError:
    """The spring-forward hour, echoed as the person typed it."""
    return DomainError(
        f"“{stripped}” does not exist in {zone.key} (clocks go forward): pick another time."
    )


def _combine(day_text: str, time_text: str) -> datetime | None:
    day = _read_day(day_text)
    if day is None:
        return None
    for pattern in TIME_FORMATS:
        try:
            return datetime.combine(day, datetime.strptime(time_text, pattern).time())
        except ValueError:
            continue
    return None
