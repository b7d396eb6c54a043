"""Partners' daily job: /my, the guided and one-line /update, /cancel and /undo.

The guided update is a small state machine kept in the database (`models.drafts`), not
in memory: every step is stored as soon as it is read, so a restart loses nothing, and
the 15-minute expiry follows the injected clock.
"""

from __future__ import annotations

import logging
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.ext import BaseHandler, MessageHandler, filters

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.fallback import anything_else
from csp_bot.handlers.guard import button as guarded_button
from csp_bot.handlers.guard import command, guarded
from csp_bot.handlers.keyboards import button, keyboard, page_of, pager, parts
from csp_bot.handlers.replies import acknowledge, edit_in_place, remove_buttons, send, send_text
from csp_bot.handlers.templating import STATUS_MARKS
from csp_bot.models.drafts import (
    Step,
    UpdateDraft,
    discard_draft,
    has_draft,
    load_draft,
    save_draft,
    submit_draft,
)
from csp_bot.models.enums import Status
from csp_bot.models.errors import DomainError
from csp_bot.models.progress import (
    ActionView,
    NotPermitted,
    UnknownAction,
    check_note,
    find_action,
    may_update,
    organisation_actions,
    refusal,
    undo_last_update,
    updatable_actions,
)
from csp_bot.models.values import parse_status

log = logging.getLogger(__name__)

ACTIONS_PER_PAGE = 8
TITLE_IN_BUTTON = 40
UPDATE_STATUSES = (Status.GREEN, Status.AMBER, Status.RED, Status.COMPLETE)
# Button label, and what is stored as the forecast.
FORECASTS = {
    "yes": ("Yes, by the due date", "Expected to recover by the due date"),
    "no": ("No, it will be late", "Not expected to recover by the due date"),
    "unsure": ("Not sure yet", "Not yet known whether it will recover by the due date"),
}
DEEP_LINK_UPDATE = "update"
COMMAND_WORD = re.compile(r"^/\S+\s*")
CANCEL = ("Cancel", "u", "x")


# --- /my -------------------------------------------------------------------------------


async def my_actions(update: Update, context: Ctx) -> None:
    """The member's organisation's actions with status, due date and last update."""
    member = context.acting_member
    views = await context.db.run(
        organisation_actions,
        organisation_id=member.organisation_id,
        at=context.now(),
        quiet_after=context.quiet_after,
    )
    await send(
        update,
        context,
        "my_actions.html",
        member=member,
        actions=views,
        quiet_days=context.settings.quiet_days,
    )


# --- /update: starting -------------------------------------------------------------------


async def update_command(update: Update, context: Ctx) -> None:
    """Start a guided update, or take the one-line form `/update REF STATUS note`."""
    chat = update.effective_chat
    assert chat is not None
    if chat.type != ChatType.PRIVATE:
        await send_to_private_chat(update, context)
        return
    typed = COMMAND_WORD.sub("", _text(update)).strip()
    if typed:
        await one_line_update(update, context, typed)
    else:
        await choose_action(update, context)


def _text(update: Update) -> str:
    message = update.effective_message
    return (message.text or "") if message else ""


async def send_to_private_chat(update: Update, context: Ctx) -> None:
    """In a group, point to a private chat instead of filling the group with forms."""
    link = f"https://t.me/{context.bot.username}?start={DEEP_LINK_UPDATE}"
    buttons = InlineKeyboardMarkup([[InlineKeyboardButton("Update in a private chat", url=link)]])
    await send(update, context, "update_in_private.html", keyboard=buttons)


async def start_from_link(update: Update, context: Ctx) -> None:
    """`/start update` (the group's deep link) opens the guided update."""
    await choose_action(update, context)


