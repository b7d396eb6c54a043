"""The board's commands: /summary (the exception summary) and /report (the board paper).

Both also work in the board's group chat, where the answer goes to the group.

/summary answers with one short message, the first screen: the counts and the actions that
need the board. Its buttons turn that message into a section (exceptions, priorities,
funding, meetings, returns) and back, editing it in place: the chat keeps one summary, the
one last asked for, however many sections are read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from markupsafe import Markup
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.ext import BaseHandler

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.guard import button as guarded_button
from csp_bot.handlers.guard import command, refuse_forged
from csp_bot.handlers.keyboards import button, dashboard_button, keyboard, number, pager
from csp_bot.handlers.replies import (
    MESSAGE_LIMIT,
    acknowledge,
    edit_in_place,
    send,
    send_text,
    split_message,
)
from csp_bot.handlers.report import PaperFiles, release_freed_memory, render_paper_files
from csp_bot.handlers.status import in_private
from csp_bot.handlers.templating import Templates
from csp_bot.models.errors import NotFound
from csp_bot.models.summary import BoardSummary, board_paper

# Items each section's lists show; the counts stay whole and /report has every item.
LIST_LIMIT = 10
# The first screen lists this many of the actions off track or overdue: it is read on a
# phone, and the Exceptions section has the rest. No more than LIST_LIMIT (see
# `BoardSummary.off_track_or_overdue`).
FIRST_SCREEN_LIMIT = 5
MORE_WHOLE_PLAN = " /summary CODE shows one priority; /report has them all."
MORE_ONE_PRIORITY = " /report has them all."
# What a section's page may take of a message, leaving room for its "Page 2 of 3" line.
PAGE_ROOM = MESSAGE_LIMIT - 40

SUMMARY = "sm"
FIRST_SCREEN = "top"


@dataclass(frozen=True)
class Section:
    """A section of the summary behind a button of the first screen."""

    key: str
    label: str
    template: str


SECTIONS = {
    section.key: section
    for section in (
        Section("exc", "🔴 Exceptions", "summary_exceptions.html"),
        Section("pri", "📊 By priority", "summary_priorities.html"),
        Section("fun", "💷 Funding", "summary_funding.html"),
        Section("mtg", "📅 Meetings", "summary_meetings.html"),
        Section("ret", "📭 Returns", "summary_returns.html"),
    )
}


@dataclass(frozen=True)
class Screen:
    """What a summary button asks for: a section (or the first screen), a scope, a page.

    Its callback data is `sm:SECTION:PAGE`, or `sm:SECTION:CODE:PAGE` for one priority."""

    key: str
    code: str | None
    page: int


async def summary_command(update: Update, context: Ctx) -> None:
    """`/summary [CODE]`: the first screen of the exception summary, for the plan or for one
    priority, with a button for each section."""
    code = context.args[0] if context.args else None
    try:
        summary = await read_summary(context, code)
    except NotFound as unknown:
        await send(update, context, "problem.html", problem=str(unknown))
        return
    text, markup = first_screen(context.templates, summary, dashboard=_dashboard(update, context))
    await send_text(update, context, text, keyboard=markup)


async def on_summary_button(update: Update, context: Ctx) -> None:
    """A section button, a page of a section or Back: the message becomes that screen, read
    now (so a button pressed days later shows today's figures)."""
    query = update.callback_query
    assert query is not None
    screen = pressed(query.data)
    if screen is None:
        await refuse_forged(update, context)
        return
    try:
        summary = await read_summary(context, screen.code)
    except NotFound:  # the priority has left the plan since the button was sent
        await refuse_forged(update, context)
        return
    await acknowledge(query)
    if screen.key == FIRST_SCREEN:
        text, markup = first_screen(
            context.templates, summary, dashboard=_dashboard(update, context)
        )
    else:
        text, markup = section_page(context.templates, summary, SECTIONS[screen.key], screen.page)
    await edit_in_place(query, text, markup)


def pressed(data: str | None) -> Screen | None:
    """The screen a button's data asks for, or None for data no summary button carries."""
    pieces = (data or "").split(":")
    if len(pieces) not in (3, 4) or pieces[0] != SUMMARY or not all(pieces):
        return None
    key, *scope, page = pieces[1:]
    page_number = number(page)
    if key not in (*SECTIONS, FIRST_SCREEN) or page_number is None:
        return None
    return Screen(key, scope[0] if scope else None, page_number)


async def read_summary(context: Ctx, code: str | None) -> BoardSummary:
    """The summary as it stands, from the cache while nothing it shows has changed: the
    first screen and every section are one read."""
    return await context.db.run(
        context.services.summaries.summary,
        at=context.now(),
        quiet_after=context.quiet_after,
        code=code,
        shown=LIST_LIMIT,
    )


def first_screen(
    templates: Templates,
    summary: BoardSummary,
    *,
    dashboard: Sequence[InlineKeyboardButton] = (),
) -> tuple[str, InlineKeyboardMarkup]:
    """The first screen's text and its section buttons, two to a row, then the row that
    opens the dashboard (when there is one)."""
    text = templates.render("summary.html", s=summary, limit=FIRST_SCREEN_LIMIT)
    buttons = [
        button(section.label, *_data(summary, section.key, 0)) for section in SECTIONS.values()
    ]
    rows = [buttons[start : start + 2] for start in range(0, len(buttons), 2)]
    return text, keyboard([*rows, dashboard])


def _dashboard(update: Update, context: Ctx) -> list[InlineKeyboardButton]:
    return dashboard_button(context.settings.app_url, private=in_private(update))


def section_page(
    templates: Templates, summary: BoardSummary, section: Section, page: int
) -> tuple[str, InlineKeyboardMarkup]:
    """One page of a section, with Previous and Next when it has several, and Back."""
    pages = section_pages(templates, summary, section)
    # A page beyond the last: the section has grown shorter since the button was sent.
    page = min(page, len(pages) - 1)
    text = pages[page]
    if len(pages) > 1:
        # Already rendered (and escaped) HTML: marked safe so it is not escaped again.
        text = templates.render("summary_page.html", text=Markup(text), page=page, pages=len(pages))
    rows = [
        pager(page, len(pages), *_data(summary, section.key)),
        [button("‹ Back", *_data(summary, FIRST_SCREEN, 0))],
    ]
    return text, keyboard(rows)


def section_pages(templates: Templates, summary: BoardSummary, section: Section) -> list[str]:
    """A section's text, cut into pages that each fit a message."""
    more = MORE_WHOLE_PLAN if summary.scope is None else MORE_ONE_PRIORITY
    text = templates.render(section.template, s=summary, limit=LIST_LIMIT, more=more)
    return split_on_pieces(text, PAGE_ROOM)


def _data(summary: BoardSummary, key: str, *page: int) -> tuple[str | int, ...]:
    """A summary button's callback data: the page goes last, where `pager` adds it."""
    scope = () if summary.scope is None else (summary.scope.code,)
    return (SUMMARY, key, *scope, *page)


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
    loop = asyncio.get_running_loop()
    files = await loop.run_in_executor(PAPER_THREAD, render_paper_files, paper, context.templates)
    await _send_files(update, context, files)
    del paper, files
    release_freed_memory()


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
    if files.figures_csv is not None:
        await context.bot.send_document(
            chat.id,
            document=files.figures_csv,
            filename=files.figures_name,
            caption=render("report_figures_caption.html", paper=files.paper),
        )


# Papers are laid out in one thread of their own: glibc keeps freed memory per thread, so
# each paper reuses what the last one freed rather than a new thread taking more.
PAPER_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="csp-paper")


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [
    command("summary", summary_command),
    command("report", report_command),
    # Checked as /summary itself when pressed: who may read it, and in which group.
    guarded_button(rf"^{SUMMARY}:", "summary", on_summary_button),
]
