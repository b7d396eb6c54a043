"""The coordinator's list of members in chat (/members), with a button to deactivate one."""

from __future__ import annotations

import logging

from markupsafe import Markup
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.ext import BaseHandler

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.guard import button as guarded_button
from csp_bot.handlers.guard import command
from csp_bot.handlers.keyboards import button, keyboard, page_of, pager, parts
from csp_bot.handlers.keyboards import number as to_number
from csp_bot.handlers.replies import edit_in_place, send, send_text
from csp_bot.models.audit import Actor
from csp_bot.models.errors import DomainError, NotFound
from csp_bot.models.lifecycle import MemberLine, Standing, deactivate_member, list_members

log = logging.getLogger(__name__)

MEMBERS = "mb"
PAGE_SIZE = 10


async def members_command(update: Update, context: Ctx) -> None:
    """List the members, active first, with a deactivate button for each active one."""
    chat = update.effective_chat
    if chat is not None and chat.type != ChatType.PRIVATE:
        # Members' names are for the coordinator, not for everyone in a group.
        await send(update, context, "members_private_only.html")
        return
    text, markup = await _page(context, 0)
    await send_text(update, context, text, keyboard=markup)


async def _page(
    context: Ctx, page: int, *, notice: Markup | None = None
) -> tuple[str, InlineKeyboardMarkup]:
    members = await context.db.run(list_members)
    active = [m for m in members if m.standing == Standing.ACTIVE]
    # The latest to leave first, a page's worth: `csp-bot member list` has them all.
    others = sorted(
        (m for m in members if m.standing != Standing.ACTIVE),
        key=lambda m: (m.since is not None, m.since),
        reverse=True,
    )
    shown, page, pages = page_of(active, page, PAGE_SIZE)
    text = context.templates.render(
        "member_list.html",
        shown=shown,
        active=len(active),
        others=others[:PAGE_SIZE],
        more_others=max(0, len(others) - PAGE_SIZE),
        page=page,
        pages=pages,
        notice=notice,
    )
    me = context.acting_member.id
    rows: list[list[InlineKeyboardButton]] = [
        [button(f"🚫 Deactivate {m.name}"[:60], MEMBERS, "d", m.id)] for m in shown if m.id != me
    ]
    rows.append(pager(page, pages, MEMBERS, "p"))
    return text, keyboard(rows)


async def on_members_button(update: Update, context: Ctx) -> None:
    """mb:p:PAGE pages; mb:d:ID asks to confirm; mb:y:ID deactivates (rights checked now)."""
    query = update.callback_query
    assert query is not None
    pieces = parts(query.data, 3)
    number = to_number(pieces[2]) if pieces else None
    if pieces is None or pieces[1] not in ("p", "d", "y") or number is None:
        await _expired(update, context)
        return
    verb = pieces[1]
    if verb == "p":
        await query.answer()
        text, markup = await _page(context, number)
        await edit_in_place(query, text, markup)
    elif verb == "d":
        await _confirm(update, context, number)
    else:
        await _deactivate(update, context, number)


async def _expired(update: Update, context: Ctx) -> None:
    query = update.callback_query
    assert query is not None
    log.warning("refused callback data %r from user %s", query.data, query.from_user.id)
    await query.answer("That button has expired. Send /members again.", show_alert=True)


async def _confirm(update: Update, context: Ctx, member_id: int) -> None:
    query = update.callback_query
    assert query is not None
    target = await _active_member(context, member_id)
    if target is None or target.id == context.acting_member.id:
        await _expired(update, context)
        return
    await query.answer()
    text = context.templates.render("member_deactivate_confirm.html", member=target)
    markup = InlineKeyboardMarkup(
        [
            [button("🚫 Yes, deactivate", MEMBERS, "y", target.id)],
            [button("‹ Back to the list", MEMBERS, "p", 0)],
        ]
    )
    await edit_in_place(query, text, markup)


async def _active_member(context: Ctx, member_id: int) -> MemberLine | None:
    members = await context.db.run(list_members, active_only=True)
    return next((m for m in members if m.id == member_id), None)


async def _deactivate(update: Update, context: Ctx, member_id: int) -> None:
    query = update.callback_query
    assert query is not None
    me = context.acting_member
    if member_id == me.id:
        await _expired(update, context)
        return
    try:
        done = await context.db.run(
            deactivate_member, member_id=member_id, at=context.now(), actor=Actor.member(me.id)
        )
    except NotFound:  # removed or erased since the list was shown
        await _expired(update, context)
        return
    except DomainError as refused:
        await query.answer(str(refused), show_alert=True)
        return
    await query.answer(f"{done.member.name} deactivated" if done.changed else "Already deactivated")
    # Already rendered (and escaped) HTML: marked safe so the list does not escape it again.
    notice = Markup(context.templates.render("member_deactivated.html", done=done))
    text, markup = await _page(context, 0, notice=notice)
    await edit_in_place(query, text, markup)


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [
    command("members", members_command),
    guarded_button(rf"^{MEMBERS}:", "members", on_members_button),
]
