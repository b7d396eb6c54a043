"""Every handler, registered in one place and in a visible order (first match wins)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler

from bot.context import Ctx
from handlers import fallback, membership


def all_handlers() -> list[BaseHandler[Update, Ctx, None]]:
    """Feature handlers first; the fallbacks that answer anything must come last."""
    return [
        *membership.HANDLERS,
        *fallback.HANDLERS,
    ]
