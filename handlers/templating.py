"""The Jinja2 environment for every text the bot shows (Telegram HTML parse mode)."""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import BytecodeCache, Environment, PackageLoader, StrictUndefined
from jinja2.bccache import Bucket
from markupsafe import Markup, escape

from csp_bot.models import limits
from csp_bot.models.enums import Role, Status
from csp_bot.models.localtime import day_phrase, local_day
from csp_bot.models.measures import rag_words
from csp_bot.models.progress import Direction
from csp_bot.models.summary import LatestUpdate
from csp_bot.models.values import format_financial_year, format_money

STATUS_MARKS = {
    Status.NOT_STARTED: "⚪",
    Status.GREEN: "🟢",
    Status.AMBER: "🟠",
    Status.RED: "🔴",
    Status.COMPLETE: "✅",
}

# Shapes beside the dashboard's RAG colours: told apart without seeing colour.
RAG_SHAPES = {
    Status.NOT_STARTED: "○",
    Status.GREEN: "●",
    Status.AMBER: "▲",
    Status.RED: "■",
    Status.COMPLETE: "✓",
}

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

TRENDS = {
    Direction.IMPROVING: "↑ improving",
    Direction.STEADY: "→ steady",
    Direction.WORSENING: "↓ worsening",
    Direction.FIRST: "first report",
}

ROLE_NAMES = {
    Role.ADMIN: "coordinator",
    Role.CHAIR: "board chair",
    Role.BOARD: "board member",
    Role.PARTNER: "partner",
    Role.OBSERVER: "observer",
}


class _CompiledOnce(BytecodeCache):
    """Compiled templates kept for the life of the process, so that every `Templates` (the
    bot's, a command's, one per test) shares them instead of compiling each one again; a
    bucket is keyed by the template's name and checked against its source."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


# Every Environment here has the same syntax options, so a template compiles the same in each.
_COMPILED = _CompiledOnce()


class Templates:
    """Renders `handlers/templates/*`, escaping every value for Telegram's HTML."""

    def __init__(self, timezone: ZoneInfo) -> None:
        self.timezone = timezone
        self.env = Environment(
            loader=PackageLoader("csp_bot.handlers", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            # Templates ship with the code: compiled once, never checked for changes on disk
            # (which costs a stat() per template per render).
            auto_reload=False,
            bytecode_cache=_COMPILED,
        )
        self.env.filters.update(
            mark=lambda status: STATUS_MARKS[Status(status)],
            status=lambda status: Status(status).label,
            role=lambda role: ROLE_NAMES[Role(role)],
            day=self.format_day,
            when=self.format_when,
            age=self.format_age,
            trend=lambda direction: TRENDS[Direction(direction)],
            money=format_money,
            fy=format_financial_year,
            thousands=lambda number: f"{number:,}",
        )
        # The input limits, so that a question states the limit its answer is checked against.
        self.env.globals["limits"] = limits

    @functools.cached_property
    def paper(self) -> Environment:
        """The board paper's environment: the same filters, for HTML files (`templates/report`)."""
        env = _html_environment("templates/report")
        env.filters.update(self.env.filters)
        # Filters rather than macros: the paper lists every action, and macros are slow.
        env.filters.update(rag=self.rag_badge, dated=self.dated, noted=self.noted)
        return env

    @functools.cached_property
    def app(self) -> Environment:
        """The dashboard's environment (`templates/app`): web pages, the same filters and
        HTML escaping as the paper."""
        env = _html_environment("templates/app")
        env.filters.update(self.paper.filters)
        env.filters.update(rag=self.rag_marked)
        env.globals.update(limits=limits, rag_words=rag_words)
        return env

    def page(self, template: str, /, **values: Any) -> str:
        """A dashboard page or fragment (`templates/app`) rendered with `values`."""
        return self.app.get_template(template).render(**values)

    def rag_badge(self, status: Status) -> Markup:
        """A status as a coloured label, for the paper's tables."""
        status = Status(status)
        return Markup(f'<span class="rag rag-{status.value}">{status.label}</span>')

    def rag_marked(self, status: Status, words: str | None = None) -> Markup:
        """A status as the dashboard shows it: a shape and the word as well as the colour, so
        that it never rests on colour alone; `words` in place of the status's own (a
        measure's "on target")."""
        status = Status(status)
        shape = RAG_SHAPES[status]
        said = status.label if words is None else escape(words)
        return Markup(
            f'<span class="rag rag-{status.value}"><span aria-hidden="true">{shape}</span> '
            f"{said}</span>"
        )

    def dated(self, value: date | datetime | None, now: datetime) -> Markup:
        """A day with how long ago it was, for the paper's tables."""
        if value is None:
            return Markup('<span class="none">none</span>')
        # Our own day and age texts: nothing in them to escape (Markup.format is slow).
        day, age = self.format_day(value), self.format_age(value, now)
        return Markup(f'{day} <span class="age">({age})</span>')

    def render(self, template: str, /, **values: Any) -> str:
        """The named template rendered with `values`, stripped of surrounding blank lines."""
        return self.env.get_template(template).render(**values).strip()

    def format_day(self, value: date | datetime | None) -> str:
        """A date as people write it in the UK: 'Thu 1 Apr 2021'."""
        if value is None:
            return "no date"
        value = local_day(value, self.timezone)
        # Names from tables, not strftime: the board paper formats thousands of dates, and
        # the text must not follow the server's locale.
        return (
            f"{DAY_NAMES[value.weekday()]} {value.day} {MONTH_NAMES[value.month - 1]} {value.year}"
        )

    def format_when(self, value: datetime) -> str:
        """A moment in local time: 'Thu 1 Apr 2021, 14:00'."""
        local = value.astimezone(self.timezone)
        return f"{self.format_day(local.date())}, {local:%H:%M}"

    def format_age(self, value: date | datetime | None, now: datetime) -> str:
        """How long ago (or ahead) a day is, from `now`, in local days: 'today', '3 days ago'."""
        if value is None:
            return "never"
        zone = self.timezone
        return day_phrase(local_day(now, zone), local_day(value, zone))

    def noted(self, latest: LatestUpdate | None, now: datetime) -> Markup:
        """An action's latest note with who wrote it and when, for the paper's tables."""
        if latest is None:
            return Markup('<span class="none">no update yet</span>')
        day, age = self.format_day(latest.created_at), self.format_age(latest.created_at, now)
        note, author = escape(latest.note), escape(latest.author)
        return Markup(f'{note} <span class="age">– {author}, {day} ({age})</span>')


def _html_environment(folder: str) -> Environment:
    """An environment for HTML files (the paper's, the dashboard's): escaped, strict about
    missing values, compiled once per process."""
    return Environment(
        loader=PackageLoader("csp_bot.handlers", folder),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        bytecode_cache=_COMPILED,
    )
