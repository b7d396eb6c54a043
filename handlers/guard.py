"""Applies `handlers.policy` to every handler: registration goes through here."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler
from telegram.ext.filters import BaseFilter

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.keyboards import unreadable
from csp_bot.handlers.policy import may_use, spec
from csp_bot.handlers.replies import send
from csp_bot.models.access import COORDINATOR
from csp_bot.models.groups import group_audience
from csp_bot.models.membership import MemberView, get_member

log = logging.getLogger(__name__)

Callback = Callable[[Update, Ctx], Coroutine[Any, Any, None]]

GROUPS = frozenset({ChatType.GROUP, ChatType.SUPERGROUP})
LINK = "link"
# Commands whose only reply in a group points to a private chat: no plan data is shown,
# so a group's audience does not limit them.
TO_PRIVATE_CHAT = frozenset({"update", "meeting", "decide", "members"})


async def load_member(update: Update, context: Ctx) -> MemberView | None:
    """The active member who sent this update, or None."""
    if context.member_known:
        return context.member
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
        refusal = await group_refusal(update, context, member, command)
        if refusal is not None:
            await refuse_in_group(update, context, refusal, command)
        elif member is None and not may_use(None, command):
            await refuse_outsider(update, context)
        elif member is not None and not may_use(member.role, command):
            await refuse_role(update, context, command=command, member=member)
        else:
            await callback(update, context)

    return run_if_allowed


async def group_refusal(
    update: Update, context: Ctx, member: MemberView | None, command: str
) -> str | None:
    """In a group chat: the template that refuses `command` there, or None to go on.

    Only linked groups get answers, only their members get them, and only what the group's
    audience may see; the coordinator's /link is how a group comes to be linked."""
    chat = update.effective_chat
    if chat is None or chat.type not in GROUPS:
        return None
    if member is None:
        return "group_not_set_up.html"
    if command == LINK and member.role in COORDINATOR:
        return None
    audience = await context.db.run(group_audience, chat_id=chat.id)
    if audience is None:
        return "group_not_set_up.html"
    if not may_use(member.role, command):
        return None  # refused for their own role, as anywhere
    if command not in TO_PRIVATE_CHAT and not may_use(audience.role, command):
        return "group_not_shown.html"
    return None


async def refuse_in_group(update: Update, context: Ctx, template: str, command: str) -> None:
    """One line and nothing else: on a button as its notice, else as a message."""
    text = context.templates.render(template, command=command)
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    else:
        await send(update, context, template, command=command)


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
        if query is not None and unreadable(query.data):
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
