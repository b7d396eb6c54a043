"""One failing update must not stop the bot: log it, tell the user honestly, serve the next.

Honestly means: if a change from this update was committed before the failure, the user is
told it was saved (and need not send it again); only when nothing was stored do they hear
that it did not go through. `note_writes` runs first for every update to make that known.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import Update
from telegram.error import TelegramError

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.replies import send
from csp_bot.models.db import committed_writes, track_writes

log = logging.getLogger(__name__)


async def note_writes(update: Update, context: Ctx) -> None:
    """Start noting what this update commits (handler group before all others)."""
    track_writes()


async def on_error(update: object, context: Ctx) -> None:
    """Log the failure with its traceback and tell the user whether anything was stored."""
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    template = "saved_but_failed.html" if committed_writes() else "apology.html"
    if update.callback_query is not None:
        # The handler may have answered the query already; a second answer is refused.
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()
    try:
        await send(update, context, template)
    except TelegramError:
        log.warning("could not tell the user what happened", exc_info=True)
