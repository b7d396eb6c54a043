"""Sending what the templates render: split to Telegram's limits, HTML parse mode."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import ExtBot

from csp_bot.handlers.context import Ctx

MESSAGE_LIMIT = 4096
NOT_MODIFIED = "message is not modified"
QUERY_GONE = "query id is invalid"

log = logging.getLogger(__name__)


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut `text` into messages of at most `limit` characters, on line boundaries.

    Templates keep each HTML tag within one line, so cutting between lines never splits a tag.
    A single line longer than the limit is cut hard as a last resort. Blank lines before
    the first text of a message are dropped. Each message's lines are joined once, when it
    is full: joining line by line copied the message so far for every line of it.
    """
    chunks: list[str] = []
    current: list[str] = []  # the lines of the message being filled
    length = 0  # of those lines joined
    for line in text.split("\n"):
        while len(line) > limit:
            if length:
                chunks.append("\n".join(current))
            current, length = [], 0
            chunks.append(line[:limit])
            line = line[limit:]
        if not length:  # nothing written yet: the line starts the message
            current, length = [line], len(line)
        elif length + 1 + len(line) > limit:
            chunks.append("\n".join(current))
            current, length = [line], len(line)
        else:
            current.append(line)
            length += 1 + len(line)
    last = "\n".join(current)
    if last.strip() or not chunks:
        chunks.append(last)
    return chunks


async def send(
    update: Update,
    context: Ctx,
    template: str,
    *,
    keyboard: InlineKeyboardMarkup | None = None,
    **values: Any,
) -> Message:
    """Render `template` into the update's chat; a keyboard goes on the last part."""
    text = context.templates.render(template, **values)
    return await send_text(update, context, text, keyboard=keyboard)


async def send_text(
    update: Update, context: Ctx, text: str, *, keyboard: InlineKeyboardMarkup | None = None
) -> Message:
    """Send already rendered HTML, split over several messages when it is too long."""
    chat = update.effective_chat
    assert chat is not None, "every handled update has a chat"
    parts = split_message(text)
    for part in parts[:-1]:
        await send_leading_part(context.bot, chat.id, part)
    return await context.bot.send_message(chat.id, parts[-1], reply_markup=keyboard)


async def send_leading_part(bot: ExtBot[None], chat_id: int, text: str) -> None:
    """Send a part of a long message as `bot.send_message(chat_id, text)` would, with the
    bot's defaults, leaving Telegram's answer unread.

    The library reads every answer back into a `Message`, each entity of its text an
    object; nothing looks at the parts before the last, and for them that reading was more
    than half of sending (4.8 ms of 8.6 ms for a 4,000-character part with 99 entities, on
    a slow machine), with up to seven parts to a `/my`. `_post` is the library's own step
    before the reading, with its errors and its defaults.
    """
    defaults = bot.defaults
    assert defaults is not None, "set by build_application"
    message = {
        "chat_id": chat_id,
        "text": text,
        "parse_mode": defaults.parse_mode,
        "link_preview_options": defaults.link_preview_options,
    }
    await bot._post("sendMessage", message)


async def acknowledge(query: CallbackQuery) -> None:
    """Stop the button's spinner. Telegram refuses a second answer to the same press (the
    press handled again after a restart); the first one went, so that is no failure."""
    try:
        await query.answer()
    except BadRequest as refused:
        if QUERY_GONE not in refused.message.lower():
            raise
        log.info("press %s was answered already", query.id)


async def edit_in_place(
    query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    """Turn the pressed message into `text`. Telegram refusing it as "not modified" means
    the edit was made already: the same press handled again after a restart."""
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as refused:
        if NOT_MODIFIED not in refused.message.lower():
            raise
        log.info("message %s already shows that", query.message and query.message.message_id)


class ShownMessage(Protocol):
    """Where a guided step's buttons were last shown (drafts remember it)."""

    @property
    def chat_id(self) -> int | None: ...

    @property
    def message_id(self) -> int | None: ...


async def remove_buttons(context: Ctx, shown: ShownMessage) -> None:
    """Take the buttons off a message, so an old question cannot be answered again."""
    if shown.chat_id is None or shown.message_id is None:
        return
    try:
        await context.bot.edit_message_reply_markup(
            shown.chat_id, shown.message_id, reply_markup=None
        )
    except BadRequest:
        log.info("buttons already gone from message %s", shown.message_id)
