"""Reading and checking a plan file: every problem found, reported as `file:line: path: reason`.

Everything is checked before anything is written: the YAML, the schema (`models.plan_file`),
then what the types alone cannot see (periods, names, references, duplicates).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml._yaml import CParser
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from csp_bot.models.limits import (
    NESTING_DEPTH,
    PLAN_FILE_BYTES,
    character_code,
    first_control_character,
)
from csp_bot.models.plan_file import (
    EVERY_ORGANISATION,
    RESPONSIBLE_PARTNERS,
    Directory,
    FundingStreamEntry,
    MeasureEntry,
    OrganisationEntry,
    PlanDetails,
    PlanFile,
    PriorityEntry,
    quote_hint,
    show_value,
)
from csp_bot.models.statutory import statutory_titles
from csp_bot.models.values import Period, format_financial_year, parse_figure, parse_period

MAX_ERRORS = 20
Loc = tuple[int | str, ...]


class PlanError(Exception):
    """A plan that cannot be imported: one line per problem, `file:line: path: reason`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class _PlanLoader(Composer, CParser, SafeConstructor, Resolver):
    """A safe loader that leaves dates and times as text, so that bad ones are reported here,
    and refuses YAML aliases (`*name`): a few of them can expand to billions of nodes.
    libyaml scans and parses (six times quicker than PyYAML's own parser on the sample
    plan); PyYAML's composer, first in line, builds the nodes, so the alias check sees
    each event."""

    source = "<plan>"

    def __init__(self, text: str) -> None:
        CParser.__init__(self, text)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()
            assert isinstance(event, yaml.AliasEvent)
            line = event.start_mark.line + 1 if event.start_mark else 1
            name = f"{self.source}:{line}"
            raise PlanError([f"{name}: a YAML alias (*{event.anchor}): write the value out"])
        return super().compose_node(parent, index)


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
        if path.stat().st_size > PLAN_FILE_BYTES:
            size = path.stat().st_size
            raise PlanError(
                [f"{path}:1: the file is {size:,} bytes; the limit is {PLAN_FILE_BYTES:,}"]
            )
        text = path.read_text(encoding="utf-8-sig")  # Windows editors may add a BOM
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise PlanError([f"{path}: cannot read the file: {reason}"]) from None
    return parse_plan(text, source=str(path))


def parse_plan(text: str, *, source: str = "<plan>") -> PlanFile:
    """Check a plan file's text; raises PlanError listing every problem with its line."""
    _refuse_control_characters(text, source)
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


def _refuse_control_characters(text: str, source: str) -> None:
    """No plan needs control characters (but tab and line ends), and PostgreSQL refuses NUL."""
    index = first_control_character(text)
    if index is not None:
        line = text.count("\n", 0, index) + 1
        code = character_code(text[index])
        raise PlanError([f"{source}:{line}: a control character ({code}): plans are plain text"])


_QUOTED = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|#[^\n]*")


def _refuse_deep_brackets(text: str, source: str) -> None:
    """Flow collections (`[[[...]]]`) nested past the limit, found before PyYAML composes
    them (recursively, and slowly: 20,000 levels took seconds and ended in RecursionError)."""
    depth, line = 0, 1
    for char in _QUOTED.sub("", text):
        if char in "[{":
            depth += 1
            if depth > NESTING_DEPTH:
                raise PlanError([f"{source}:{line}: nested more than {NESTING_DEPTH} levels deep"])
        elif char in "]}":
            depth = max(depth - 1, 0)
        elif char == "\n":
            line += 1


def _read_yaml(text: str, source: str) -> tuple[yaml.Node, Any]:
    _refuse_deep_brackets(text, source)
    loader = _PlanLoader(text)
    loader.source = source
    try:
        root = loader.get_single_node()
        if root is None:
            raise PlanError([f"{source}:1: the file is empty (see docs/plan-format.md)"])
        _check_shape(root, source)
        return root, loader.construct_document(root)
    except RecursionError:
        # PyYAML composes nodes recursively: a file nested this deep is no plan.
        raise PlanError([f"{source}:1: nested more than {NESTING_DEPTH} levels deep"]) from None
    except yaml.MarkedYAMLError as error:
        raise PlanError([_yaml_error(source, error)]) from None
    except yaml.YAMLError as error:
        raise PlanError([f"{source}: not valid YAML: {error}"]) from None
    finally:
        loader.dispose()


def _check_shape(root: yaml.Node, source: str) -> None:
    """No deeper than NESTING_DEPTH levels (walked without recursion)."""
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > NESTING_DEPTH:
            line = node.start_mark.line + 1
            raise PlanError([f"{source}:{line}: nested more than {NESTING_DEPTH} levels deep"])
        if isinstance(node, yaml.MappingNode):
            stack.extend((value, depth + 1) for _, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)


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
        return f"expected text, got {show_value(value)}{quote_hint(value)}"
    if kind == "list_type":
        return f"expected a list, got {show_value(value)}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected keys and values, got {show_value(value)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind in ("string_too_long", "too_long"):  # said as the chat and the command line say it
        return _too_long(detail["ctx"]["max_length"], value)
    return detail["msg"].removeprefix("Value error, ")