async def choose_action(update: Update, context: Ctx) -> None:
    """Send the action picker and start a draft waiting for the choice."""
    member = context.acting_member
    views = await _updatable(context)
    if not views:
        await send(update, context, "update_nothing.html", member=member)
        return
    await close_open_update(update, context)
    text, markup = _action_picker(context, views, page=0)
    sent = await send_text(update, context, text, keyboard=markup)
    await _store(context, update, UpdateDraft(member.id, Step.ACTION, context.now()), sent)


async def _updatable(context: Ctx) -> list[ActionView]:
    return await context.db.run(
        updatable_actions,
        member=context.acting_member,
        at=context.now(),
        quiet_after=context.quiet_after,
    )


def _action_picker(
    context: Ctx, views: list[ActionView], *, page: int
) -> tuple[str, InlineKeyboardMarkup]:
    shown, page, pages = page_of(views, page, ACTIONS_PER_PAGE)
    rows = [[button(_action_label(view), "u", "a", view.ref)] for view in shown]
    rows += [pager(page, pages, "u", "p"), [button(*CANCEL)]]
    text = context.templates.render("update_choose_action.html", page=page, pages=pages)
    return text, keyboard(rows)


def _action_label(view: ActionView) -> str:
    title = view.title
    if len(title) > TITLE_IN_BUTTON:
        title = title[: TITLE_IN_BUTTON - 1] + "…"
    return f"{STATUS_MARKS[view.status]} {view.ref} {title}"


def _status_picker() -> InlineKeyboardMarkup:
    statuses = [button(f"{STATUS_MARKS[s]} {s.label}", "u", "s", s.value) for s in UPDATE_STATUSES]
    return keyboard([statuses[:2], statuses[2:], [button(*CANCEL)]])


def _forecast_picker() -> InlineKeyboardMarkup:
    choices = [button(label, "u", "f", key) for key, (label, _) in FORECASTS.items()]
    return keyboard([[choice] for choice in choices] + [[button(*CANCEL)]])


# --- the one-line form -------------------------------------------------------------------


async def one_line_update(update: Update, context: Ctx, typed: str) -> None:
    """`SOC-1 amber waiting for ...`: as much as is typed, then ask for what is missing."""
    member = context.acting_member
    ref, _, rest = typed.partition(" ")
    action = await _action_for(update, context, ref)
    if action is None:
        return
    draft = UpdateDraft(member.id, Step.STATUS, context.now(), ref=action.ref)
    if not rest.strip():
        await _ask_status(update, context, draft, action)
        return
    status, note = _split_status(rest)
    if status is None:
        await send(update, context, "update_bad_status.html", typed=rest.split()[0])
        return
    draft = draft.moved(Step.NOTE, context.now(), status=status)
    if note.strip():
        await _take_note(update, context, draft, note)
    else:
        await _ask_note_again(update, context, draft, None)


def _split_status(rest: str) -> tuple[Status | None, str]:
    """The status at the start of `rest` (two words, as in "at risk", or one) and the note."""
    words = rest.split()
    for count in (2, 1):
        try:
            status = parse_status(" ".join(words[:count]))
        except ValueError:
            continue
        if status in UPDATE_STATUSES:
            return status, rest.strip()[len(" ".join(words[:count])) :]
    return None, rest


async def _action_for(update: Update, context: Ctx, ref: str) -> ActionView | None:
    """The action the member named and may update; otherwise say why and return None."""
    try:
        action = await context.db.run(
            find_action, ref=ref, at=context.now(), quiet_after=context.quiet_after
        )
    except UnknownAction as unknown:
        await _offer_closest(update, context, unknown)
        return None
    if not may_update(context.acting_member, action.lead_organisation_id):
        await send(
            update, context, "refused_action.html", reason=refusal(context.acting_member, action)
        )
        return None
    return action


async def _offer_closest(update: Update, context: Ctx, unknown: UnknownAction) -> None:
    """Say there is no such action, offering the closest references as buttons."""
    rows = [[button(ref, "u", "a", ref)] for ref in unknown.suggestions]
    markup = keyboard([*rows, [button(*CANCEL)]]) if rows else None
    sent = await send(
        update,
        context,
        "unknown_action.html",
        ref=unknown.ref,
        suggestions=unknown.suggestions,
        keyboard=markup,
    )
    if rows:
        member = context.acting_member
        await _store(context, update, UpdateDraft(member.id, Step.ACTION, context.now()), sent)


