"""Guided forms: a few questions in turn, answered by tapping a button or typing, then a
summary with Save and Cancel. /meeting and /decide are forms.

A form in progress lives in the database (`models.form_drafts`). Typed answers reach it
through `on_private_message`, which sees every private message before the feature handlers
(handler group -1): with a form open it takes the text and stops there; without one, the
message goes on to the features as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop, BaseHandler

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.guard import Callback, guarded
from csp_bot.handlers.guard import button as guarded_button
from csp_bot.handlers.keyboards import button, parts
from csp_bot.handlers.progress import close_open_update
from csp_bot.handlers.replies import acknowledge, edit_in_place, remove_buttons, send, send_text
from csp_bot.models.errors import DomainError
from csp_bot.models.form_drafts import FormDraft, discard_form, load_form, save_form
from csp_bot.models.reminders import mark_reachable

log = logging.getLogger(__name__)

PREFIX = "fm"
SKIP = "_skip"
SAVE = "save"
CANCEL = "x"


@dataclass(frozen=True)
class Option:
    """A one-tap answer: what the button says and the value it stands for."""

    label: str
    value: str  # in the callback data, so short
    stored: str | None = None  # what the answer stores, if not `value` itself


OptionsFor = Callable[[Ctx, dict[str, str]], Awaitable[list[Option]]]
# Reads a typed answer into the value stored; raises DomainError with what is wrong.
ReadAnswer = Callable[[Ctx, str, dict[str, str]], Awaitable[str]]
Finish = Callable[[Update, Ctx, dict[str, str]], Awaitable[None]]


@dataclass(frozen=True)
class Step:
    """One question of a form."""

    name: str
    question: str  # template
    read: ReadAnswer | None = None  # None: only the buttons answer it
    options: OptionsFor | None = None
    skippable: bool = False
    columns: int = 2


@dataclass(frozen=True)
class Form:
    """A guided form; `name` is also the command whose access rule applies to it."""

    name: str
    steps: tuple[Step, ...]
    summary: str  # template shown before saving; receives the values and `labels`
    save: Finish
    describe: Callable[[Ctx, dict[str, str]], Awaitable[dict[str, object]]]

    def step(self, index: int) -> Step | None:
        return self.steps[index] if index < len(self.steps) else None


# --- starting, asking, finishing -----------------------------------------------------------


async def start_form(update: Update, context: Ctx, form: Form) -> None:
    """Open `form` at its first question (in a private chat; a group is sent there)."""
    chat = update.effective_chat
    assert chat is not None
    if chat.type != ChatType.PRIVATE:
        await send(update, context, "form_private_only.html", command=form.name)
        return
    await _forget(update, context)
    await close_open_update(update, context)
    draft = FormDraft(form=form.name, step=0, touched_at=context.now())
    await ask(update, context, form, draft, problem=None)


async def ask(
    update: Update, context: Ctx, form: Form, draft: FormDraft, *, problem: str | None
) -> None:
    """Show the question the draft is waiting for (or the summary), and store the draft."""
    step = form.step(draft.step)
    if step is None:
        facts = await form.describe(context, draft.values)
        text = context.templates.render(form.summary, **facts)
        markup = _keyboard(form, [[_button(form, "💾 Save", SAVE)]])
    else:
        options = await step.options(context, draft.values) if step.options else []
        text = context.templates.render(
            step.question, problem=problem, values=draft.values, options=options
        )
        markup = _step_keyboard(form, draft.step, step, options)
    await _show(update, context, draft, text, markup)


async def _show(
    update: Update, context: Ctx, draft: FormDraft, text: str, markup: InlineKeyboardMarkup
) -> None:
    """Edit the pressed message into the next question, or send it as a new message."""
    query = update.callback_query
    if query is not None and query.message is not None:
        await acknowledge(query)
        await edit_in_place(query, text, markup)
        draft = draft.shown_in(query.message.chat.id, query.message.message_id)
    else:
        await remove_buttons(context, draft)
        sent: Message = await send_text(update, context, text, keyboard=markup)
        draft = draft.shown_in(sent.chat_id, sent.message_id)
    user = update.effective_user
    assert user is not None
    await context.db.run(save_form, user_id=user.id, draft=draft)


def _button(form: Form, label: str, *data: str | int) -> InlineKeyboardButton:
    return button(label, PREFIX, form.name, *data)


def _keyboard(form: Form, rows: list[list[InlineKeyboardButton]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([*rows, [_button(form, "Cancel", CANCEL)]])


def _step_keyboard(
    form: Form, index: int, step: Step, options: Sequence[Option]
) -> InlineKeyboardMarkup:
    buttons = [_button(form, option.label, index, option.value) for option in options]
    rows = [buttons[i : i + step.columns] for i in range(0, len(buttons), step.columns)]
    if step.skippable:
        rows.append([_button(form, "Skip", index, SKIP)])
    return _keyboard(form, rows)


async def _forget(update: Update, context: Ctx) -> FormDraft | None:
    user = update.effective_user
    assert user is not None
    draft = await context.db.run(discard_form, user_id=user.id)
    if draft is not None:
        await remove_buttons(context, draft)
    return draft


async def _answer(
    update: Update, context: Ctx, form: Form, draft: FormDraft, step: Step, value: str
) -> None:
    await ask(update, context, form, draft.answered(step.name, value, context.now()), problem=None)


# --- answers by button ----------------------------------------------------------------------


def form_buttons(form: Form) -> BaseHandler[Update, Ctx, None]:
    """The handler for a form's buttons, guarded by the form's command."""

    async def on_button(update: Update, context: Ctx) -> None:
        """A tap on one of the form's buttons: an answer, Save or Cancel."""
        await on_form_button(update, context, form)

    return guarded_button(rf"^{PREFIX}:{form.name}:", form.name, on_button)


