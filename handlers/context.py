"""What every handler can reach: the services, the settings it reads, a typed callback context."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from telegram.ext import Application, CallbackContext, ExtBot
from telegram.request import BaseRequest

from csp_bot.handlers.templating import Templates
from csp_bot.models.clock import Clock
from csp_bot.models.db import Database
from csp_bot.models.leases import AlwaysHeld, Lease
from csp_bot.models.membership import MemberView
from csp_bot.models.retention import Retention
from csp_bot.models.summary import SummaryCache
from csp_bot.scheduler.due import Rules
from csp_bot.scheduler.incremental import Planner
from csp_bot.scheduler.pacing import Pace, Pacer


@dataclass(frozen=True)
class Options:
    """The settings handlers and delivery read, as plain values.

    `bot` reads the environment and builds this once (`bot.app.options_from`), so nothing
    here depends on how settings are loaded, and every derived value is derived once.
    """

    tz: ZoneInfo
    quiet_days: int
    quiet_after: timedelta
    invite_days: int
    # As the coordinator wrote them: shown back in /meeting and /reminders.
    meeting_reminders: str
    quiet_hours: str
    reminders: Rules
    reminder_round_seconds: float
    inbox_days: int
    dialogue_minutes: int
    retention: Retention
    # The dashboard: the web server's public base (None: no Mini App buttons), and how old
    # Telegram's launch data may be.
    public_url: str | None
    app_max_age: timedelta

    @property
    def app_url(self) -> str | None:
        """Where the Mini App buttons open the dashboard."""
        return None if self.public_url is None else self.public_url.rstrip("/") + "/app/"


@dataclass
class Services:
    """The bot's dependencies, built once in `bot.app` and injected into every handler."""

    settings: Options
    db: Database
    clock: Clock
    templates: Templates
    # Subjects whose reminders could not be worked out, ("deadline", 7): already logged, so
    # each is logged once in the life of the process, not at every planning round.
    planning_failures: set[tuple[str, int]] = field(default_factory=set)
    # What reminder planning keeps between rounds, and one round at a time.
    planner: Planner = field(default_factory=Planner)
    planning: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The latest /summary of each scope, served again while it is current.
    summaries: SummaryCache = field(default_factory=SummaryCache)
    # Held by the one instance that plans and sends reminders and prunes (`handlers.jobs`).
    leader: Lease = field(default_factory=AlwaysHeld)
    # The turns every message sent takes, replies and reminders (`scheduler.pacing`).
    pacer: Pace = field(default_factory=Pacer)


class CspApplication(Application[Any, Any, Any, Any, Any, Any]):
    """The PTB Application carrying the services (instead of module-level globals)."""

    def __init__(self, *, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.token_refused = False
        self.stop_requested = asyncio.Event()
        # What `getUpdates` goes through: the poller reads Telegram's answer as it came
        # (`bot.polling`), set by `bot.app.build_application`.
        self.updates_request: BaseRequest | None = None

    def refuse_token(self) -> None:
        """Telegram refused the token: the runner stops the bot and exits 2."""
        self.token_refused = True
        self.stop_requested.set()


class Ctx(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """The callback context: typed access to the services and the member being served."""

    # Set by `handlers.guard` before a command's callback runs.
    member: MemberView | None = None
    # Whether `member` has been read for this update already (the dialogue engine's first
    # look at a private message reads it in its own transaction; the guard then need not).
    member_known: bool = False

    @property
    def services(self) -> Services:
        return cast(CspApplication, self.application).services

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def templates(self) -> Templates:
        return self.services.templates

    @property
    def settings(self) -> Options:
        return self.services.settings

    def now(self) -> datetime:
        """The current time from the injected clock (tests move it), in the partnership's
        zone, so that `now().date()` is today's date where the partners are."""
        return self.services.clock().astimezone(self.settings.tz)

    @property
    def quiet_after(self) -> timedelta:
        """How long without an update makes an action quiet."""
        return self.settings.quiet_after

    @property
    def acting_member(self) -> MemberView:
        """The member this update is from; only valid inside a guarded handler."""
        if self.member is None:
            raise RuntimeError("handler ran without the access guard")
        return self.member
