"""The board's commands: /summary (the exception summary) and /report (the board paper).

Both also work in the board's group chat, where the answer goes to the group.
"""

from __future__ import annotations

import asyncio

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import BaseHandler

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.guard import command
from csp_bot.handlers.replies import MESSAGE_LIMIT, send, send_text, split_message
from csp_bot.handlers.report import PaperFiles, render_paper_files
from csp_bot.models.errors import NotFound
from csp_bot.models.summary import board_paper

# Items each list shows in chat; the counts stay whole and /report has every item. A group
# may receive 20 messages a minute, so a summary must stay a few messages long.
LIST_LIMIT = 10
MORE = " /summary CODE shows one priority; /report has them all."


async def summary_command(update: Update, context: Ctx) -> None:
    """`/summary [CODE]`: the exception summary for the plan, or for one priority."""
    code = context.args[0] if context.args else None
    try:
        summary = await context.db.run(
            context.services.summaries.summary,
            at=context.now(),
            quiet_after=context.quiet_after,
            code=code,
            shown=LIST_LIMIT,
        )
    except NotFound as unknown:
        await send(update, context, "problem.html", problem=str(unknown))
        return
    text = context.templates.render("summary.html", s=summary, limit=LIST_LIMIT, more=MORE)
    for part in split_on_pieces(text):
        await send_text(update, context, part)


def split_on_pieces(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut `text` into messages at blank lines, so no item is cut in two.

    A piece longer than a message on its own is cut on line boundaries instead.
    """
    messages: list[str] = []
    current = ""
    for piece in text.split("\n\n"):
        candidate = f"{current}\n\n{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            messages.append(current)
        *whole, current = split_message(piece, limit)
        messages.extend(whole)
    if current:
        messages.append(current)
    return messages


async def report_command(update: Update, context: Ctx) -> None:
    """`/report`: the board paper (HTML), every action (CSV) and the RAG chart (picture)."""
    chat = update.effective_chat
    assert chat is not None
    await context.bot.send_chat_action(chat.id, ChatAction.UPLOAD_DOCUMENT)
    paper = await context.db.run(board_paper, at=context.now(), quiet_after=context.quiet_after)
    # Drawing the chart and rendering the paper take a while: off the event loop.
    files = await asyncio.to_thread(render_paper_files, paper, context.templates)
    await _send_files(update, context, files)


async def _send_files(update: Update, context: Ctx, files: PaperFiles) -> None:
    chat = update.effective_chat
    assert chat is not None
    render = context.templates.render
    await context.bot.send_document(
        chat.id,
        document=files.html,
        filename=files.name("html"),
        caption=render("report_paper_caption.html", paper=files.paper),
    )
    await context.bot.send_document(
        chat.id,
        document=files.csv,
        filename=files.name("csv"),
        caption=render("report_csv_caption.html", paper=files.paper),
    )
    await context.bot.send_photo(
        chat.id,
        photo=files.png,
        filename=files.name("png"),
        caption=render("report_chart_caption.html", paper=files.paper),
    )


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [
    command("summary", summary_command),
    command("report", report_command),
]