# --- the guided steps --------------------------------------------------------------------


async def on_update_button(update: Update, context: Ctx) -> None:
    """A press on one of the guided update's buttons: u:p:N, u:a:REF, u:s:STATUS, u:f:KEY, u:x."""
    query = update.callback_query
    assert query is not None
    pieces = parts(query.data, 3) or parts(query.data, 2)
    if pieces is None or (pieces[1] not in STEP_BUTTONS and pieces[1] != CANCEL_BUTTON):
        await refuse_forged(update, context)
        return
    if pieces[1] == CANCEL_BUTTON:
        await cancel(update, context)
        return
    draft = await _live_draft(update, context)
    expected_step, handle = STEP_BUTTONS[pieces[1]]
    message = query.message
    if (
        draft is None
        or draft.step != expected_step
        or message is None
        or draft.message_id != message.message_id
        or len(pieces) != 3
    ):
        await query.answer(context.templates.render("button_expired.html"), show_alert=True)
        return
    await handle(update, context, draft, pieces[2])


async def refuse_forged(update: Update, context: Ctx) -> None:
    """Callback data the bot never made: refuse, and log who sent it."""
    query = update.callback_query
    assert query is not None
    log.warning("refused callback data %r from user %s", query.data, query.from_user.id)
    await query.answer("That button isn't valid.", show_alert=True)


async def _page(update: Update, context: Ctx, draft: UpdateDraft, value: str) -> None:
    """Show another page of the action picker."""
    if not value.isdigit():
        await refuse_forged(update, context)
        return
    text, markup = _action_picker(context, await _updatable(context), page=int(value))
    await _edit(update, text, markup)
    await _store(context, update, draft.moved(Step.ACTION, context.now()), None)


async def _picked_action(update: Update, context: Ctx, draft: UpdateDraft, ref: str) -> None:
    """The partner chose an action: check they may, then ask for its status."""
    try:
        action = await context.db.run(
            find_action, ref=ref, at=context.now(), quiet_after=context.quiet_after
        )
    except UnknownAction:
        await refuse_forged(update, context)
        return
    if not may_update(context.acting_member, action.lead_organisation_id):
        log.warning("refused update button for %s from member %s", ref, context.acting_member.id)
        assert update.callback_query is not None
        await update.callback_query.answer(refusal(context.acting_member, action), show_alert=True)
        return
    await _ask_status(
        update, context, draft.moved(Step.STATUS, context.now(), ref=action.ref), action
    )


async def _ask_status(update: Update, context: Ctx, draft: UpdateDraft, action: ActionView) -> None:
    text = context.templates.render("update_choose_status.html", action=action)
    await _show_step(update, context, draft, text, _status_picker())


async def _picked_status(update: Update, context: Ctx, draft: UpdateDraft, value: str) -> None:
    """The partner chose a status: ask for the note."""
    try:
        status = Status(value)
    except ValueError:
        status = None
    if status not in UPDATE_STATUSES:
        await refuse_forged(update, context)
        return
    draft = draft.moved(Step.NOTE, context.now(), status=status)
    text = context.templates.render("update_ask_note.html", draft=draft, problem=None)
    await _show_step(update, context, draft, text, keyboard([[button(*CANCEL)]]))


async def _picked_forecast(update: Update, context: Ctx, draft: UpdateDraft, key: str) -> None:
    """The last step: the forecast is chosen, so the update is stored."""
    if key not in FORECASTS:
        await refuse_forged(update, context)
        return
    label, forecast = FORECASTS[key]
    assert update.callback_query is not None
    await acknowledge(update.callback_query)
    await _edit(update, context.templates.render("update_forecast_chosen.html", label=label), None)
    await _submit(update, context, draft, forecast)


