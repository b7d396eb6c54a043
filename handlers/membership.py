"""Joining and knowing yourself: /start [code], /help, /whoami."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler

from bot.context import Ctx
from handlers.guard import command, refuse_outsider
from handlers.policy import commands_for
from handlers.replies import send
from models.membership import InviteError, MemberView, redeem_invite


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
            name=user.full_name,
            at=context.services.clock(),
        )
    except InviteError as refused:
        days = context.settings.invite_days
        await send(update, context, "invite_refused.html", reason=str(refused), days=days)
        return
    await greet(update, context, member, new=True)


async def greet(update: Update, context: Ctx, member: MemberView, *, new: bool) -> None:
    """Welcome a member by name with the commands their role may use."""
    commands = commands_for(member.role)
    await send(update, context, "welcome.html", member=member, new=new, commands=commands)


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
