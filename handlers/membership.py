"""Joining and knowing yourself: /start [code], /help, /whoami."""

from __future__ import annotations

import logging

from telegram import BotCommand, BotCommandScopeChat, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import BaseHandler

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.guard import command, refuse_outsider
from csp_bot.handlers.policy import CommandSpec, commands_for
from csp_bot.handlers.replies import send
from csp_bot.models.limits import NAME, fitted
from csp_bot.models.membership import (
    InviteError,
    MemberView,
    RejoinRefused,
    note_rejoin_refused,
    redeem_invite,
)

log = logging.getLogger(__name__)


async def start(update: Update, context: Ctx) -> None:
    """Redeem an invite code, or greet a member with what they can do."""
    code = context.args[0] if context.args else None
    if code is not None:
        await join_with_code(update, context, code)
    elif context.member is not None:
        await greet(update, context, context.member, new=False)
    else:
        await refuse_outsider(update, context)


async def join_with_code(update: Update, context: Ctx, code: str) -> None:
    """Register the sender with the invite; a bad code registers nothing."""
    user = update.effective_user
    assert user is not None
    try:
        member = await context.db.run(
            redeem_invite,
            code=code,
            telegram_id=user.id,
            name=fitted(user.full_name, limit=NAME),
            at=context.services.clock(),
        )
    except RejoinRefused as refused:
        await refuse_rejoin(update, context, refused)
        return
    except InviteError as refused:
        days = context.settings.invite_days
        await send(update, context, "invite_refused.html", reason=str(refused), days=days)
        return
    await greet(update, context, member, new=True)


async def refuse_rejoin(update: Update, context: Ctx, refused: RejoinRefused) -> None:
    """A deactivated member used an invite: they are not let back; the coordinators are told."""
    days = context.settings.invite_days
    await send(update, context, "invite_refused.html", reason="deactivated", days=days)
    coordinators = await context.db.run(
        note_rejoin_refused, refused=refused, at=context.services.clock()
    )
    text = context.templates.render("rejoin_refused_notice.html", member=refused.member)
    for coordinator in coordinators:
        try:
            await context.bot.send_message(coordinator.telegram_id, text)
        except TelegramError as failed:
            log.warning(
                "could not tell coordinator %s of a refused rejoin: %s", coordinator.id, failed
            )


async def greet(update: Update, context: Ctx, member: MemberView, *, new: bool) -> None:
    """Welcome a member by name with the commands their role may use."""
    commands = commands_for(member.role)
    await send(update, context, "welcome.html", member=member, new=new, commands=commands)
    await set_chat_menu(update, context, commands)


async def set_chat_menu(update: Update, context: Ctx, commands: list[CommandSpec]) -> None:
    """Show this member's own commands in their chat's menu; a refusal changes nothing else."""
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        return
    menu = [BotCommand(spec.name, spec.summary) for spec in commands]
    try:
        await context.bot.set_my_commands(menu, scope=BotCommandScopeChat(chat.id))
    except TelegramError as refused:
        log.warning("could not set the command menu for chat %s: %s", chat.id, refused)


async def help_command(update: Update, context: Ctx) -> None:
    """List this member's commands, one line each, and the no-case-data rule."""
    member = context.acting_member
    await send(update, context, "help.html", member=member, commands=commands_for(member.role))


async def whoami(update: Update, context: Ctx) -> None:
    """Show the member's name, organisation and role."""
    await send(update, context, "whoami.html", member=context.acting_member)


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [
    command("start", start),
    command("help", help_command),
    command("whoami", whoami),
]
