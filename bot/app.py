"""Building the Application: services, handlers, defaults and the command menu."""

from __future__ import annotations

import gc
import logging
from typing import Any

from telegram import BotCommand, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, ContextTypes, Defaults
from telegram.request import BaseRequest

from bot.context import CspApplication, Ctx, Services
from handlers.errors import on_error
from handlers.policy import COMMANDS
from handlers.registry import all_handlers, first_look_handlers
from scheduler.jobs import install_reminder_jobs

log = logging.getLogger(__name__)
# Handler group that runs before the features (which are in group 0).
FIRST_LOOK = -1


def build_application(
    services: Services,
    *,
    token: str,
    base_url: str | None = None,
    request: BaseRequest | None = None,
    updates_request: BaseRequest | None = None,
    rate_limit: bool = True,
) -> CspApplication:
    """The bot, ready to initialise: every handler registered, menu set at start."""
    builder = (
        ApplicationBuilder()
        .application_class(CspApplication, kwargs={"services": services})
        .token(token)
        .context_types(ContextTypes(context=Ctx))
        .defaults(default_settings(services))
        .post_init(on_start)
    )
    if base_url is not None:
        builder = builder.base_url(base_url)
    if request is not None:
        builder = builder.request(request)
    if updates_request is not None:
        builder = builder.get_updates_request(updates_request)
    if rate_limit:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=3))  # type: ignore[arg-type]
    application = builder.build()
    assert isinstance(application, CspApplication)
    application.add_handlers(first_look_handlers(), group=FIRST_LOOK)
    application.add_handlers(all_handlers())
    application.add_error_handler(on_error)
    install_reminder_jobs(application)
    return application


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
