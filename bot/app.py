"""Building the Application: services from the settings, handlers, defaults, the menu."""

from __future__ import annotations

import asyncio
import gc
import logging
from datetime import timedelta
from typing import Any

from telegram import BotCommand, LinkPreviewOptions, MenuButtonWebApp, Update, WebAppInfo
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, Defaults, TypeHandler
from telegram.request import BaseRequest, HTTPXRequest

from csp_bot.bot.intake import CONCURRENT_CHATS, ChatOrderedProcessor
from csp_bot.bot.settings import Settings
from csp_bot.bot.transport import ResilientRequest, Sleep
from csp_bot.handlers.context import CspApplication, Ctx, Options, Services
from csp_bot.handlers.errors import note_writes, on_error
from csp_bot.handlers.jobs import install_reminder_jobs
from csp_bot.handlers.keyboards import DASHBOARD_LABEL
from csp_bot.handlers.policy import COMMANDS
from csp_bot.handlers.registry import all_handlers, first_look_handlers
from csp_bot.handlers.templating import Templates
from csp_bot.models.backoff import Backoff
from csp_bot.models.clock import Clock
from csp_bot.models.db import Database, is_sqlite
from csp_bot.models.leases import leader_lease
from csp_bot.models.localtime import parse_offsets, parse_quiet_hours
from csp_bot.models.send_pace import SharedPace
from csp_bot.scheduler.due import Rules
from csp_bot.scheduler.pacing import Pace, Pacer, SharedPacer
from csp_bot.scheduler.timing import WorkingCalendar

log = logging.getLogger(__name__)
# Handler groups that run before the features (which are in group 0).
NOTE_WRITES = -2
FIRST_LOOK = -1
# Replies are tried for about 20 seconds; polling tries until Telegram answers.
REPLY_BACKOFF = Backoff(first=0.5, ceiling=8.0, tries=6)
POLLING_BACKOFF = Backoff(first=1.0, ceiling=30.0, tries=None)


def reminder_rules(settings: Settings) -> Rules:
    """The reminder rules the settings describe."""
    return Rules(
        zone=settings.tz,
        calendar=WorkingCalendar(parse_quiet_hours(settings.quiet_hours), settings.tz),
        meeting_offsets=parse_offsets(settings.meeting_reminders),
        deadline_offsets=parse_offsets(settings.deadline_reminders),
        action_offsets=parse_offsets(settings.action_reminders),
        quiet_after=settings.quiet_after,
        figure_days=settings.figure_days,
    )


def options_from(settings: Settings) -> Options:
    """What the handlers and the delivery of reminders read of the settings."""
    return Options(
        tz=settings.tz,
        quiet_days=settings.quiet_days,
        quiet_after=settings.quiet_after,
        invite_days=settings.invite_days,
        meeting_reminders=settings.meeting_reminders,
        quiet_hours=settings.quiet_hours,
        reminders=reminder_rules(settings),
        reminder_round_seconds=settings.reminder_round_seconds,
        inbox_days=settings.inbox_days,
        dialogue_minutes=settings.dialogue_minutes,
        retention=settings.retention,
        public_url=settings.public_url,
        app_max_age=timedelta(hours=settings.app_max_age_hours),
    )


def services_for(
    settings: Settings, *, db: Database, clock: Clock, pacer: Pace | None = None
) -> Services:
    """The services every handler reaches, over an open database.

    The pace of sends is shared through PostgreSQL, where other instances may send too,
    unless `pacer` is given (an instance that is alone paces its own, `bot.runner`); SQLite
    runs one instance, which paces its own.
    """
    return Services(
        settings=options_from(settings),
        db=db,
        clock=clock,
        templates=Templates(settings.tz),
        leader=leader_lease(db.engine),
        pacer=pacer or (Pacer() if is_sqlite(db.engine) else SharedPacer(SharedPace(db.engine))),
    )


def build_application(
    services: Services,
    *,
    token: str,
    base_url: str | None = None,
    request: BaseRequest | None = None,
    updates_request: BaseRequest | None = None,
    sleep: Sleep = asyncio.sleep,
) -> CspApplication:
    """The bot, ready to initialise: every handler registered, menu set at start.

    Updates come in through `bot.intake` (no PTB `Updater`); every Bot API call goes
    through `ResilientRequest`, which retries what Telegram did not take, and every message
    sent takes its turn from the services' pace.
    """
    refused = TokenAlarm()
    builder = (
        ApplicationBuilder()
        .application_class(CspApplication, kwargs={"services": services})
        .token(token)
        .context_types(ContextTypes(context=Ctx))
        .defaults(default_settings(services))
        .post_init(on_start)
        .updater(None)
        .concurrent_updates(ChatOrderedProcessor(services.db, services.clock))
        .request(
            ResilientRequest(
                request or HTTPXRequest(connection_pool_size=CONCURRENT_CHATS + 8),
                backoff=REPLY_BACKOFF,
                sleep=sleep,
                on_token_refused=refused,
                pacer=services.pacer,
            )
        )
    )
    polling_request = ResilientRequest(
        updates_request or HTTPXRequest(),
        backoff=POLLING_BACKOFF,
        sleep=sleep,
        on_token_refused=refused,
    )
    builder = builder.get_updates_request(polling_request)
    if base_url is not None:
        builder = builder.base_url(base_url)
    application = builder.build()
    assert isinstance(application, CspApplication)
    refused.application = application
    application.updates_request = polling_request
    application.add_handler(TypeHandler(Update, note_writes), group=NOTE_WRITES)
    application.add_handlers(first_look_handlers(), group=FIRST_LOOK)
    application.add_handlers(all_handlers())
    application.add_error_handler(on_error)
    install_reminder_jobs(application)
    return application


class TokenAlarm:
    """Called by the transport on a 401: the runner then ends the bot (exit 2)."""

    application: CspApplication | None = None

    def __call__(self) -> None:
        if self.application is not None:
            self.application.refuse_token()


def default_settings(services: Services) -> Defaults:
    """HTML everywhere (templates escape), no link previews, times in the partnership's zone."""
    return Defaults(
        parse_mode=ParseMode.HTML,
        tzinfo=services.settings.tz,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )


async def on_start(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Once the bot is up: publish the menu, then spare the garbage collector its start-up."""
    await set_command_menu(application)
    await set_dashboard_menu(application)
    # Everything loaded so far (PTB, SQLAlchemy, templates) lives as long as the process;
    # frozen, it is no longer rescanned by every full collection while handlers run.
    gc.collect()
    gc.freeze()


async def set_command_menu(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Publish the command menu; a refusal is logged and the bot runs on without it."""
    commands = [BotCommand(spec.name, spec.summary) for spec in COMMANDS]
    try:
        await application.bot.set_my_commands(commands)
    except TelegramError as refused:
        log.warning("Telegram refused the command menu (%s); running without it", refused)


async def set_dashboard_menu(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """With a public URL, the menu button opens the dashboard; a refusal is logged."""
    assert isinstance(application, CspApplication)
    url = application.services.settings.app_url
    if url is None:
        return
    menu = MenuButtonWebApp(DASHBOARD_LABEL.removeprefix("📊 "), WebAppInfo(url))
    try:
        await application.bot.set_chat_menu_button(menu_button=menu)
    except TelegramError as refused:
        log.warning(
            "Telegram refused the dashboard's menu button (%s); running without it", refused
        )
