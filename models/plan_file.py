"""The plan file's schema: its sections and fields, each turning YAML values into domain values.

The format is described in docs/plan-format.md; `models.plan_checks` reads and checks a file
against this, and `models.plan_import` writes it to the database.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from csp_bot.models.enums import FundingStatus, OrgKind, Recurrence, Status
from csp_bot.models.limits import (
    AGENDA_ITEM,
    AGENDA_ITEMS,
    AMOUNT_PENCE,
    NAME,
    NOTE,
    PLACE,
    TITLE,
    character_code,
    first_control_character,
)
from csp_bot.models.localtime import existing_local
from csp_bot.models.values import (
    FIGURE_LIMIT,
    MEASURE_FREQUENCIES,
    MEASURE_UNITS,
    PLAN_TIMEZONE,
    check_year,
    parse_date,
    parse_datetime,
    parse_financial_year,
    parse_money,
    parse_period,
    parse_status,
)

RESPONSIBLE_PARTNERS = "responsible"
EVERY_ORGANISATION = "all"
_CODE = re.compile(r"[A-Z0-9]{2,8}")
_REF = re.compile(r"(?P<code>[A-Z0-9]{2,8})-[1-9][0-9]{0,3}")
MEASURE_CODE = re.compile(r"(?P<code>[A-Z0-9]{2,8})-M[1-9][0-9]{0,3}")

E = TypeVar("E", bound=StrEnum)


# Field types: each turns YAML values into domain values or says what is wrong -------------


def show_value(value: object) -> str:
    if value is None:
        return "nothing"
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _require_text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {show_value(value)}{quote_hint(value)}")
    return value


def _none_as_empty(value: object) -> object:
    return "" if value is None else value


def _one_as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _code(value: object) -> str:
    code = _require_text(value).strip().upper()
    if not _CODE.fullmatch(code):
        raise ValueError(f"not a code: {value!r} (2 to 8 capital letters or digits, e.g. SOC)")
    return code


def _ref(value: object) -> str:
    ref = _require_text(value).strip().upper()
    if not _REF.fullmatch(ref):
        raise ValueError(f"not an action ref: {value!r} (priority code, hyphen, number: SOC-1)")
    return ref


def _word_of(enum: type[E]) -> Callable[[object], E]:
    def parse(value: object) -> E:
        if isinstance(value, str) and value.strip().lower() in set(enum):
            return enum(value.strip().lower())
        raise ValueError(f"expected one of {', '.join(enum)}, got {show_value(value)}")

    return parse


def _status(value: object) -> Status:
    return parse_status(_require_text(value))


def _date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        check_year(value.year, shown=value.isoformat())
        return value
    if isinstance(value, str):
        return parse_date(value)
    raise ValueError(f"not a date: {show_value(value)} (expected YYYY-MM-DD)")


def _datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        check_year(value.year, shown=f"{value:%Y-%m-%d %H:%M}")
        return existing_local(value, PLAN_TIMEZONE).astimezone(UTC)
    if isinstance(value, str):
        return parse_datetime(value)
    raise ValueError(f"not a date and time: {show_value(value)} (expected e.g. 2021-04-22T14:00)")


def _number_as_text(value: object) -> object:
    # YAML reads `2021` and `12500` as numbers; bool is an int too, and is never meant here.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _money(value: object) -> int:
    pence = parse_money(_require_text(_number_as_text(value)))
    if pence > AMOUNT_PENCE:
        raise ValueError(f"{show_value(value)} is over the limit of £{AMOUNT_PENCE // 100:,}")
    return pence


def _financial_year(value: object) -> int:
    return parse_financial_year(_require_text(_number_as_text(value)))


def quote_hint(value: object) -> str:
    if value is None:
        return " (if the text starts with #, put it in quotes: # starts a comment)"
    if isinstance(value, bool):
        return " (YAML reads yes/no/on/off as true/false: put the text in quotes)"
    if isinstance(value, int | float):
        return " (put it in quotes)"
    return ""


def _plain(value: str) -> str:
    # The file was checked for control characters, but a quoted YAML string can still
    # write one as an escape ("\x07", "\u0000").
    index = first_control_character(value)
    if index is not None:
        raise ValueError(
            f"a control character ({character_code(value[index])}): plans are plain text"
        )
    return value


def _required(limit: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=limit)


def _optional(limit: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, max_length=limit)


Text = Annotated[str, _required(TITLE), AfterValidator(_plain)]
Name = Annotated[str, _required(NAME), AfterValidator(_plain)]
OptionalText = Annotated[
    str, BeforeValidator(_none_as_empty), _optional(NOTE), AfterValidator(_plain)
]
Place = Annotated[str, BeforeValidator(_none_as_empty), _optional(PLACE), AfterValidator(_plain)]
AgendaItem = Annotated[str, _required(AGENDA_ITEM), AfterValidator(_plain)]
Code = Annotated[str, BeforeValidator(_code)]
Ref = Annotated[str, BeforeValidator(_ref)]
PlanDate = Annotated[date, BeforeValidator(_date)]
PlanDateTime = Annotated[datetime, BeforeValidator(_datetime)]
Pence = Annotated[int, BeforeValidator(_money)]
FinancialYear = Annotated[int, BeforeValidator(_financial_year)]
StatusWord = Annotated[Status, BeforeValidator(_status)]
OrgKindWord = Annotated[OrgKind, BeforeValidator(_word_of(OrgKind))]
FundingStatusWord = Annotated[FundingStatus, BeforeValidator(_word_of(FundingStatus))]
RecurrenceWord = Annotated[Recurrence, BeforeValidator(_word_of(Recurrence))]
TextList = Annotated[list[Text], BeforeValidator(_one_as_list)]
Agenda = Annotated[list[AgendaItem], BeforeValidator(_one_as_list), Field(max_length=AGENDA_ITEMS)]


# Owners and the statutory calendar --------------------------------------------------------

# An action's owners are posts; a handful is plenty, and each is a title.
MAX_OWNERS = 10
OwnerTitles = Annotated[list[Text], BeforeValidator(_one_as_list), Field(max_length=MAX_OWNERS)]


class Nation(StrEnum):
    """Whose regulations the statutory calendar follows."""

    ENGLAND = "england"
    WALES = "wales"


NationWord = Annotated[Nation, BeforeValidator(_word_of(Nation))]


# The file ----------------------------------------------------------------------------------


class _Entry(BaseModel):
    # Strict and closed: a number where text belongs, or a misspelt key, is an error.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PlanDetails(_Entry):
    """The `plan:` section: what the plan is called and the period it covers."""

    title: Text
    area: Text
    board: Text
    starts_on: PlanDate
    ends_on: PlanDate


class OrganisationEntry(_Entry):
    """A partner organisation; other sections name it by `name` or `short_name`."""

    name: Name
    short_name: Name | None = None
    kind: OrgKindWord

    def names(self) -> list[str]:
        """The names it may be referred to by, case-folded."""
        return [name.casefold() for name in (self.name, self.short_name) if name is not None]


class ActionEntry(_Entry):
    """One action under a priority."""

    ref: Ref
    title: Text
    description: OptionalText = ""
    lead: Text | None = None
    owner: Text | None = None
    # Several owners, by post (the coordinator links members to the action in the bot).
    owners: OwnerTitles = Field(default_factory=list)
    due: PlanDate | None = None
    status: StatusWord | None = None

    def owner_titles(self) -> list[str]:
        """`owner` and `owners` together, each post once (ignoring case)."""
        titles: dict[str, str] = {}
        for title in ([self.owner] if self.owner else []) + list(self.owners):
            titles.setdefault(title.casefold(), title)
        return list(titles.values())


# Measures: a priority's performance framework ------------------------------------------


def _measure_code(value: object) -> str:
    code = _require_text(value).strip().upper()
    if not MEASURE_CODE.fullmatch(code):
        raise ValueError(f"not a measure code: {value!r} (priority code, -M and a number: ASB-M1)")
    return code


_UNIT_WORDS = {"percent": "%", "pounds": "£", "number": "count"}


def _unit(value: object) -> str:
    word = _require_text(value).strip().lower()
    word = _UNIT_WORDS.get(word, word)
    if word not in MEASURE_UNITS:
        raise ValueError(f"expected one of {', '.join(MEASURE_UNITS)}, got {show_value(value)}")
    return word


def _frequency(value: object) -> str:
    word = _require_text(value).strip().lower()
    if word not in MEASURE_FREQUENCIES:
        raise ValueError(
            f"expected one of {', '.join(MEASURE_FREQUENCIES)}, got {show_value(value)}"
        )
    return word


def _better(value: object) -> str:
    word = _require_text(value).strip().lower()
    if word not in ("lower", "higher"):
        raise ValueError(f"expected lower or higher, got {show_value(value)}")
    return word


def _period(value: object) -> str:
    return str(parse_period(_require_text(_number_as_text(value))))


def _figure_value(value: object) -> float:
    """A number as YAML reads it; whether it suits the measure's unit is checked later."""
    if isinstance(value, str):
        value = value.strip().removeprefix("£").removesuffix("%").replace(",", "").strip()
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"not a number: {show_value(value)}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a number: {show_value(value)}")
    if not 0 <= value <= FIGURE_LIMIT or value != value:  # value != value: NaN
        raise ValueError(f"{show_value(value)} is not a number from 0 to {FIGURE_LIMIT:,}")
    return float(value)


