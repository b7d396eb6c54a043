"""Plan files: the YAML that holds a partnership's plan, checked, then imported into the database.

The format is described in docs/plan-format.md. Loading checks everything before anything is
written and reports every problem as `file:line: path: reason`. Importing creates or updates
records by their natural keys, audits each change and never deletes a record.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import ErrorDetails
from sqlmodel import Session, SQLModel, col, select

from csp_bot.models.audit import PLAN_IMPORT, Actor, record_change, record_removal, snapshot
from csp_bot.models.enums import FundingStatus, OrgKind, Recurrence, Status
from csp_bot.models.localtime import existing_local
from csp_bot.models.tables import (
    Action,
    Deadline,
    DeadlineOrganisation,
    FundingDecision,
    FundingStream,
    Meeting,
    Organisation,
    PlanInfo,
    Priority,
)

__all__ = [
    "FIRST_YEAR",
    "LAST_YEAR",
    "PLAN_TIMEZONE",
    "ImportResult",
    "OutOfRange",
    "PlanError",
    "PlanFile",
    "Tally",
    "check_year",
    "format_financial_year",
    "format_money",
    "import_plan",
    "import_plan_file",
    "load_plan_file",
    "parse_date",
    "parse_datetime",
    "parse_financial_year",
    "parse_money",
    "parse_plan",
    "parse_status",
]

PLAN_TIMEZONE = ZoneInfo("Europe/London")
# Every date and year the bot is given must fall in these years: far outside them, date
# arithmetic runs off the calendar (9999-12-31 plus a day) and planning cannot work.
FIRST_YEAR = 2000
LAST_YEAR = 2100
MAX_ERRORS = 20
RESPONSIBLE_PARTNERS = "responsible"
EVERY_ORGANISATION = "all"

E = TypeVar("E", bound=StrEnum)
R = TypeVar("R", bound=SQLModel)
Loc = tuple[int | str, ...]


class PlanError(Exception):
    """A plan that cannot be imported: one line per problem, `file:line: path: reason`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


# Words people type -------------------------------------------------------------------------

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
_CODE = re.compile(r"[A-Z0-9]{2,8}")
_REF = re.compile(r"(?P<code>[A-Z0-9]{2,8})-[1-9][0-9]{0,3}")


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


# Field types of the file: each turns YAML values into domain values or says what is wrong ----


def _show(value: object) -> str:
    if value is None:
        return "nothing"
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _require_text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {_show(value)}{_quote_hint(value)}")
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
        raise ValueError(f"expected one of {', '.join(enum)}, got {_show(value)}")

    return parse


def _status(value: object) -> Status:
    return parse_status(_require_text(value))


def _date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        check_year(value.year, shown=value.isoformat())
        return value
    if isinstance(value, str):
        return parse_date(value)
    raise ValueError(f"not a date: {_show(value)} (expected YYYY-MM-DD)")


def _datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        check_year(value.year, shown=f"{value:%Y-%m-%d %H:%M}")
        return existing_local(value, PLAN_TIMEZONE).astimezone(UTC)
    if isinstance(value, str):
        return parse_datetime(value)
    raise ValueError(f"not a date and time: {_show(value)} (expected e.g. 2021-04-22T14:00)")


def _number_as_text(value: object) -> object:
    # YAML reads `2021` and `12500` as numbers; bool is an int too, and is never meant here.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _money(value: object) -> int:
    return parse_money(_require_text(_number_as_text(value)))


def _financial_year(value: object) -> int:
    return parse_financial_year(_require_text(_number_as_text(value)))


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
OptionalText = Annotated[
    str, BeforeValidator(_none_as_empty), StringConstraints(strip_whitespace=True)
]
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

    name: Text
    short_name: Text | None = None
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
    due: PlanDate | None = None
    status: StatusWord | None = None


class PriorityEntry(_Entry):
    """A priority, the strategy it serves, and its actions."""

    code: Code
    title: Text
    strategy: Text
    lead: Text
    description: OptionalText = ""
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
    location: OptionalText = ""
    agenda: TextList = Field(default_factory=list)


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


# Reading and checking ----------------------------------------------------------------------


