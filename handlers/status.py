"""Where things stand: /action, /history, /status and /priority (also in group chats)."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.ext import BaseHandler

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.guard import button as guarded_button
from csp_bot.handlers.guard import command, refuse_forged
from csp_bot.handlers.keyboards import (
    button,
    dashboard_button,
    keyboard,
    number,
    pager,
    parts,
)
from csp_bot.handlers.replies import acknowledge, edit_in_place, send, send_text
from csp_bot.handlers.templating import Templates
from csp_bot.models.errors import NotFound
from csp_bot.models.measures import priority_measures, rag_counts
from csp_bot.models.progress import (
    UnknownAction,
    UpdateView,
    action_updates,
    find_action,
    priority_actions,
    status_overview,
)

RECENT_UPDATES = 5
HISTORY_PAGE = 5
# What a page's updates may take of Telegram's 4096 characters, leaving room for its heading.
HISTORY_ROOM = 3900
# The most updates /history pages through (an action gets a few a month).
HISTORY_MOST = 2000


def _argument(context: Ctx) -> str | None:
    return context.args[0] if context.args else None


async def action_command(update: Update, context: Ctx) -> None:
    """`/action REF`: the action in full with its last five updates."""
    ref = _argument(context)
    if ref is None:
        await send(update, context, "usage.html", usage="/action REF", example="/action SOC-1")
        return
    await show_action(update, context, ref)


async def show_action(update: Update, context: Ctx, ref: str) -> None:
    """Send one action's detail, or the closest references if there is no such action."""
    try:
        action = await context.db.run(
            find_action, ref=ref, at=context.now(), quiet_after=context.quiet_after
        )
        updates, total = await context.db.run(action_updates, ref=ref, limit=RECENT_UPDATES)
    except UnknownAction as unknown:
        await offer_closest(update, context, unknown, "a")
        return
    more = (
        keyboard([[button("Full history", "h", action.ref, 0)]]) if total > len(updates) else None
    )
    await send(
        update,
        context,
        "action.html",
        action=action,
        updates=updates,
        total=total,
        quiet_days=context.settings.quiet_days,
        keyboard=more,
    )


async def offer_closest(update: Update, context: Ctx, unknown: UnknownAction, kind: str) -> None:
    """'No action SOC-9', with buttons for the closest references."""
    page = (0,) if kind == "h" else ()
    rows = [[button(ref, kind, ref, *page)] for ref in unknown.suggestions]
    await send(
        update,
        context,
        "unknown_action.html",
        ref=unknown.ref,
        suggestions=unknown.suggestions,
        keyboard=keyboard(rows) if rows else None,
    )


async def on_action_button(update: Update, context: Ctx) -> None:
    """A suggested reference was tapped: show that action."""
    query = update.callback_query
    assert query is not None
    pieces = parts(query.data, 2)
    if pieces is None or not await _exists(context, pieces[1]):
        # The bot only offers references that exist: any other was forged or is stale.
        await refuse_forged(update, context)
        return
    await acknowledge(query)
    await show_action(update, context, pieces[1])


async def _exists(context: Ctx, ref: str) -> bool:
    try:
        await context.db.run(
            find_action, ref=ref, at=context.now(), quiet_after=context.quiet_after
        )
    except UnknownAction:
        return False
    return True


async def history_command(update: Update, context: Ctx) -> None:
    """`/history REF`: every update on an action, a page at a time."""
    ref = _argument(context)
    if ref is None:
        await send(update, context, "usage.html", usage="/history REF", example="/history SOC-1")
        return
    try:
        text, markup = await _history_page(context, ref, 0)
    except UnknownAction as unknown:
        await offer_closest(update, context, unknown, "h")
        return
    await send_text(update, context, text, keyboard=markup)


async def on_history_button(update: Update, context: Ctx) -> None:
    """Turn the page of a history, editing the message in place."""
    query = update.callback_query
    assert query is not None
    pieces = parts(query.data, 3)
    page = number(pieces[2]) if pieces else None
    if pieces is None or page is None:
        await refuse_forged(update, context)
        return
    try:
        text, markup = await _history_page(context, pieces[1], page)
    except UnknownAction:
        await refuse_forged(update, context)
        return
    await acknowledge(query)
    await edit_in_place(query, text, markup)


async def _history_page(
    context: Ctx, ref: str, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    updates, total = await context.db.run(action_updates, ref=ref, limit=HISTORY_MOST)
    pages = history_pages(context.templates, updates)
    page = min(max(page, 0), len(pages) - 1)
    text = context.templates.render(
        "history.html",
        ref=ref.upper(),
        updates=pages[page],
        page=page,
        pages=len(pages),
        total=total,
    )
    row = pager(page, len(pages), "h", ref.upper())
    return text, keyboard([row]) if row else None


def history_pages(templates: Templates, updates: list[UpdateView]) -> list[list[UpdateView]]:
    """The updates cut into pages of at most `HISTORY_PAGE` that each fit one message: a few
    long notes would take a page past Telegram's limit, and it would refuse the message."""
    pages: list[list[UpdateView]] = [[]]
    room = HISTORY_ROOM
    for update in updates:
        # The HTML's length: at least what Telegram counts, which is after the markup.
        size = len(templates.render("history_entry.html", update=update)) + 2
        if pages[-1] and (len(pages[-1]) == HISTORY_PAGE or size > room):
            pages.append([])
            room = HISTORY_ROOM
        pages[-1].append(update)
        room -= size
    return pages


async def status_command(update: Update, context: Ctx) -> None:
    """`/status`: each priority's RAG counts, overdue and quiet actions."""
    overview = await context.db.run(
        status_overview, at=context.now(), quiet_after=context.quiet_after
    )
    # The latest figure alone: enough for each measure's RAG, which is all /status counts.
    measures = await context.db.run(context.services.summaries.measures.latest)
    row = dashboard_button(context.settings.app_url, private=in_private(update))
    await send(
        update,
        context,
        "status.html",
        priorities=overview,
        measures=rag_counts(measures),
        now=context.now(),
        quiet_days=context.settings.quiet_days,
        keyboard=keyboard([row]) if row else None,
    )


def in_private(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type == ChatType.PRIVATE


async def priority_command(update: Update, context: Ctx) -> None:
    """`/priority CODE`: that priority's actions."""
    code = _argument(context)
    if code is None:
        await send(update, context, "usage.html", usage="/priority CODE", example="/priority SOC")
        return
    try:
        priority, views = await context.db.run(
            priority_actions, code=code, at=context.now(), quiet_after=context.quiet_after
        )
    except NotFound as unknown:
        await send(update, context, "problem.html", problem=str(unknown))
        return
    measures = await context.db.run(priority_measures, priority_id=priority.id)
    await send(
        update,
        context,
        "priority.html",
        priority=priority,
        actions=views,
        measures=measures,
        quiet_days=context.settings.quiet_days,
    )


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [
    command("action", action_command),
    command("history", history_command),
    command("status", status_command),
    command("priority", priority_command),
    guarded_button(r"^a:", "action", on_action_button),
    guarded_button(r"^h:", "history", on_history_button),
]
