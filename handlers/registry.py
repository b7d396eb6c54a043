"""Every handler, registered in one place and in a visible order (first match wins)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler

from csp_bot.handlers import (
    absence,
    deadlines,
    fallback,
    funding,
    groups,
    measures,
    meetings,
    members,
    membership,
    owners,
    progress,
    reminders,
    status,
    summary,
)
from csp_bot.handlers.context import Ctx
from csp_bot.handlers.dialogue import Dialogues


def dialogues() -> Dialogues:
    """Every guided dialogue: the one way their typed answers and buttons reach them."""
    return Dialogues(
        [
            progress.UPDATE,
            meetings.MEETING_FORM,
            funding.DECIDE_FORM,
            measures.FIGURE_FORM,
            absence.AWAY_FORM,
        ]
    )


def all_handlers() -> list[BaseHandler[Update, Ctx, None]]:
    """Feature handlers first; the fallbacks that answer anything must come last."""
    return [
        # ignored updates (channel posts, other bots' commands) before anything answers
        *groups.HANDLERS,
        # progress first: its `/start update` deep link must win over plain /start
        *progress.HANDLERS,
        *dialogues().handlers(),
        *status.HANDLERS,
        *summary.HANDLERS,
        *membership.HANDLERS,
        *meetings.HANDLERS,
        *funding.HANDLERS,
        *measures.HANDLERS,
        *deadlines.HANDLERS,
        *reminders.HANDLERS,
        *members.HANDLERS,
        *owners.HANDLERS,
        *absence.HANDLERS,
        *fallback.HANDLERS,
    ]


def first_look_handlers() -> list[BaseHandler[Update, Ctx, None]]:
    """Handlers that see every private message before the ones above (handler group -1):
    an open dialogue takes its typed answers here and stops them there. An edited message
    stops here before any of them."""
    return [fallback.EDITS, *dialogues().first_look_handlers()]