def _too_long(limit: int, value: object) -> str:
    if isinstance(value, str):
        return f"can be at most {limit:,} characters; this has {len(value.strip()):,}"
    assert isinstance(value, list)  # pydantic's too_long is for text and lists only
    return f"can have at most {limit:,} items; this has {len(value):,}"


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
        *_check_measures(plan.priorities, directory),
        *_check_owners(plan.priorities),
        *_check_statutory_titles(plan),
    ]


# Owners and the statutory calendar ----------------------------------------------------------


def _check_owners(priorities: list[PriorityEntry]) -> Iterator[Problem]:
    """An action names each owning post once (`owner` and `owners` together)."""
    for p, priority in enumerate(priorities):
        for a, action in enumerate(priority.actions):
            seen = {action.owner.casefold()} if action.owner else set()
            for o, title in enumerate(action.owners):
                if title.casefold() in seen:
                    loc: Loc = ("priorities", p, "actions", a, "owners", o)
                    yield Problem(loc, f"{title!r} is named as an owner twice")
                seen.add(title.casefold())


def _check_statutory_titles(plan: PlanFile) -> Iterator[Problem]:
    """The calendar's deadlines are matched by title: the file's own may not take one."""
    if plan.statutory_calendar is None:
        return
    reserved = {title.casefold() for title in statutory_titles(plan.statutory_calendar)}
    for d, deadline in enumerate(plan.deadlines):
        if deadline.title.casefold() in reserved:
            yield Problem(
                ("deadlines", d, "title"),
                f"{deadline.title!r} is a deadline of the statutory calendar: "
                "leave it to statutory_calendar, or give yours another title",
            )


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


# Measures: the checks of each priority's `measures:` -----------------------------------------


def _check_measures(priorities: list[PriorityEntry], directory: Directory) -> Iterator[Problem]:
    seen: dict[str, Loc] = {}
    for p, priority in enumerate(priorities):
        for m, measure in enumerate(priority.measures):
            loc: Loc = ("priorities", p, "measures", m)
            first = seen.setdefault(measure.code, (*loc, "code"))
            if first != (*loc, "code"):
                yield Problem((*loc, "code"), f"duplicate measure code {measure.code}", first=first)
            if measure.code.rsplit("-", 1)[0] != priority.code:
                yield Problem(
                    (*loc, "code"),
                    f"{measure.code} does not belong to priority {priority.code} "
                    f"(expected {priority.code}-M<number>)",
                )
            reason = directory.unknown(measure.supplier)
            if reason is not None:
                yield Problem((*loc, "supplier"), reason)
            yield from _check_measure_figures(measure, loc)


def _check_measure_figures(measure: MeasureEntry, loc: Loc) -> Iterator[Problem]:
    """Periods of the measure's frequency, targets after the baseline and each period once,
    values in the measure's unit."""
    quarterly = measure.frequency == "quarterly"
    baseline = None
    if measure.baseline is not None:
        baseline = parse_period(measure.baseline.period)
        yield from _period_kind(baseline, quarterly, (*loc, "baseline", "period"))
        yield from _value_in_unit(measure.baseline.value, measure.unit, (*loc, "baseline", "value"))
    yield from _value_in_unit(measure.tolerance, measure.unit, (*loc, "tolerance"))
    periods: dict[str, Loc] = {}
    for t, target in enumerate(measure.targets):
        here: Loc = (*loc, "targets", t)
        period = parse_period(target.period)
        yield from _period_kind(period, quarterly, (*here, "period"))
        if baseline is not None and period.quarterly == baseline.quarterly and period <= baseline:
            yield Problem(
                (*here, "period"),
                f"the target for {period} is not after the baseline ({baseline})",
            )
        first = periods.setdefault(str(period), here)
        if first != here:
            yield Problem(here, f"a second target for {period}", first=first)
        yield from _value_in_unit(target.value, measure.unit, (*here, "value"))


def _period_kind(period: Period, quarterly: bool, loc: Loc) -> Iterator[Problem]:
    if period.quarterly != quarterly:
        wanted = "a quarter such as 2021/22-Q2" if quarterly else "a month such as 2021-07"
        frequency = "quarterly" if quarterly else "monthly"
        yield Problem(loc, f"{period} is not a period of a {frequency} measure ({wanted})")


def _value_in_unit(value: float, unit: str, loc: Loc) -> Iterator[Problem]:
    written = f"{value:.10g}"
    try:
        parse_figure(written, unit=unit)
    except ValueError as problem:
        yield Problem(loc, str(problem))