class _PlanLoader(yaml.SafeLoader):
    """A SafeLoader that leaves dates and times as text, so that bad ones are reported here."""


_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_PlanLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong at a path; `first` is an earlier duplicate, `line` overrides the path's."""

    loc: Loc
    message: str
    first: Loc | None = None
    line: int | None = None


def load_plan_file(path: Path) -> PlanFile:
    """Read and check a plan file; raises PlanError listing every problem with its line."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # Windows editors may add a BOM
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise PlanError([f"{path}: cannot read the file: {reason}"]) from None
    return parse_plan(text, source=str(path))


def parse_plan(text: str, *, source: str = "<plan>") -> PlanFile:
    """Check a plan file's text; raises PlanError listing every problem with its line."""
    root, data = _read_yaml(text, source)
    problems = list(_duplicate_keys(root))
    try:
        plan = PlanFile.model_validate(data)
    except ValidationError as error:
        raise PlanError(_report(source, root, problems + _problems_in(error))) from None
    problems += _cross_check(plan)
    if problems:
        raise PlanError(_report(source, root, problems))
    return plan


def _read_yaml(text: str, source: str) -> tuple[yaml.Node, Any]:
    loader = _PlanLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise PlanError([f"{source}:1: the file is empty (see docs/plan-format.md)"])
        return root, loader.construct_document(root)
    except yaml.MarkedYAMLError as error:
        raise PlanError([_yaml_error(source, error)]) from None
    except yaml.YAMLError as error:
        raise PlanError([f"{source}: not valid YAML: {error}"]) from None
    finally:
        loader.dispose()


def _yaml_error(source: str, error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark is not None else 1
    message = f"{source}:{line}: YAML syntax error: {error.problem or error.context}"
    context_mark = error.context_mark
    if error.context and context_mark is not None and error.problem:
        message += f" ({error.context} on line {context_mark.line + 1})"
    return message


def _duplicate_keys(root: yaml.Node) -> Iterator[Problem]:
    """Keys given twice in one mapping: YAML would keep the last one without a word."""
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    visited: set[int] = set()
    while stack:
        node, loc = stack.pop()
        if id(node) in visited:
            continue  # an alias repeats a node; a recursive one would loop forever
        visited.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*loc, index)) for index, item in enumerate(node.value))
        if isinstance(node, yaml.MappingNode):
            yield from _repeated_keys(node, loc)
            stack.extend((value, (*loc, str(key.value))) for key, value in node.value)


def _repeated_keys(node: yaml.MappingNode, loc: Loc) -> Iterator[Problem]:
    seen: set[str] = set()
    for key, _value in node.value:
        name = str(key.value)
        if name in seen:
            line = key.start_mark.line + 1
            yield Problem((*loc, name), f"duplicate key {name!r}", line=line)
        seen.add(name)


def _problems_in(error: ValidationError) -> list[Problem]:
    return [Problem(tuple(detail["loc"]), _describe(detail)) for detail in error.errors()]


def _describe(detail: ErrorDetails) -> str:
    kind, value = detail["type"], detail["input"]
    if kind == "missing":
        return "missing (this key is required)"
    if kind == "extra_forbidden":
        return _unknown_key(tuple(detail["loc"]))
    if kind == "string_type":
        return f"expected text, got {_show(value)}{_quote_hint(value)}"
    if kind == "list_type":
        return f"expected a list, got {_show(value)}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected keys and values, got {_show(value)}"
    if kind == "string_too_short":
        return "must not be empty"
    return detail["msg"].removeprefix("Value error, ")


def _quote_hint(value: object) -> str:
    if value is None:
        return " (if the text starts with #, put it in quotes: # starts a comment)"
    if isinstance(value, bool):
        return " (YAML reads yes/no/on/off as true/false: put the text in quotes)"
    if isinstance(value, int | float):
        return " (put it in quotes)"
    return ""


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1])
    allowed = list(_model_at(loc[:-1]).model_fields)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
    return f"unknown key {key!r} ({hint})"


def _model_at(loc: Loc) -> type[BaseModel]:
    """The part of the file format that `loc` points into."""
    model: type[BaseModel] = PlanFile
    for part in loc:
        if isinstance(part, str) and part in model.model_fields:
            annotation = model.model_fields[part].annotation
            inner = get_args(annotation)[0] if get_origin(annotation) is list else annotation
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                model = inner
    return model


