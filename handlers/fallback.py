"""What answers when nothing else does: unknown commands, stray text, stale buttons."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    MessageHandler,
    filters,
)

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.guard import (
    group_refusal,
    load_member,
    refuse_forged,
    refuse_in_group,
    refuse_outsider,
)
from csp_bot.handlers.replies import send


async def unknown_command(update: Update, context: Ctx) -> None:
    """A command no handler took: a short hint and /help (outsiders: how to join)."""
    member = await load_member(update, context)
    refusal = await group_refusal(update, context, member, "help")
    if refusal is not None:
        await refuse_in_group(update, context, refusal, "help")
        return
    if member is None:
        await refuse_outsider(update, context)
        return
    message = update.effective_message
    typed = (message.text or "").split()[0] if message and message.text else "that command"
    await send(update, context, "unknown_command.html", command=typed.split("@")[0])


async def anything_else(update: Update, context: Ctx) -> None:
    """Any other private message: outsiders learn how to join, members get a pointer to /help."""
    if await load_member(update, context) is None:
        await refuse_outsider(update, context)
    else:
        await send(update, context, "not_understood.html")


async def files_refused(update: Update, context: Ctx) -> None:
    """Photos and files are never taken: the bot holds no case documents."""
    if await load_member(update, context) is None:
        await refuse_outsider(update, context)
    else:
        await send(update, context, "files_refused.html")


async def edited_message(update: Update, context: Ctx) -> None:
    """An edited message: nothing in it is taken, since what it first said may be stored."""
    message = update.edited_message
    assert message is not None
    # In groups the bot answers commands only, as with new messages.
    if message.chat.type == ChatType.PRIVATE or (message.text or "").startswith("/"):
        if await load_member(update, context) is None:
            await refuse_outsider(update, context)
        else:
            await send(update, context, "edit_not_taken.html")
    raise ApplicationHandlerStop  # nor does any dialogue or command see it


# Seen before the dialogues and the commands (handler group -1).
EDITS = MessageHandler(filters.UpdateType.EDITED_MESSAGE, edited_message)


async def stale_button(update: Update, context: Ctx) -> None:
    """A button no handler took (an old or forged one): say so, do nothing else."""
    member = await load_member(update, context)
    refusal = await group_refusal(update, context, member, "help")
    if refusal is not None:
        await refuse_in_group(update, context, refusal, "help")
        return
    if member is None:
        await refuse_outsider(update, context)
        return
    await refuse_forged(update, context)


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [
    MessageHandler(filters.COMMAND, unknown_command),
    MessageHandler(filters.ChatType.PRIVATE & filters.ATTACHMENT, files_refused),
    # In groups the bot only answers commands, so the chat is not filled with replies.
    MessageHandler(filters.ChatType.PRIVATE & ~filters.COMMAND, anything_else),
    CallbackQueryHandler(stale_button),
]
