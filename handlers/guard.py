"""Applies `handlers.policy` to every handler: registration goes through here."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler
from telegram.ext.filters import BaseFilter

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.keyboards import oversized
from csp_bot.handlers.policy import may_use, spec
from csp_bot.handlers.replies import send
from csp_bot.models.membership import MemberView, get_member

log = logging.getLogger(__name__)

Callback = Callable[[Update, Ctx], Coroutine[Any, Any, None]]


async def load_member(update: Update, context: Ctx) -> MemberView | None:
    """The active member who sent this update, or None."""
    user = update.effective_user
    if user is None:
        return None
    return await context.db.run(get_member, telegram_id=user.id)


def guarded(command: str, callback: Callback) -> Callback:
    """Wrap `callback` so it runs only for those the policy lets use `command`."""
    spec(command)  # fails at start-up for a command missing from the policy

    @functools.wraps(callback)
    async def run_if_allowed(update: Update, context: Ctx) -> None:
        member = await load_member(update, context)
        context.member = member
        if member is None and not may_use(None, command):
            await refuse_outsider(update, context)
        elif member is not None and not may_use(member.role, command):
            await refuse_role(update, context, command=command, member=member)
        else:
            await callback(update, context)

    return run_if_allowed


async def refuse_outsider(update: Update, context: Ctx) -> None:
    """The polite reply to anyone who is not a member: how to join, and no plan data."""
    if update.callback_query is not None:
        await update.callback_query.answer("Only partnership members can use this bot.")
    user = update.effective_user
    await send(update, context, "not_member.html", name=user.first_name if user else "")


async def refuse_role(update: Update, context: Ctx, *, command: str, member: MemberView) -> None:
    """Tell a member their role may not use this command."""
    if update.callback_query is not None:
        await update.callback_query.answer("Not available to your role.", show_alert=True)
    await send(update, context, "refused.html", command=command, role=member.role)


def command(
    name: str, callback: Callback, *, policy: str | None = None, only: BaseFilter | None = None
) -> BaseHandler[Update, Ctx, None]:
    """A guarded `/name` handler; `policy` names the command whose rule applies, if another."""
    return CommandHandler(name, guarded(policy or name, callback), filters=only)


def button(pattern: str, command_name: str, callback: Callback) -> BaseHandler[Update, Ctx, None]:
    """A guarded handler for inline-button presses whose data matches `pattern`: checked
    like `command_name` when pressed, and refused as expired if no button could carry it."""
    checked = guarded(command_name, callback)

    @functools.wraps(callback)
    async def if_well_formed(update: Update, context: Ctx) -> None:
        query = update.callback_query
        if query is not None and oversized(query.data):
            await refuse_forged(update, context)
        else:
            await checked(update, context)

    return CallbackQueryHandler(if_well_formed, pattern=pattern)


async def refuse_forged(update: Update, context: Ctx) -> None:
    """Callback data the bot never made (malformed, oversized, forged) or no longer offers:
    "that button has expired", and a log line naming who sent it. Every button of the bot
    ends here when its data does not check out, so nothing of it reaches a query."""
    query = update.callback_query
    assert query is not None
    data = (query.data or "")[:80]  # a forged payload is not copied whole into the log
    log.warning("refused callback data %r from user %s", data, query.from_user.id)
    await query.answer(context.templates.render("button_expired.html"), show_alert=True)
