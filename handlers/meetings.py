"""Board meetings in chat: /meeting (a guided form), /meetings, replies, calendar files."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, Update
from telegram.ext import BaseHandler

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.dialogue import Turn, choice
from csp_bot.handlers.forms import Form, Option, Step, start_form
from csp_bot.handlers.guard import button as guarded_button
from csp_bot.handlers.guard import command, refuse_forged
from csp_bot.handlers.keyboards import button, callback, number, parts
from csp_bot.handlers.replies import acknowledge, send
from csp_bot.models.access import ORGANISERS, is_invited
from csp_bot.models.audit import Actor
from csp_bot.models.dialogue import Screen
from csp_bot.models.errors import DomainError, NotFound
from csp_bot.models.limits import check_place, check_title
from csp_bot.models.meetings import (
    MeetingView,
    attendance,
    board_name,
    check_agenda,
    check_meeting_time,
    get_meeting,
    ics_filename,
    meetings_ics,
    member_reply,
    reply_to_meeting,
    schedule_meeting,
    upcoming_meetings,
)
from csp_bot.models.reminder_types import Reply

log = logging.getLogger(__name__)

PREFIX = "mt"
REPLY, CALENDAR, WHO = "r", "i", "w"
REPLY_CODES = {"a": Reply.ATTENDING, "p": Reply.APOLOGIES, "s": Reply.SUBSTITUTE}
REPLY_BUTTONS = {
    Reply.ATTENDING: "✅ Attending",
    Reply.APOLOGIES: "🙏 Apologies",
    Reply.SUBSTITUTE: "👤 Substitute",
}
SHOWN_MEETINGS = 5


# --- keyboards the reminders carry too --------------------------------------------------------


def reply_row(meeting_id: int, chosen: Reply | None) -> list[InlineKeyboardButton]:
    """Attending / apologies / substitute for one meeting, the current choice ticked."""
    codes = {reply: code for code, reply in REPLY_CODES.items()}
    return [
        button(("☑️ " if reply == chosen else "") + label, PREFIX, REPLY, meeting_id, codes[reply])
        for reply, label in REPLY_BUTTONS.items()
    ]


def reply_keyboard(meeting_id: int, *, chosen: Reply | None = None) -> InlineKeyboardMarkup:
    """The reply buttons (the current choice ticked) and the calendar file."""
    calendar = button("📅 Add to calendar", PREFIX, CALENDAR, meeting_id)
    return InlineKeyboardMarkup([reply_row(meeting_id, chosen), [calendar]])


def ticked(markup: InlineKeyboardMarkup, meeting_id: int, chosen: Reply) -> InlineKeyboardMarkup:
    """`markup` with the meeting's reply row ticked afresh: a reminder carries one meeting's
    row, /meetings one per meeting, and the other rows stay as they are."""
    mine = callback(PREFIX, REPLY, meeting_id) + ":"
    rows = [
        reply_row(meeting_id, chosen)
        if any(str(key.callback_data or "").startswith(mine) for key in row)
        else list(row)
        for row in markup.inline_keyboard
    ]
    return InlineKeyboardMarkup(rows)


# --- /meeting: the guided form -----------------------------------------------------------------


def _board_name(turn: Turn, values: dict[str, str]) -> list[Option]:
    """The board's name from the plan, as a one-tap title."""
    board = board_name(turn.session)
    return [Option(board, "board", board)] if board else []


def _read_title(turn: Turn, text: str, values: dict[str, str]) -> str:
    return check_title(text)


def _read_when(turn: Turn, text: str, values: dict[str, str]) -> str:
    context = turn.context
    return check_meeting_time(text, zone=context.settings.tz, at=context.now()).isoformat()


def _read_where(turn: Turn, text: str, values: dict[str, str]) -> str:
    return check_place(text)


def _read_agenda(turn: Turn, text: str, values: dict[str, str]) -> str:
    # Split on line feeds only: splitlines() also splits on control characters (U+000B,
    # U+001C, ...), which would vanish instead of being refused.
    return "\n".join(check_agenda(text.split("\n")))


def _describe(turn: Turn, values: dict[str, str]) -> dict[str, object]:
    return {
        "title": values["title"],
        "starts_at": datetime.fromisoformat(values["starts_at"]),
        "location": values["location"],
        "agenda": [line for line in values["agenda"].splitlines() if line],
    }


def _save(turn: Turn, values: dict[str, str]) -> Screen:
    """Schedule the meeting and say when board members will be reminded."""
    context = turn.context
    member = context.acting_member
    meeting = schedule_meeting(
        turn.session,
        title=values["title"],
        starts_at=datetime.fromisoformat(values["starts_at"]),
        location=values["location"],
        agenda=values["agenda"].splitlines(),
        at=context.now(),
        actor=Actor.member(member.id),
    )
    text = turn.render(
        "meeting_scheduled.html",
        meeting=meeting,
        offsets=context.settings.meeting_reminders.replace(",", ", "),
    )
    calendar = choice("📅 Add to calendar", PREFIX, CALENDAR, meeting.id)
    return Screen(text, ((calendar,),), in_place=False)


