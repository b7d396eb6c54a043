"""Every handler, registered in one place and in a visible order (first match wins)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, MessageHandler, filters

from csp_bot.bot.context import Ctx
from csp_bot.handlers import (
    deadlines,
    fallback,
    funding,
    meetings,
    members,
    membership,
    progress,
    reminders,
    status,
    summary,
)
from csp_bot.handlers.forms import typed_answers


def all_handlers() -> list[BaseHandler[Update, Ctx, None]]:
    """Feature handlers first; the fallbacks that answer anything must come last."""
    return [
        # progress first: its `/start update` deep link must win over plain /start
        *progress.HANDLERS,
        *status.HANDLERS,
        *summary.HANDLERS,
        *membership.HANDLERS,
        *meetings.HANDLERS,
        *funding.HANDLERS,
        *deadlines.HANDLERS,
        *reminders.HANDLERS,
        *members.HANDLERS,
        *fallback.HANDLERS,
    ]


def first_look_handlers() -> list[BaseHandler[Update, Ctx, None]]:
    """Handlers that see every private message before the ones above (handler group -1):
    an open /meeting or /decide form takes its typed answers here and stops them there."""
    answers = typed_answers([meetings.MEETING_FORM, funding.DECIDE_FORM])
    return [MessageHandler(filters.ChatType.PRIVATE & filters.TEXT, answers)]
