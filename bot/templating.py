"""The Jinja2 environment for every text the bot shows (Telegram HTML parse mode)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined

from models.enums import Role, Status

STATUS_MARKS = {
    Status.NOT_STARTED: "⚪",
    Status.GREEN: "🟢",
    Status.AMBER: "🟠",
    Status.RED: "🔴",
    Status.COMPLETE: "✅",
}

ROLE_NAMES = {
    Role.ADMIN: "coordinator",
    Role.CHAIR: "board chair",
    Role.BOARD: "board member",
    Role.PARTNER: "partner",
    Role.OBSERVER: "observer",
}


class Templates:
    """Renders `bot/templates/*`, escaping every value for Telegram's HTML."""

    def __init__(self, timezone: ZoneInfo) -> None:
        self.timezone = timezone
        self.env = Environment(
            loader=PackageLoader("bot", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters.update(
            mark=lambda status: STATUS_MARKS[Status(status)],
            status=lambda status: Status(status).label,
            role=lambda role: ROLE_NAMES[Role(role)],
            day=self.format_day,
            when=self.format_when,
        )

    def render(self, template: str, /, **values: Any) -> str:
        """The named template rendered with `values`, stripped of surrounding blank lines."""
        return self.env.get_template(template).render(**values).strip()

    def format_day(self, value: date | datetime | None) -> str:
        """A date as people write it in the UK: 'Thu 1 Apr 2021'."""
        if value is None:
            return "no date"
        if isinstance(value, datetime):
            value = value.astimezone(self.timezone).date()
        return f"{value:%a} {value.day} {value:%b %Y}"

    def format_when(self, value: datetime) -> str:
        """A moment in local time: 'Thu 1 Apr 2021, 14:00'."""
        local = value.astimezone(self.timezone)
        return f"{self.format_day(local.date())}, {local:%H:%M}"
