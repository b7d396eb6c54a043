"""Values as people write them: statuses, money, dates and times, financial years.

Parsing and formatting, in one place for the plan file, the chat and the command line, so
that `/update`'s status words and the plan's are the same words.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from csp_bot.models.enums import Status
from csp_bot.models.localtime import existing_local

# Times in a plan file without an offset are the partnership's (British) local time.
PLAN_TIMEZONE = ZoneInfo("Europe/London")
# Every date and year the bot is given must fall in these years: far outside them, date
# arithmetic runs off the calendar (9999-12-31 plus a day) and planning cannot work.
FIRST_YEAR = 2000
LAST_YEAR = 2100

STATUS_WORDS = {
    "not started": Status.NOT_STARTED,
    "green": Status.GREEN,
    "on track": Status.GREEN,
    "amber": Status.AMBER,
    "at risk": Status.AMBER,
    "red": Status.RED,
    "off track": Status.RED,
    "complete": Status.COMPLETE,
    "completed": Status.COMPLETE,
    "done": Status.COMPLETE,
}
STATUS_HELP = (
    "not_started (not started), green (on track), amber (at risk), red (off track), complete (done)"
)
_MONEY = re.compile(r"£?\s*(?P<pounds>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<pence>\d{1,2}))?")
_FINANCIAL_YEAR = re.compile(r"(?P<start>\d{4})(?:\s*[/\-\u2013]\s*(?P<end>\d{4}|\d{2}))?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)


def parse_status(word: str) -> Status:
    """The status a word names, in any case: `red`, `off track`, `not_started`, `done`, ..."""
    key = " ".join(word.replace("_", " ").replace("-", " ").split()).lower()
    try:
        return STATUS_WORDS[key]
    except KeyError:
        raise ValueError(f"not a status: {word!r} (use {STATUS_HELP})") from None


def parse_money(text: str) -> int:
    """Pence in an amount of pounds written `£12,500`, `12500.50` or `12,500.5`."""
    match = _MONEY.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an amount of money: {text!r} (e.g. £12,500 or 12500.50)")
    pounds = int(match["pounds"].replace(",", ""))
    pence = int((match["pence"] or "0").ljust(2, "0"))
    return pounds * 100 + pence


def format_money(pence: int) -> str:
    """Pence as pounds the British way: 1250000 is `£12,500.00`."""
    pounds, rest = divmod(abs(pence), 100)
    sign = "-" if pence < 0 else ""
    return f"{sign}£{pounds:,}.{rest:02d}"


class OutOfRange(ValueError):
    """A date or year outside `FIRST_YEAR` to `LAST_YEAR`."""

    def __init__(self, message: str, *, year: int) -> None:
        super().__init__(message)
        self.year = year


def check_year(year: int, *, shown: object) -> int:
    """`year` if it is from 2000 to 2100; otherwise OutOfRange, naming `shown`."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise OutOfRange(f"{shown} is outside the years {FIRST_YEAR} to {LAST_YEAR}", year=year)
    return year


def parse_financial_year(text: str) -> int:
    """The start year of a financial year written `2021/22`, `2021-22`, `2021/2022` or `2021`."""
    match = _FINANCIAL_YEAR.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a financial year: {text!r} (e.g. 2021/22)")
    start, end = int(match["start"]), match["end"]
    if end is not None and int(end) != (start + 1) % 10 ** len(end):
        raise ValueError(
            f"not a financial year: {text!r} (the second year must follow the first, "
            f"e.g. {format_financial_year(start)})"
        )
    return check_year(start, shown=text.strip())


def format_financial_year(start: int) -> str:
    """The financial year starting 1 April of `start`: 2021 is `2021/22`."""
    return f"{start}/{(start + 1) % 100:02d}"


def parse_date(text: str) -> date:
    """A date written YYYY-MM-DD."""
    stripped = text.strip()
    if _DATE.fullmatch(stripped):
        try:
            day = date.fromisoformat(stripped)
        except ValueError:
            pass
        else:
            check_year(day.year, shown=stripped)
            return day
    raise ValueError(f"not a date: {text!r} (expected YYYY-MM-DD)")


def parse_datetime(text: str, *, zone: ZoneInfo = PLAN_TIMEZONE) -> datetime:
    """An ISO date and time, in UTC; without an offset it is read as a time in `zone`."""
    stripped = text.strip()
    if _DATETIME.fullmatch(stripped):
        try:
            moment = datetime.fromisoformat(stripped)
        except ValueError:
            pass
        else:
            check_year(moment.year, shown=stripped)  # before converting, which may overflow
            return existing_local(moment, zone).astimezone(UTC)
    raise ValueError(f"not a date and time: {text!r} (expected e.g. 2021-04-22T14:00)")