MeasureCode = Annotated[str, BeforeValidator(_measure_code)]
Unit = Annotated[str, BeforeValidator(_unit)]
Frequency = Annotated[str, BeforeValidator(_frequency)]
Better = Annotated[str, BeforeValidator(_better)]
PeriodText = Annotated[str, BeforeValidator(_period)]
FigureValue = Annotated[float, BeforeValidator(_figure_value)]


class FigureEntry(_Entry):
    """A value for a period: a measure's baseline or one of its targets."""

    period: PeriodText
    value: FigureValue


class MeasureEntry(_Entry):
    """A performance measure under a priority, with its baseline and targets."""

    code: MeasureCode
    title: Text
    description: OptionalText = ""
    unit: Unit
    frequency: Frequency
    supplier: Text
    contact: Text | None = None
    better: Better
    tolerance: FigureValue = 0.0
    baseline: FigureEntry | None = None
    targets: list[FigureEntry] = Field(default_factory=list)


class PriorityEntry(_Entry):
    """A priority, the strategy it serves, and its actions."""

    code: Code
    title: Text
    strategy: Text
    lead: Text
    description: OptionalText = ""
    measures: list[MeasureEntry] = Field(default_factory=list)
    actions: list[ActionEntry] = Field(default_factory=list)


class ContributionEntry(_Entry):
    """One organisation's contribution to a funding stream in one financial year."""

    organisation: Text
    year: FinancialYear
    amount: Pence
    status: FundingStatusWord
    note: OptionalText = ""


