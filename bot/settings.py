"""Settings from the environment (CSPBOT_*) or a .env file, validated at start."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from csp_bot.models.localtime import parse_offsets, parse_quiet_hours
from csp_bot.models.reminder_types import LOOKBACK
from csp_bot.models.retention import Retention

if TYPE_CHECKING:
    from csp_bot.models.statutory import StatutoryDates

SUPPORTED_DATABASES = ("sqlite", "postgresql")


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it in one line."""


class Settings(BaseSettings):
    """Everything the bot reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="CSPBOT_", env_file=".env", extra="ignore")

    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    database_url: str = "sqlite:///csp-bot.db"
    timezone: str = "Europe/London"
    bot_username: str | None = None
    invite_days: int = Field(default=7, ge=1)
    # An action with no update for this many days counts as quiet (marked, and prompted).
    quiet_days: int = Field(default=28, ge=1)
    # Reminders: how long before each event they go (d days, h hours, m minutes), and when
    # nothing is pushed (`off` also lets reminders go at weekends and on bank holidays).
    meeting_reminders: str = "7d,1d,2h"
    deadline_reminders: str = "30d,14d,7d,1d"
    action_reminders: str = "7d,1d"
    # A period's figures are due this many working days after it ends (then chased weekly).
    figure_days: int = Field(default=10, ge=1, le=60)
    quiet_hours: str = "20:00-08:00"
    # How often the reminder dispatcher wakes; refused reminders are retried on a later round.
    reminder_round_seconds: float = Field(default=60, gt=0)
    # A guided dialogue (/update, /meeting, /decide) left this long without an answer expires.
    dialogue_minutes: int = Field(default=15, ge=1)
    # Handled updates stay in the inbox this many days (for tracing), then are pruned.
    inbox_days: int = Field(default=7, ge=1)
    # Reminders sent, drafts left unfinished and invites past expiry are kept this many days.
    # At least 36: the planner looks 35 days back, and must find what it already recorded.
    retention_days: int = Field(default=90, ge=LOOKBACK.days + 1)
    # The audit trail is kept this many years (six: the usual council retention of records).
    audit_years: int = Field(default=6, ge=1, le=100)
    # Webhook mode when set: the public HTTPS URL Telegram calls (its path is served).
    webhook_url: str | None = None
    webhook_listen: str = "0.0.0.0:8080"
    webhook_secret: SecretStr | None = None
    # The web server (health checks, the dashboard) in polling mode too, when set.
    web_listen: str | None = None
    # The web server's public HTTPS base: set, the Mini App buttons open `<public_url>/app/`.
    public_url: str | None = None
    # How old Telegram's signed launch data may be when the dashboard is asked for a page.
    app_max_age_hours: float = Field(default=24, gt=0, le=24 * 366)
    # The statutory calendar's dates (MM-DD): the regulations say "each year", not when, so
    # these are defaults chosen for a plan year from 1 April (docs/plan-format.md).
    statutory_assessment: str = "12-31"
    statutory_plan_refresh: str = "03-31"
    statutory_public_meeting: str = "10-31"
    statutory_plan_to_commissioner: str = "04-30"
    statutory_domestic_abuse_report: str = "07-31"
    statutory_serious_violence_review: str = "01-31"

    @field_validator("database_url")
    @classmethod
    def _database_url_is_usable(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL (e.g. sqlite:///csp-bot.db)") from None
        if url.get_backend_name() not in SUPPORTED_DATABASES:
            raise ValueError("use sqlite:///... or postgresql+psycopg://...")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a known time zone (e.g. Europe/London)") from None
        return value

    @field_validator("meeting_reminders", "deadline_reminders", "action_reminders")
    @classmethod
    def _offsets_parse(cls, value: str) -> str:
        parse_offsets(value)
        return value

    @field_validator(
        "statutory_assessment",
        "statutory_plan_refresh",
        "statutory_public_meeting",
        "statutory_plan_to_commissioner",
        "statutory_domestic_abuse_report",
        "statutory_serious_violence_review",
    )
    @classmethod
    def _day_of_year(cls, value: str) -> str:
        from csp_bot.models.statutory import MonthDay  # the plan file's schema: only if set

        MonthDay.parse(value)
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_parse(cls, value: str) -> str:
        parse_quiet_hours(value)
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url_is_https(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not _https_or_loopback(value):
            raise ValueError("Telegram calls only https:// URLs (http:// on loopback for tests)")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url_is_https(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not _https_or_loopback(value) or urlsplit(value).query or urlsplit(value).fragment:
            raise ValueError(
                "Telegram opens Mini Apps only from https:// URLs, with no query or fragment "
                "(http:// on loopback for tests)"
            )
        return value

    @field_validator("webhook_listen", "web_listen")
    @classmethod
    def _listen_is_host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("give host:port, e.g. 0.0.0.0:8080")
        return value

    @property
    def retention(self) -> Retention:
        return Retention(
            inbox_days=self.inbox_days,
            records_days=self.retention_days,
            audit_years=self.audit_years,
        )

    @property
    def statutory_dates(self) -> StatutoryDates:
        """The statutory calendar's dates, as plan import takes them."""
        from csp_bot.models.statutory import MonthDay, StatutoryDates

        return StatutoryDates(
            strategic_assessment=MonthDay.parse(self.statutory_assessment),
            plan_refresh=MonthDay.parse(self.statutory_plan_refresh),
            public_meeting=MonthDay.parse(self.statutory_public_meeting),
            plan_to_commissioner=MonthDay.parse(self.statutory_plan_to_commissioner),
            domestic_abuse_report=MonthDay.parse(self.statutory_domestic_abuse_report),
            serious_violence_review=MonthDay.parse(self.statutory_serious_violence_review),
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def quiet_after(self) -> timedelta:
        """How long without an update makes an action quiet."""
        return timedelta(days=self.quiet_days)

    def require_token(self) -> str:
        """The bot token, or a SettingsError naming the variable to set."""
        if self.telegram_token is None or not self.telegram_token.get_secret_value().strip():
            raise SettingsError(
                "CSPBOT_TELEGRAM_TOKEN is not set: create a bot with @BotFather and set its token"
            )
        return self.telegram_token.get_secret_value().strip()

    def require_webhook_secret(self) -> str:
        """The webhook's secret, or a SettingsError: webhook mode never runs without one."""
        secret = self.webhook_secret.get_secret_value().strip() if self.webhook_secret else ""
        if not secret:
            raise SettingsError(
                "CSPBOT_WEBHOOK_SECRET is not set: webhook mode needs a secret "
                "(letters, digits, _ and -, up to 256 characters)"
            )
        return secret


def _https_or_loopback(value: str) -> bool:
    url = urlsplit(value)
    loopback = url.hostname in ("127.0.0.1", "localhost", "::1")
    return bool(url.hostname) and (url.scheme == "https" or (url.scheme == "http" and loopback))


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings, turning pydantic's report into one line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"CSPBOT_{field.upper()} is invalid: {message}") from None
