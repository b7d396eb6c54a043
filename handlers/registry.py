"""Every handler, registered in one place and in a visible order (first match wins)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler

from bot.context import Ctx
from handlers import fallback, membership, progress, status


def all_handlers() -> list[BaseHandler[Update, Ctx, None]]:
    """Feature handlers first; the fallbacks that answer anything must come last."""
    return [
        # progress first: its `/start update` deep link must win over plain /start
        *progress.HANDLERS,
        *status.HANDLERS,
        *membership.HANDLERS,
        *fallback.HANDLERS,
    ]