MEETING_FORM = Form(
    name="meeting",
    called="new board meeting",
    steps=(
        Step("title", "meeting_ask_title.html", read=_read_title, options=_board_name, columns=1),
        Step("starts_at", "meeting_ask_when.html", read=_read_when),
        Step("location", "meeting_ask_where.html", read=_read_where, skippable=True),
        Step(
            "agenda", "meeting_ask_agenda.html", read=_read_agenda, skippable=True, case_check=True
        ),
    ),
    summary="meeting_summary.html",
    save=_save,
    describe=_describe,
)


async def meeting_command(update: Update, context: Ctx) -> None:
    """Start the guided form that schedules a board meeting."""
    await start_form(update, context, MEETING_FORM)


# --- /meetings -------------------------------------------------------------------------------


async def meetings_command(update: Update, context: Ctx) -> None:
    """The coming meetings; the organisers also see who has replied and whether it is quorate."""
    member = context.acting_member
    meetings = await context.db.run(upcoming_meetings, at=context.now(), limit=SHOWN_MEETINGS)
    organiser = member.role in ORGANISERS
    invited = is_invited(member.role)
    lines = [await _line(context, meeting, organiser) for meeting in meetings]
    rows = [row for line in lines for row in _list_rows(context, line, organiser, invited)]
    await send(
        update,
        context,
        "meeting_list.html",
        meetings=lines,
        invited=invited,
        organiser=organiser,
        Reply=Reply,
        keyboard=InlineKeyboardMarkup(rows) if rows else None,
    )


def _list_rows(
    context: Ctx, line: dict[str, Any], organiser: bool, invited: bool
) -> list[list[InlineKeyboardButton]]:
    """A meeting's buttons in /meetings: its calendar file (and replies, for organisers);
    for those invited, the same reply buttons as the reminder, checked the same way."""
    meeting: MeetingView = line["meeting"]
    day = f"📅 {meeting.starts_at.astimezone(context.settings.tz):%d %b}"
    first = [button(day, PREFIX, CALENDAR, meeting.id)]
    if organiser:
        first.append(button("👥 Replies", PREFIX, WHO, meeting.id))
    return [first, reply_row(meeting.id, line["reply"])] if invited else [first]


async def _line(context: Ctx, meeting: MeetingView, organiser: bool) -> dict[str, Any]:
    reply = await context.db.run(
        member_reply, meeting_id=meeting.id, member_id=context.acting_member.id
    )
    replies = await context.db.run(attendance, meeting_id=meeting.id) if organiser else None
    return {"meeting": meeting, "reply": reply, "attendance": replies}


# --- buttons --------------------------------------------------------------------------------


async def on_meeting_button(update: Update, context: Ctx) -> None:
    """mt:r:ID:CODE (reply), mt:i:ID (calendar file), mt:w:ID (who is coming, organisers)."""
    query = update.callback_query
    assert query is not None
    pieces = parts(query.data, 4) or parts(query.data, 3)
    meeting_id = number(pieces[2]) if pieces else None
    if pieces is None or meeting_id is None:
        await refuse_forged(update, context)
        return
    action = pieces[1]
    if action == REPLY and len(pieces) == 4 and pieces[3] in REPLY_CODES:
        await _reply(update, context, meeting_id, REPLY_CODES[pieces[3]])
    elif action == CALENDAR and len(pieces) == 3:
        await _calendar(update, context, meeting_id)
    elif action == WHO and len(pieces) == 3 and context.acting_member.role in ORGANISERS:
        await _who(update, context, meeting_id)
    else:
        await refuse_forged(update, context)


async def _reply(update: Update, context: Ctx, meeting_id: int, reply: Reply) -> None:
    """Record the member's reply and tick it on the buttons."""
    query = update.callback_query
    assert query is not None
    try:
        await context.db.run(
            reply_to_meeting,
            meeting_id=meeting_id,
            member_id=context.acting_member.id,
            reply=reply,
            at=context.now(),
        )
    except DomainError as refused:
        await query.answer(str(refused), show_alert=True)
        return
    await query.answer(f"Thank you: {reply.label}.")
    shown = query.message.reply_markup if isinstance(query.message, Message) else None
    markup = ticked(shown, meeting_id, reply) if shown else reply_keyboard(meeting_id, chosen=reply)
    await query.edit_message_reply_markup(reply_markup=markup)


async def _calendar(update: Update, context: Ctx, meeting_id: int) -> None:
    """Send the meeting's .ics file."""
    query = update.callback_query
    assert query is not None and update.effective_chat is not None
    try:
        meeting = await context.db.run(get_meeting, meeting_id=meeting_id)
    except NotFound as gone:
        await query.answer(str(gone), show_alert=True)
        return
    await acknowledge(query)
    content = meetings_ics([meeting], now=context.now())
    await context.bot.send_document(
        update.effective_chat.id,
        InputFile(content.encode(), filename=ics_filename(meeting, context.settings.tz)),
        caption=context.templates.render("meeting_ics_caption.html", meeting=meeting),
    )


async def _who(update: Update, context: Ctx, meeting_id: int) -> None:
    """Who has replied, who has not, and whether the meeting is quorate."""
    query = update.callback_query
    assert query is not None
    try:
        replies = await context.db.run(attendance, meeting_id=meeting_id)
    except NotFound as gone:
        await query.answer(str(gone), show_alert=True)
        return
    await acknowledge(query)
    await send(update, context, "meeting_replies.html", attendance=replies, Reply=Reply)


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [
    command("meeting", meeting_command),
    command("meetings", meetings_command),
    guarded_button(rf"^{PREFIX}:", "meetings", on_meeting_button),
]