class FundingStreamEntry(_Entry):
    """A shared function the partners fund, and who pays what."""

    code: Code
    name: Text
    description: OptionalText = ""
    contributions: list[ContributionEntry] = Field(default_factory=list)


class MeetingEntry(_Entry):
    """A board meeting."""

    title: Text
    at: PlanDateTime
    location: Place = ""
    agenda: Agenda = Field(default_factory=list)


class DeadlineEntry(_Entry):
    """A date the partnership must meet, once or every year."""

    title: Text
    date: PlanDate
    repeats: RecurrenceWord = Recurrence.ONCE
    organisations: TextList = Field(default_factory=list)
    description: OptionalText = ""


class PlanFile(_Entry):
    """A whole plan file, checked."""

    plan: PlanDetails
    organisations: list[OrganisationEntry]
    priorities: list[PriorityEntry] = Field(default_factory=list)
    funding_streams: list[FundingStreamEntry] = Field(default_factory=list)
    meetings: list[MeetingEntry] = Field(default_factory=list)
    deadlines: list[DeadlineEntry] = Field(default_factory=list)
    # Owners and the statutory calendar (docs/plan-format.md, "statutory_calendar").
    statutory_calendar: NationWord | None = None


class Directory:
    """The file's organisations, found by name or short name in any case."""

    def __init__(self, organisations: Iterable[OrganisationEntry]) -> None:
        self.entries = list(organisations)
        self._by_key: dict[str, OrganisationEntry] = {}
        for entry in self.entries:
            for key in entry.names():
                self._by_key.setdefault(key, entry)

    def find(self, name: str) -> OrganisationEntry | None:
        return self._by_key.get(name.strip().casefold())

    def expand(self, names: Iterable[str]) -> list[OrganisationEntry]:
        """The organisations named, with `responsible` and `all` standing for groups of them."""
        found: dict[str, OrganisationEntry] = {}
        for name in names:
            for entry in self._group(name):
                found.setdefault(entry.name, entry)
        return list(found.values())

    def _group(self, name: str) -> list[OrganisationEntry]:
        word = name.strip().casefold()
        if word == EVERY_ORGANISATION:
            return self.entries
        if word == RESPONSIBLE_PARTNERS:
            return [entry for entry in self.entries if entry.kind is OrgKind.RESPONSIBLE]
        entry = self.find(name)
        return [] if entry is None else [entry]

    def unknown(self, name: str) -> str | None:
        """Why `name` names nothing in the file, or None if it does."""
        if name.strip().casefold() in (EVERY_ORGANISATION, RESPONSIBLE_PARTNERS):
            return None
        if self.find(name) is not None:
            return None
        known = [entry.name for entry in self.entries]
        known += [entry.short_name for entry in self.entries if entry.short_name]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else " (list it under organisations)"
        return f"unknown organisation: {name!r}{hint}"
