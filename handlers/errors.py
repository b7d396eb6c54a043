"""One failing update must not stop the bot: log it, apologise, serve the next."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError

from bot.context import Ctx
from handlers.replies import send

log = logging.getLogger(__name__)


async def on_error(update: object, context: Ctx) -> None:
    """Log the failure with its traceback and tell the user that nothing went through."""
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer()
        await send(update, context, "apology.html")
    except TelegramError:
        log.warning("could not send the apology", exc_info=True)