STEP_BUTTONS = {
    "p": (Step.ACTION, _page),
    "a": (Step.ACTION, _picked_action),
    "s": (Step.STATUS, _picked_status),
    "f": (Step.FORECAST, _picked_forecast),
}
CANCEL_BUTTON = "x"


async def on_text(update: Update, context: Ctx) -> None:
    """Typed text: the next answer in a guided update, or (with none going) the fallback."""
    user = update.effective_user
    assert user is not None
    if not await context.db.run(has_draft, user_id=user.id):
        await anything_else(update, context)
        return
    await guarded("update", continue_with_text)(update, context)


async def continue_with_text(update: Update, context: Ctx) -> None:
    """Take the note or the mitigation the draft is waiting for."""
    draft = await _live_draft(update, context)
    if draft is None or draft.answered_by(update.update_id):
        return  # none open, or this answer was taken before a restart (its reply went then)
    text = _text(update)
    if draft.step == Step.NOTE:
        await _take_note(update, context, draft, text)
    elif draft.step == Step.MITIGATION:
        await _take_mitigation(update, context, draft, text)
    else:
        await send(update, context, "update_use_buttons.html")


async def _take_note(update: Update, context: Ctx, draft: UpdateDraft, note: str) -> None:
    """Check the note; ask again if it is empty or too long, else go on."""
    try:
        cleaned = check_note(note)
    except DomainError as problem:
        await _ask_note_again(update, context, draft, str(problem))
        return
    await _after_text(update, context, draft.moved(Step.NOTE, context.now(), note=cleaned))


async def _ask_note_again(
    update: Update, context: Ctx, draft: UpdateDraft, problem: str | None
) -> None:
    text = context.templates.render("update_ask_note.html", draft=draft, problem=problem)
    await _show_step(update, context, draft, text, keyboard([[button(*CANCEL)]]))


async def _take_mitigation(update: Update, context: Ctx, draft: UpdateDraft, text: str) -> None:
    try:
        cleaned = check_note(text, what="mitigation")
    except DomainError as problem:
        await _ask_mitigation(update, context, draft, str(problem))
        return
    await _after_text(
        update, context, draft.moved(Step.MITIGATION, context.now(), mitigation=cleaned)
    )


async def _after_text(update: Update, context: Ctx, draft: UpdateDraft) -> None:
    """Ask for the mitigation or the forecast if the status needs them; otherwise store."""
    following = draft.next_step()
    if following == Step.MITIGATION:
        await _ask_mitigation(update, context, draft.moved(Step.MITIGATION, context.now()), None)
    elif following == Step.FORECAST:
        draft = draft.moved(Step.FORECAST, context.now())
        text = await _render_forecast_question(context, draft)
        await _show_step(update, context, draft, text, _forecast_picker())
    else:
        await _submit(update, context, draft, None)


async def _ask_mitigation(
    update: Update, context: Ctx, draft: UpdateDraft, problem: str | None
) -> None:
    text = context.templates.render("update_ask_mitigation.html", draft=draft, problem=problem)
    await _show_step(update, context, draft, text, keyboard([[button(*CANCEL)]]))


async def _render_forecast_question(context: Ctx, draft: UpdateDraft) -> str:
    assert draft.ref is not None
    action = await context.db.run(
        find_action, ref=draft.ref, at=context.now(), quiet_after=context.quiet_after
    )
    return context.templates.render("update_ask_forecast.html", action=action)


async def _submit(update: Update, context: Ctx, draft: UpdateDraft, forecast: str | None) -> None:
    """Store the update (once, even if Telegram delivers this update again) and confirm."""
    user = update.effective_user
    assert user is not None
    try:
        logged = await context.db.run(
            submit_draft,
            user_id=user.id,
            draft=draft,
            forecast=forecast,
            at=context.now(),
            telegram_update_id=update.update_id,
            quiet_after=context.quiet_after,
        )
    except NotPermitted as refused:
        await context.db.run(discard_draft, user_id=user.id)
        await send(update, context, "refused_action.html", reason=str(refused))
        return
    await remove_buttons(context, draft)
    await send(update, context, "update_stored.html", logged=logged)


