"""Group chats: /link by the coordinator, the bot being added to or removed from a group,
and what the bot ignores there (channel posts, commands addressed to another bot).

What the bot answers in a group is decided once, for every command and button, by
`handlers.guard` from the group's link (`models.groups`).
"""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.constants import ChatMemberStatus
from telegram.ext import BaseHandler, ChatMemberHandler, MessageHandler, filters

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.guard import GROUPS, command, load_member
from csp_bot.handlers.replies import send
from csp_bot.models.access import COORDINATOR
from csp_bot.models.audit import Actor
from csp_bot.models.errors import DomainError, NotFound
from csp_bot.models.groups import link_group, parse_audience, unlink_group
from csp_bot.models.limits import TITLE, fitted

log = logging.getLogger(__name__)

PRESENT = frozenset({ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR})


async def link_command(update: Update, context: Ctx) -> None:
    """`/link board|partnership` in a group: the bot answers there, for that audience."""
    chat = update.effective_chat
    assert chat is not None
    if chat.type not in GROUPS:
        await send(update, context, "link_in_group.html")
        return
    try:
        audience = parse_audience(context.args[0] if context.args else "")
    except DomainError:
        await send(update, context, "link_in_group.html")
        return
    linked = await context.db.run(
        link_group,
        chat_id=chat.id,
        audience=audience,
        title=fitted(chat.title or "", limit=TITLE),
        at=context.now(),
        actor=Actor.member(context.acting_member.id),
    )
    await send(update, context, "group_linked.html", group=linked)


async def on_my_chat_member(update: Update, context: Ctx) -> None:
    """The bot was added to a group (only the coordinator may do that: anyone else's group
    is left at once), or removed from one (its link goes)."""
    change = update.my_chat_member
    assert change is not None
    if change.chat.type not in GROUPS:
        return
    was, now = change.old_chat_member.status, change.new_chat_member.status
    if now in PRESENT and was not in PRESENT:
        await _added(update, context)
    elif now not in PRESENT and was in PRESENT:
        await _removed(update, context)


async def _added(update: Update, context: Ctx) -> None:
    change = update.my_chat_member
    assert change is not None
    member = await load_member(update, context)
    chat_id = change.chat.id
    if member is not None and member.role in COORDINATOR:
        await context.bot.send_message(
            chat_id, context.templates.render("group_added.html", name=member.name)
        )
        return
    log.warning(
        "left group %s: added by user %s, not the coordinator", chat_id, change.from_user.id
    )
    await context.bot.send_message(chat_id, context.templates.render("group_leaving.html"))
    await context.bot.leave_chat(chat_id)


async def _removed(update: Update, context: Ctx) -> None:
    """A group the bot is no longer in keeps no link: added back, it must be linked again."""
    change = update.my_chat_member
    assert change is not None
    member = await load_member(update, context)
    actor = Actor.member(member.id) if member is not None else Actor("telegram")
    try:
        await context.db.run(unlink_group, chat_id=change.chat.id, at=context.now(), actor=actor)
    except NotFound:
        return


class _ToAnotherBot(filters.MessageFilter):
    """A command addressed to another bot in the chat (`/status@otherbot`)."""

    def filter(self, message: Message) -> bool:
        word = (message.text or "").split(maxsplit=1)[0] if message.text else ""
        _, at, name = word.partition("@")
        return bool(at) and name.lower() != (message.get_bot().username or "").lower()


async def ignore(update: Update, context: Ctx) -> None:
    """Say nothing: the update is not for this bot."""


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [
    # Channels get no replies: a post is not a person asking.
    MessageHandler(filters.UpdateType.CHANNEL_POSTS, ignore),
    MessageHandler(filters.COMMAND & _ToAnotherBot(), ignore),
    ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER),
    command("link", link_command),
]
