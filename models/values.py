"""Values as people write them: statuses, money, dates and times, financial years.

Parsing and formatting, in one place for the plan file, the chat and the command line, so
that `/update`'s status words and the plan's are the same words.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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


# --- measures: periods and figures -------------------------------------------------------------

MEASURE_UNITS = ("count", "%", "£", "days")
MEASURE_FREQUENCIES = ("monthly", "quarterly")
# The largest figure taken: well beyond any count, percentage, sum or number of days a
# partnership reports, and exact in a float.
FIGURE_LIMIT = 1_000_000_000_000
_MONTH = re.compile(r"(?P<year>\d{4})-(?P<month>\d{2})")
_QUARTER = re.compile(
    r"(?P<year>\d{4})(?:\s*/\s*(?P<end>\d{2}|\d{4}))?\s*-\s*Q(?P<quarter>[1-4])", re.IGNORECASE
)
_FIGURE = re.compile(
    r"(?P<pounds>£)?\s*(?P<number>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<decimals>\d+))?\s*(?P<percent>%)?"
)
_FIGURE_EXAMPLES = {
    "count": "a whole number, e.g. 412",
    "%": "a percentage, e.g. 12.5",
    "£": "an amount in pounds, e.g. £12,500",
    "days": "a number of days, e.g. 14",
}


@dataclass(frozen=True, order=True)
class Period:
    """A month or a quarter of the financial year; ordered by when it starts.

    `index` counts months (or quarters) from year 0, so the period before is `index - 1` and
    the same period a year before is `index - 12` (or `- 4`).
    """

    index: int
    quarterly: bool

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        return cls(year * 12 + month - 1, quarterly=False)

    @classmethod
    def quarter(cls, financial_year: int, quarter: int) -> Period:
        return cls(financial_year * 4 + quarter - 1, quarterly=True)

    @classmethod
    def containing(cls, day: date, *, quarterly: bool) -> Period:
        """The month, or quarter of the financial year, that `day` falls in."""
        if quarterly:
            financial_year = day.year if day.month >= 4 else day.year - 1
            return cls.quarter(financial_year, (day.month - 4) % 12 // 3 + 1)
        return cls.month(day.year, day.month)

    @property
    def frequency(self) -> str:
        return "quarterly" if self.quarterly else "monthly"

    @property
    def starts_on(self) -> date:
        if self.quarterly:
            year, quarter = divmod(self.index, 4)
            month = 4 + 3 * quarter  # Q1 is April to June
            return date(year + (month > 12), (month - 1) % 12 + 1, 1)
        year, month = divmod(self.index, 12)
        return date(year, month + 1, 1)

    @property
    def ends_on(self) -> date:
        return self.shifted(1).starts_on - timedelta(days=1)

    def shifted(self, periods: int) -> Period:
        return Period(self.index + periods, self.quarterly)

    @property
    def year_before(self) -> Period:
        return self.shifted(-4 if self.quarterly else -12)

    def __str__(self) -> str:
        if self.quarterly:
            year, quarter = divmod(self.index, 4)
            return f"{format_financial_year(year)}-Q{quarter + 1}"
        year, month = divmod(self.index, 12)
        return f"{year}-{month + 1:02d}"


@functools.lru_cache(maxsize=4096)
def parse_period(text: str) -> Period:
    """A month (`2021-07`) or a quarter of the financial year (`2021/22-Q2`, or `2021-Q2`:
    the year the financial year starts; Q2 is July to September)."""
    stripped = text.strip()
    month = _MONTH.fullmatch(stripped)
    if month is not None and 1 <= int(month["month"]) <= 12:
        check_year(int(month["year"]), shown=stripped)
        return Period.month(int(month["year"]), int(month["month"]))
    quarter = _QUARTER.fullmatch(stripped)
    if quarter is not None:
        start = int(quarter["year"])
        end = quarter["end"]
        if end is None or int(end) == (start + 1) % 10 ** len(end):
            check_year(start, shown=stripped)
            return Period.quarter(start, int(quarter["quarter"]))
    raise ValueError(
        f"not a period: {text!r} (a month such as 2021-07, or a quarter such as 2021/22-Q2)"
    )


def parse_figure(text: str, *, unit: str) -> float:
    """A figure in `unit`: a number, with thousands grouped by commas if at all; a count
    is whole; a percentage is at most 100; `£` and `%` may be written with it."""
    stripped = text.strip()
    match = _FIGURE.fullmatch(stripped)
    shown = _FIGURE_EXAMPLES[unit]
    wrong_sign = (match is not None) and (
        (match["pounds"] and unit != "£") or (match["percent"] and unit != "%")
    )
    if match is None or wrong_sign:
        raise ValueError(f"{stripped!r} is not {shown}")
    decimals = match["decimals"]
    if unit == "count" and decimals is not None:
        raise ValueError(f"{stripped!r} is not {shown}: a count has no decimals")
    if unit == "£" and decimals is not None and len(decimals) > 2:
        raise ValueError(f"{stripped!r} has more than two decimal places of a pound")
    value = float(match["number"].replace(",", "") + (f".{decimals}" if decimals else ""))
    if unit == "%" and value > 100:
        raise ValueError(f"{stripped!r} is over 100%")
    if value > FIGURE_LIMIT:
        raise ValueError(f"{stripped!r} is over the limit of {FIGURE_LIMIT:,}")
    return value


def format_figure(value: float, unit: str) -> str:
    """`412`, `12.5%`, `£12,500`, `14 days`."""
    if value == int(value):
        number = f"{value:,.0f}"
    elif unit == "£":
        number = f"{value:,.2f}"
    else:
        number = f"{value:,.2f}".rstrip("0").rstrip(".")
    if unit == "%":
        return f"{number}%"
    if unit == "£":
        return f"£{number}"
    if unit == "days":
        return f"{number} day" if value == 1 else f"{number} days"
    return number