# --- drafts and the keyboard message -----------------------------------------------------


async def _live_draft(update: Update, context: Ctx) -> UpdateDraft | None:
    """The member's draft; if it has just expired, say so (nothing was stored)."""
    user = update.effective_user
    assert user is not None
    lookup = await context.db.run(load_draft, user_id=user.id, at=context.now())
    if lookup.expired is not None:
        await remove_buttons(context, lookup.expired)
        if update.callback_query is not None:
            await acknowledge(update.callback_query)
        await send(update, context, "update_expired.html", draft=lookup.expired)
    return lookup.draft


async def _show_step(
    update: Update, context: Ctx, draft: UpdateDraft, text: str, markup: InlineKeyboardMarkup
) -> None:
    """Show the next question: in place of the pressed message, or as a new message."""
    if update.callback_query is not None:
        await acknowledge(update.callback_query)
        await _edit(update, text, markup)
        await _store(context, update, draft, None)
    else:
        await remove_buttons(context, draft)
        sent = await send_text(update, context, text, keyboard=markup)
        await _store(context, update, draft, sent)


async def _store(context: Ctx, update: Update, draft: UpdateDraft, sent: Message | None) -> None:
    """Save the draft, remembering which message carries its buttons."""
    if sent is not None:
        draft = draft.moved(draft.step, draft.touched_at)
        draft = UpdateDraft(
            **{**draft.__dict__, "chat_id": sent.chat_id, "message_id": sent.message_id}
        )
    elif update.callback_query is not None and update.callback_query.message is not None:
        message = update.callback_query.message
        draft = UpdateDraft(
            **{**draft.__dict__, "chat_id": message.chat.id, "message_id": message.message_id}
        )
    user = update.effective_user
    assert user is not None
    draft = UpdateDraft(**{**draft.__dict__, "update_id": update.update_id})
    await context.db.run(save_draft, user_id=user.id, draft=draft)


async def _edit(update: Update, text: str, markup: InlineKeyboardMarkup | None) -> None:
    query = update.callback_query
    assert query is not None
    await edit_in_place(query, text, markup)


async def close_open_update(update: Update, context: Ctx) -> None:
    """One guided flow at a time: a new /update, or a form, replaces a draft left open."""
    user = update.effective_user
    assert user is not None
    previous = await context.db.run(discard_draft, user_id=user.id)
    if previous is not None:
        await remove_buttons(context, previous)


# --- /cancel and /undo -----------------------------------------------------------------


async def cancel(update: Update, context: Ctx) -> None:
    """Leave the guided update at any step; nothing is stored."""
    user = update.effective_user
    assert user is not None
    draft = await context.db.run(discard_draft, user_id=user.id)
    if update.callback_query is not None:
        await update.callback_query.answer("Cancelled")
    if draft is None:
        await send(update, context, "cancel_nothing.html")
        return
    await remove_buttons(context, draft)
    await send(update, context, "cancelled.html", draft=draft)


async def undo(update: Update, context: Ctx) -> None:
    """Take back the member's last update if it is less than 15 minutes old."""
    try:
        undone = await context.db.run(
            undo_last_update, member_id=context.acting_member.id, at=context.now()
        )
    except DomainError as problem:
        await send(update, context, "problem.html", problem=str(problem))
        return
    await send(update, context, "undone.html", undone=undone)


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [
    command("my", my_actions),
    command("update", update_command),
    command("start", start_from_link, policy="update", only=filters.Regex(r"^/start update$")),
    command("cancel", cancel),
    command("undo", undo),
    guarded_button(r"^u:", "update", on_update_button),
    MessageHandler(filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND, on_text),
]