def _report(source: str, root: yaml.Node, problems: list[Problem]) -> list[str]:
    located = sorted(((_line(root, problem), problem) for problem in problems), key=_by_line)
    lines = [_format(source, line, problem, root) for line, problem in located[:MAX_ERRORS]]
    if len(located) > MAX_ERRORS:
        lines.append(f"{source}: ... and {len(located) - MAX_ERRORS} more problems")
    return lines


def _by_line(item: tuple[int, Problem]) -> int:
    return item[0]


def _format(source: str, line: int, problem: Problem, root: yaml.Node) -> str:
    where = f"{_path(problem.loc)}: " if problem.loc else ""
    earlier = ""
    if problem.first is not None:
        earlier = f" (first at line {_line(root, Problem(problem.first, ''))})"
    return f"{source}:{line}: {where}{problem.message}{earlier}"


def _path(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.removeprefix(".")


def _line(root: yaml.Node, problem: Problem) -> int:
    """The line of the node the problem's path leads to, or of the nearest node on the way."""
    if problem.line is not None:
        return problem.line
    node = root
    for index, part in enumerate(problem.loc):
        child = _child(node, part, last=index == len(problem.loc) - 1)
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


def _child(node: yaml.Node, part: int | str, *, last: bool) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        # Of a key given twice, YAML keeps the last: that is the value that was checked.
        matches = [pair for pair in node.value if pair[0].value == part]
        if matches:
            key, value = matches[-1]
            found: yaml.Node = key if last else value
            return found
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item: yaml.Node = node.value[part]
        return item
    return None


# Cross-checks: what the types alone cannot see --------------------------------------------


def _cross_check(plan: PlanFile) -> list[Problem]:
    directory = Directory(plan.organisations)
    return [
        *_check_period(plan.plan),
        *_check_organisations(plan.organisations),
        *_check_references(plan, directory),
        *_check_refs_belong(plan.priorities),
        *_duplicates(_natural_keys(plan, directory)),
    ]


def _check_period(details: PlanDetails) -> Iterator[Problem]:
    if details.ends_on <= details.starts_on:
        yield Problem(("plan", "ends_on"), f"must be after starts_on ({details.starts_on})")


def _check_organisations(organisations: list[OrganisationEntry]) -> Iterator[Problem]:
    owner: dict[str, int] = {}
    for index, entry in enumerate(organisations):
        for key, name in (("name", entry.name), ("short_name", entry.short_name)):
            if name is None:
                continue
            loc: Loc = ("organisations", index, key)
            if name.casefold() in (EVERY_ORGANISATION, RESPONSIBLE_PARTNERS):
                yield Problem(loc, f"{name!r} is a reserved word for a group of organisations")
            first = owner.setdefault(name.casefold(), index)
            if first != index:
                yield Problem(
                    loc,
                    f"{name!r} already names another organisation",
                    first=("organisations", first),
                )


def _check_references(plan: PlanFile, directory: Directory) -> Iterator[Problem]:
    for loc, name in _organisation_references(plan):
        reason = directory.unknown(name)
        if reason is not None:
            yield Problem(loc, reason)


def _organisation_references(plan: PlanFile) -> Iterator[tuple[Loc, str]]:
    for p, priority in enumerate(plan.priorities):
        yield ("priorities", p, "lead"), priority.lead
        for a, action in enumerate(priority.actions):
            if action.lead is not None:
                yield ("priorities", p, "actions", a, "lead"), action.lead
    for s, stream in enumerate(plan.funding_streams):
        for c, contribution in enumerate(stream.contributions):
            yield (
                ("funding_streams", s, "contributions", c, "organisation"),
                contribution.organisation,
            )
    for d, deadline in enumerate(plan.deadlines):
        for o, name in enumerate(deadline.organisations):
            yield ("deadlines", d, "organisations", o), name


def _check_refs_belong(priorities: list[PriorityEntry]) -> Iterator[Problem]:
    for p, priority in enumerate(priorities):
        for a, action in enumerate(priority.actions):
            if action.ref.rsplit("-", 1)[0] != priority.code:
                yield Problem(
                    ("priorities", p, "actions", a, "ref"),
                    f"{action.ref} does not belong to priority {priority.code} "
                    f"(expected {priority.code}-<number>)",
                )


def _natural_keys(plan: PlanFile, directory: Directory) -> Iterator[tuple[Loc, str]]:
    """Every record's natural key, spelt out, with its place: for finding duplicates."""
    yield from _priority_keys(plan.priorities)
    yield from _funding_keys(plan.funding_streams, directory)
    for m, meeting in enumerate(plan.meetings):
        yield ("meetings", m), f"meeting {meeting.title!r} at {meeting.at:%Y-%m-%d %H:%M} UTC"
    for d, deadline in enumerate(plan.deadlines):
        yield ("deadlines", d, "title"), f"deadline {deadline.title!r}"


def _priority_keys(priorities: list[PriorityEntry]) -> Iterator[tuple[Loc, str]]:
    for p, priority in enumerate(priorities):
        yield ("priorities", p, "code"), f"priority code {priority.code}"
        for a, action in enumerate(priority.actions):
            yield ("priorities", p, "actions", a, "ref"), f"action ref {action.ref}"


def _funding_keys(
    streams: list[FundingStreamEntry], directory: Directory
) -> Iterator[tuple[Loc, str]]:
    for s, stream in enumerate(streams):
        yield ("funding_streams", s, "code"), f"funding stream code {stream.code}"
        for c, item in enumerate(stream.contributions):
            payer = directory.find(item.organisation)
            name = payer.name if payer else item.organisation
            year = format_financial_year(item.year)
            yield (
                ("funding_streams", s, "contributions", c),
                f"{stream.code} contribution from {name} for {year}",
            )


def _duplicates(keys: Iterable[tuple[Loc, str]]) -> Iterator[Problem]:
    seen: dict[str, Loc] = {}
    for loc, key in keys:
        first = seen.setdefault(key, loc)
        if first != loc:
            yield Problem(loc, f"duplicate {key}", first=first)


# Importing ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """How many records of one kind an import created, updated or found up to date."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged

    def count(self, change: str) -> None:
        setattr(self, change, getattr(self, change) + 1)

    def amount(self, singular: str, plural: str) -> str:
        """`16 actions`, `1 plan`."""
        return f"{self.total} {singular if self.total == 1 else plural}"

    def describe(self, singular: str, plural: str) -> str:
        """`16 actions (2 created, 14 unchanged)`, or `4 priorities (created)`."""
        states = {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}
        shown = [(state, n) for state, n in states.items() if n]
        detail = shown[0][0] if len(shown) == 1 else ", ".join(f"{n} {s}" for s, n in shown)
        return f"{self.amount(singular, plural)} ({detail})"


KINDS = {
    "plan": ("plan", "plans"),
    "organisations": ("organisation", "organisations"),
    "priorities": ("priority", "priorities"),
    "actions": ("action", "actions"),
    "funding_streams": ("funding stream", "funding streams"),
    "contributions": ("contribution", "contributions"),
    "meetings": ("meeting", "meetings"),
    "deadlines": ("deadline", "deadlines"),
}


@dataclass
class ImportResult:
    """What an import did, kind by kind, and how many audit entries it wrote."""

    title: str
    plan: Tally = field(default_factory=Tally)
    organisations: Tally = field(default_factory=Tally)
    priorities: Tally = field(default_factory=Tally)
    actions: Tally = field(default_factory=Tally)
    funding_streams: Tally = field(default_factory=Tally)
    contributions: Tally = field(default_factory=Tally)
    meetings: Tally = field(default_factory=Tally)
    deadlines: Tally = field(default_factory=Tally)
    audit_entries: int = 0

    @property
    def changed(self) -> bool:
        return self.audit_entries > 0

    def tallies(self) -> dict[str, Tally]:
        """Each kind's tally, by attribute name, in import order."""
        tallies: dict[str, Tally] = {kind: getattr(self, kind) for kind in KINDS}
        return tallies

    def summary(self) -> str:
        """One paragraph for the command line."""
        present = [(tally, KINDS[kind]) for kind, tally in self.tallies().items() if tally.total]
        if not self.changed:
            amounts = ", ".join(tally.amount(*nouns) for tally, nouns in present)
            return f"Imported {self.title!r}: nothing to change ({amounts}, all up to date)."
        parts = "; ".join(tally.describe(*nouns) for tally, nouns in present)
        entries = "entry" if self.audit_entries == 1 else "entries"
        return f"Imported {self.title!r}: {parts}. {self.audit_entries} audit {entries} written."


def import_plan_file(
    session: Session, *, path: Path, at: datetime, actor: Actor = PLAN_IMPORT
) -> ImportResult:
    """Check the file at `path`, then import it; nothing is written if the file has a problem."""
    return import_plan(session, plan=load_plan_file(path), at=at, actor=actor)


def import_plan(
    session: Session, *, plan: PlanFile, at: datetime, actor: Actor = PLAN_IMPORT
) -> ImportResult:
    """Create or update everything in `plan`, auditing each change; deletes nothing.

    The caller's transaction makes it all or nothing: any error propagates for its rollback.
    """
    if at.tzinfo is None:
        raise ValueError("import_plan needs an aware datetime")
    job = _Import(session, at, actor, ImportResult(title=plan.plan.title))
    job.plan_info(plan.plan)
    job.organisations(plan.organisations)
    job.priorities(plan.priorities)
    job.funding_streams(plan.funding_streams)
    job.meetings(plan.meetings)
    job.deadlines(plan.deadlines)
    return job.result


class _Import:
    """One import in progress: the session, who and when, and what it has done so far."""

    def __init__(self, session: Session, at: datetime, actor: Actor, result: ImportResult):
        self.session, self.at, self.actor, self.result = session, at, actor, result
        self.directory = Directory([])
        self.organisation_ids: dict[str, int] = {}

    def upsert(
        self,
        record: R | None,
        model: type[R],
        values: Mapping[str, Any],
        first: Mapping[str, Any] | None = None,
    ) -> tuple[R, str]:
        """Create `model(**values, **first)` or set `values` on `record`; audit any change."""
        before = None if record is None else snapshot(record)
        if record is None:
            record = model(**values, **(first or {}))
        else:
            for name, value in values.items():
                setattr(record, name, value)
        entry = record_change(
            self.session, actor=self.actor, at=self.at, record=record, before=before
        )
        if entry is not None:
            self.result.audit_entries += 1
        change = "created" if before is None else "updated" if entry else "unchanged"
        return record, change

    def all(self, model: type[R]) -> list[R]:
        return list(self.session.exec(select(model)))

    def plan_info(self, details: PlanDetails) -> None:
        existing = self.session.exec(select(PlanInfo).order_by(col(PlanInfo.id))).first()
        _, change = self.upsert(existing, PlanInfo, details.model_dump())
        self.result.plan.count(change)

    def organisations(self, entries: list[OrganisationEntry]) -> None:
        self.directory = Directory(entries)
        existing = {org.name.casefold(): org for org in self.all(Organisation)}
        for entry in entries:
            values = entry.model_dump()
            record, change = self.upsert(existing.get(entry.name.casefold()), Organisation, values)
            self.organisation_ids[entry.name] = _id(record)
            self.result.organisations.count(change)

    def organisation_id(self, name: str) -> int:
        entry = self.directory.find(name)
        if entry is None:  # parse_plan rejects this; a hand-built PlanFile might not
            raise ValueError(f"unknown organisation: {name!r}")
        return self.organisation_ids[entry.name]

    def priorities(self, entries: list[PriorityEntry]) -> None:
        existing = {priority.code.upper(): priority for priority in self.all(Priority)}
        actions = {action.ref.upper(): action for action in self.all(Action)}
        for entry in entries:
            values = {
                "code": entry.code,
                "title": entry.title,
                "strategy": entry.strategy,
                "description": entry.description,
                "lead_organisation_id": self.organisation_id(entry.lead),
            }
            record, change = self.upsert(existing.get(entry.code), Priority, values)
            self.result.priorities.count(change)
            for action in entry.actions:
                self.action(action, actions.get(action.ref), entry, _id(record))

    def action(
        self, entry: ActionEntry, existing: Action | None, priority: PriorityEntry, priority_id: int
    ) -> None:
        values = {
            "ref": entry.ref,
            "priority_id": priority_id,
            "title": entry.title,
            "description": entry.description,
            "lead_organisation_id": self.organisation_id(entry.lead or priority.lead),
            "owner": entry.owner,
            "due_on": entry.due,
        }
        # The file's status only seeds a new action; after that, progress updates own it.
        first = {"status": entry.status or Status.NOT_STARTED, "status_at": self.at}
        _, change = self.upsert(existing, Action, values, first)
        self.result.actions.count(change)

    def funding_streams(self, entries: list[FundingStreamEntry]) -> None:
        existing = {stream.code.upper(): stream for stream in self.all(FundingStream)}
        decisions = {
            (decision.stream_id, decision.organisation_id, decision.financial_year): decision
            for decision in self.all(FundingDecision)
        }
        for entry in entries:
            values = {"code": entry.code, "name": entry.name, "description": entry.description}
            record, change = self.upsert(existing.get(entry.code), FundingStream, values)
            self.result.funding_streams.count(change)
            for contribution in entry.contributions:
                self.contribution(contribution, _id(record), decisions)

    def contribution(
        self,
        entry: ContributionEntry,
        stream_id: int,
        decisions: dict[tuple[int, int, int], FundingDecision],
    ) -> None:
        key = (stream_id, self.organisation_id(entry.organisation), entry.year)
        values: dict[str, Any] = {
            "stream_id": key[0],
            "organisation_id": key[1],
            "financial_year": key[2],
            "amount_pence": entry.amount,
            "status": entry.status,
            "note": entry.note,
        }
        existing = decisions.get(key)
        # The decision date is the date of the figure: it moves only when the figure does.
        if existing is None or _differs(existing, values):
            values["decided_at"] = self.at
        _, change = self.upsert(existing, FundingDecision, values)
        self.result.contributions.count(change)

    def meetings(self, entries: list[MeetingEntry]) -> None:
        existing = {(meeting.title, meeting.starts_at): meeting for meeting in self.all(Meeting)}
        for entry in entries:
            values = {
                "title": entry.title,
                "starts_at": entry.at,
                "location": entry.location,
                "agenda": "\n".join(entry.agenda),
            }
            _, change = self.upsert(existing.get((entry.title, entry.at)), Meeting, values)
            self.result.meetings.count(change)

    def deadlines(self, entries: list[DeadlineEntry]) -> None:
        existing = {deadline.title: deadline for deadline in self.all(Deadline)}
        for entry in entries:
            values = {
                "title": entry.title,
                "due_on": entry.date,
                "recurrence": entry.repeats,
                "description": entry.description,
            }
            record, change = self.upsert(existing.get(entry.title), Deadline, values)
            wanted = {
                self.organisation_ids[org.name]
                for org in self.directory.expand(entry.organisations)
            }
            if self.link_organisations(_id(record), wanted) and change == "unchanged":
                change = "updated"
            self.result.deadlines.count(change)

    def link_organisations(self, deadline_id: int, wanted: set[int]) -> bool:
        """Make the deadline's organisations exactly `wanted`; True if that changed anything."""
        links = self.session.exec(
            select(DeadlineOrganisation).where(DeadlineOrganisation.deadline_id == deadline_id)
        ).all()
        current = {link.organisation_id: link for link in links}
        for organisation_id in sorted(wanted - current.keys()):
            link = {"deadline_id": deadline_id, "organisation_id": organisation_id}
            self.upsert(None, DeadlineOrganisation, link)
        for organisation_id in sorted(current.keys() - wanted):
            self.unlink(current[organisation_id])
        return wanted != current.keys()

    def unlink(self, link: DeadlineOrganisation) -> None:
        record_removal(self.session, actor=self.actor, at=self.at, record=link)
        self.result.audit_entries += 1


def _id(record: SQLModel) -> int:
    value = getattr(record, "id", None)
    if not isinstance(value, int):
        raise ValueError(f"{type(record).__name__} has no id after flush")
    return value


def _differs(record: SQLModel, values: Mapping[str, Any]) -> bool:
    return any(getattr(record, name) != value for name, value in values.items())