async def on_form_button(update: Update, context: Ctx, form: Form) -> None:
    """Check the tap belongs to the open form's current question, then act on it."""
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    pieces = parts(query.data, 3) or parts(query.data, 4)
    draft = await context.db.run(load_form, user_id=update.effective_user.id, at=context.now())
    if pieces is None:
        await refuse_forged(update, context)
    elif pieces[2] == CANCEL:
        await cancel_form(update, context)
    elif not _current(draft, form, query.message):
        await query.answer(context.templates.render("button_expired.html"), show_alert=True)
    elif pieces[2] == SAVE and len(pieces) == 3:
        assert draft is not None
        await _save(update, context, form, draft)
    elif len(pieces) == 4:
        assert draft is not None
        await _tapped(update, context, form, draft, pieces[2], pieces[3])
    else:
        await refuse_forged(update, context)


def _current(draft: FormDraft | None, form: Form, message: object) -> bool:
    """The tap is on the message that shows the open form's current question."""
    message_id = getattr(message, "message_id", None)
    return draft is not None and draft.form == form.name and draft.message_id == message_id


async def _tapped(
    update: Update, context: Ctx, form: Form, draft: FormDraft, index: str, value: str
) -> None:
    step = form.step(draft.step)
    if step is None or index != str(draft.step):
        # A question already answered (a stale client can still show its buttons).
        assert update.callback_query is not None
        await update.callback_query.answer(
            context.templates.render("button_expired.html"), show_alert=True
        )
        return
    if value == SKIP and step.skippable:
        await _answer(update, context, form, draft, step, "")
        return
    options = await step.options(context, draft.values) if step.options else []
    chosen = next((option for option in options if option.value == value), None)
    if chosen is None:
        await refuse_forged(update, context)
        return
    stored = chosen.value if chosen.stored is None else chosen.stored
    await _answer(update, context, form, draft, step, stored)


async def _save(update: Update, context: Ctx, form: Form, draft: FormDraft) -> None:
    """Store what the form collected; whatever happens, the form is then closed."""
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    await acknowledge(query)
    await context.db.run(discard_form, user_id=update.effective_user.id)
    await query.edit_message_reply_markup(reply_markup=None)
    try:
        await form.save(update, context, draft.values)
    except DomainError as problem:
        await send(update, context, "form_not_saved.html", problem=str(problem))


async def refuse_forged(update: Update, context: Ctx) -> None:
    """Callback data the bot never offered: refuse, and log who sent it."""
    query = update.callback_query
    assert query is not None
    log.warning("refused callback data %r from user %s", query.data, query.from_user.id)
    await query.answer("That button isn't valid.", show_alert=True)


async def cancel_form(update: Update, context: Ctx) -> None:
    """Close the form; nothing is stored."""
    if update.callback_query is not None:
        await update.callback_query.answer("Cancelled")
    draft = await _forget(update, context)
    await send(update, context, "form_cancelled.html", form=draft.form if draft else None)


# --- answers by typing ----------------------------------------------------------------------


def typed_answers(forms: Sequence[Form]) -> Callback:
    """The callback for handler group -1 that routes typed text to an open form."""
    by_name = {form.name: form for form in forms}

    async def on_private_message(update: Update, context: Ctx) -> None:
        """A private message: the answer to an open form, or on to the features."""
        user, message = update.effective_user, update.effective_message
        assert user is not None and message is not None
        draft = await context.db.run(_open_form, telegram_id=user.id, at=context.now())
        form = by_name.get(draft.form) if draft else None
        if draft is None or form is None:
            return
        text = message.text or ""
        if text.startswith("/"):
            await _command_during_form(update, context, text)
            return
        await guarded(form.name, _typed_for(form, draft, text))(update, context)
        raise ApplicationHandlerStop

    return on_private_message


def _open_form(session: Session, *, telegram_id: int, at: datetime) -> FormDraft | None:
    """One trip to the database per private message: note the member can be reached (they
    just wrote), and read any form they have open."""
    mark_reachable(session, telegram_id=telegram_id)
    return load_form(session, user_id=telegram_id, at=at)


async def _command_during_form(update: Update, context: Ctx, text: str) -> None:
    """/cancel closes the form; any other command closes it quietly and then runs."""
    if text.split()[0].split("@")[0].lower() == "/cancel":
        await cancel_form(update, context)
        raise ApplicationHandlerStop
    await _forget(update, context)


def _typed_for(form: Form, draft: FormDraft, text: str) -> Callback:
    async def take_typed(update: Update, context: Ctx) -> None:
        """Read the typed answer to the current question; on a problem, ask again."""
        step = form.step(draft.step)
        if step is None or step.read is None:
            await send(update, context, "form_use_buttons.html")
            return
        try:
            value = await step.read(context, text, draft.values)
        except DomainError as problem:
            await ask(update, context, form, draft, problem=str(problem))
            return
        await _answer(update, context, form, draft, step, value)

    return take_typed
