"""The one engine for guided dialogues (/update, /meeting, /decide and any later one).

A dialogue is a few steps, answered by tapping a button or typing. Its state lives in the
database (`models.dialogue`), one per user. Every answer is handled the same way:

1. one transaction reads the draft, checks the answer, and saves the next state together
   with the screen it shows and the Telegram update that moved it (finishing a dialogue
   stores its result in that same transaction);
2. only then is anything sent; once Telegram has taken it, the draft is marked shown.

So a crash at any point leaves the next tap or message valid: the inbox hands the update
over again, an update already applied is not applied twice, and a screen never shown is
shown from the stored state.

Typed answers reach the open dialogue one way: `first_look` sees every private text message
before the features (handler group -1). Whatever replaces or interrupts an open dialogue
says what happened to it, and what the user typed is never dropped without a word: another
dialogue first offers to finish it, another command puts it on hold.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlmodel import Session
from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import ApplicationHandlerStop, BaseHandler, MessageHandler, filters

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.guard import button as guarded_button
from csp_bot.handlers.guard import command, guarded, refuse_forged
from csp_bot.handlers.keyboards import callback
from csp_bot.handlers.policy import may_use
from csp_bot.handlers.replies import (
    QUERY_GONE,
    acknowledge,
    edit_in_place,
    remove_buttons,
    send,
    send_text,
)
from csp_bot.models.audit import Actor, record_event
from csp_bot.models.case_data import find_case_data
from csp_bot.models.dialogue import (
    CLOSED,
    Buttons,
    Draft,
    DraftLookup,
    Screen,
    load_draft,
    mark_shown,
    save_draft,
    shown_later,
)
from csp_bot.models.errors import DomainError
from csp_bot.models.inbox import write_after_handled
from csp_bot.models.membership import MemberView
from csp_bot.models.reminders import member_who_wrote

log = logging.getLogger(__name__)

CANCEL = "x"
# The engine's own buttons: finish the open dialogue first, or discard it and go on with
# the command that was held; carry on with a dialogue on hold, or discard it.
ENGINE = "dg"
FINISH, GO_ON, CARRY_ON, DISCARD = "back", "go", "on", "drop"
# The case-data check: the text held back, and what it seemed to contain; a press of
# "store anyway" or "edit" decides. CLEARED marks a text the person chose to store.
KEEP, EDIT = "keep", "edit"
HELD, HELD_KIND, CLEARED = "_held", "_held_kind", "_cleared"


# --- what a step returns ---------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """The dialogue moves to `draft` (closed when it ends) and shows `screen`."""

    draft: Draft
    screen: Screen


@dataclass(frozen=True)
class Alert:
    """A press that changes nothing, answered with a notice (a refusal, an expired step)."""

    text: str
    forged: bool = False
    stale: bool = False  # a button of a step no longer open: logged, as forged ones are


@dataclass(frozen=True)
class Say:
    """A reply that starts nothing and leaves any open dialogue as it is (a refused start)."""

    text: str
    buttons: Buttons = ()


Outcome = Move | Alert | Say


@dataclass(frozen=True)
class Turn:
    """What a step sees, inside the transaction that reads its answer."""

    session: Session
    context: Ctx
    update_id: int

    def render(self, template: str, **values: object) -> str:
        return self.context.templates.render(template, **values)

    def draft(self, dialogue: str, step: str, **values: str) -> Draft:
        """A new draft of `dialogue`, waiting at `step`."""
        return Draft(dialogue=dialogue, step=step, touched_at=self.context.now(), values=values)

    def move(self, draft: Draft, step: str, **values: str) -> Draft:
        return draft.moved(step, self.context.now(), **values)

    def close(self, draft: Draft) -> Draft:
        """The dialogue has ended (finished or cancelled): nothing is waiting any more."""
        return replace(draft.moved(CLOSED, self.context.now()), values={})


def choice(label: str, *data: str | int) -> tuple[str, str]:
    """A button as plain data: its label and callback data (within Telegram's limit)."""
    return (label, callback(*data))


def rows_of(buttons: Sequence[tuple[str, str]], columns: int) -> Buttons:
    return tuple(tuple(buttons[i : i + columns]) for i in range(0, len(buttons), columns))


class Dialogue:
    """A guided dialogue; `name` is also the command whose access rule applies to it."""

    name: str
    prefix: tuple[str, ...]  # the start of its buttons' callback data

    def begin(self, turn: Turn, args: str) -> Outcome:
        """The first step, from the command's arguments (`/update SOC-1 amber ...`)."""
        raise NotImplementedError

    def typed(self, turn: Turn, draft: Draft, text: str) -> Outcome:
        raise NotImplementedError

    def pressed(self, turn: Turn, draft: Draft, data: list[str]) -> Outcome:
        """A press on the current step's buttons (`data` after the prefix; not Cancel)."""
        raise NotImplementedError

    def well_formed(self, data: list[str]) -> bool:
        """Whether the bot could have made this callback data (else it is forged)."""
        raise NotImplementedError

    def what(self, draft: Draft) -> str:
        """The dialogue in a few words: "update on SOC-1", "new board meeting"."""
        raise NotImplementedError

    def at_stake(self, draft: Draft) -> str | None:
        """What the user has entered that would be lost, in a line; None if nothing."""
        raise NotImplementedError

    def cancelled(self, turn: Turn, draft: Draft) -> str:
        return turn.render("cancelled.html", ref=None)

    def button(self, label: str, *data: str | int) -> tuple[str, str]:
        return choice(label, *self.prefix, *data)

    def cancel_button(self) -> tuple[str, str]:
        return self.button("Cancel", CANCEL)


# --- one transaction per answer --------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """What the transaction decided; shown afterwards."""

    draft: Draft | None = None  # the stored state whose screen is to be shown
    alert: Alert | None = None
    say: Say | None = None
    expired: Draft | None = None
    again: bool = False  # the update was applied before (its screen shown if it never was)
    lapsed: Draft | None = None  # a dialogue started anew found this one run out of time


def _expiry(context: Ctx) -> timedelta:
    """The one expiry of every dialogue (CSPBOT_DIALOGUE_MINUTES)."""
    return timedelta(minutes=context.settings.dialogue_minutes)


def _load(turn: Turn, user_id: int) -> DraftLookup:
    """The user's draft, its row held until the transaction ends (one answer at a time)."""
    context = turn.context
    return load_draft(
        turn.session, user_id=user_id, at=context.now(), expiry=_expiry(context), lock=True
    )


def _commit(
    turn: Turn,
    user_id: int,
    dialogue: Dialogue,
    outcome: Outcome,
    shown_in: tuple[int, int] | None,
) -> Applied:
    """Store the state `outcome` moves to (if any) with this update's id and its screen."""
    if isinstance(outcome, Alert):
        return Applied(alert=outcome)
    if isinstance(outcome, Say):
        return Applied(say=outcome)
    draft = replace(
        outcome.draft,
        update_id=turn.update_id,
        screen=outcome.screen,
        shown=False,
        what=dialogue.what(outcome.draft),
        stake=None if outcome.draft.closed else dialogue.at_stake(outcome.draft),
    )
    if shown_in is not None and outcome.screen.in_place:
        draft = draft.shown_in(*shown_in)
    save_draft(turn.session, user_id=user_id, draft=draft)
    return Applied(draft=draft)


def _answer(
    session: Session,
    *,
    context: Ctx,
    update_id: int,
    user_id: int,
    dialogue: Dialogue,
    text: str | None,
    data: list[str] | None,
    pressed: tuple[int, int] | None,
) -> Applied:
    """Read a typed answer (`text`) or a press (`data`) and store where it leads."""
    turn = Turn(session, context, update_id)
    lookup = _load(turn, user_id)
    draft = lookup.open
    if lookup.expired is not None:
        return Applied(expired=lookup.expired)
    if lookup.draft is not None and lookup.draft.answered_by(update_id):
        return Applied(draft=lookup.draft, again=True)
    if data is not None:
        outcome = _press_outcome(turn, dialogue, draft, data, pressed)
    elif draft is None or draft.dialogue != dialogue.name:
        return Applied()
    else:
        # A new text replaces one held back by the case-data check: it is checked afresh.
        outcome = dialogue.typed(turn, draft.without(HELD, HELD_KIND), text or "")
    return _commit(turn, user_id, dialogue, outcome, pressed)


def _press_outcome(
    turn: Turn,
    dialogue: Dialogue,
    draft: Draft | None,
    data: list[str],
    pressed: tuple[int, int] | None,
) -> Outcome:
    if not data or not all(data) or not (data == [CANCEL] or dialogue.well_formed(data)):
        return Alert(turn.render("button_expired.html"), forged=True)
    current = (
        draft is not None
        and draft.dialogue == dialogue.name
        and (draft.message_id is None or pressed is None or draft.message_id == pressed[1])
    )
    if not current:
        return Alert(turn.render("button_expired.html"), stale=True)
    assert draft is not None
    if data == [CANCEL]:
        return _cancelled(turn, dialogue, draft)
    return dialogue.pressed(turn, draft, data)


def _cancelled(turn: Turn, dialogue: Dialogue, draft: Draft) -> Move:
    screen = Screen(dialogue.cancelled(turn, draft), in_place=False, toast="Cancelled")
    return Move(turn.close(draft), screen)


# --- the case-data check ----------------------------------------------------------------------


def case_data_check(turn: Turn, dialogue: Dialogue, draft: Draft, text: str) -> Move | None:
    """Before free text is stored: if it looks like case data (a postcode, a phone number,
    ...), hold it back and ask; None when it is clear, or the person chose to store it."""
    if draft.values.get(CLEARED) == text:
        return None
    found = find_case_data(text)
    if not found:
        return None
    held = turn.move(draft, draft.step, **{HELD: text, HELD_KIND: found[0].value})
    warning = turn.render("case_data_ask.html", kinds=[kind.value for kind in found])
    buttons = (
        (choice("✏️ Edit it", ENGINE, EDIT), choice("Store anyway", ENGINE, KEEP)),
        (dialogue.cancel_button(),),
    )
    return Move(held, Screen(warning, buttons))


def _case_choice(
    turn: Turn,
    user_id: int,
    dialogue: Dialogue,
    draft: Draft,
    action: str,
    pressed: tuple[int, int] | None,
) -> Applied:
    """Store the held text as if typed again (the step goes on, and may store it), or ask
    for it again. The choice is audited with the kind, never the text. The press's update
    id is saved with the step, so a press handled again after a crash stores nothing twice."""
    text, kind = draft.values[HELD], draft.values.get(HELD_KIND, "")
    record_event(
        turn.session,
        actor=Actor.member(turn.context.acting_member.id),
        at=turn.context.now(),
        entity="case_data_check",
        entity_id=None,
        change="stored anyway" if action == KEEP else "edited",
        detail={"kind": kind, "dialogue": draft.dialogue, "what": draft.what},
    )
    draft = draft.without(HELD, HELD_KIND)
    if action == EDIT:
        again = turn.render("case_data_edit.html")
        return _commit(
            turn,
            user_id,
            dialogue,
            Move(draft, Screen(again, ((dialogue.cancel_button(),),))),
            pressed,
        )
    outcome = dialogue.typed(turn, turn.move(draft, draft.step, **{CLEARED: text}), text)
    if isinstance(outcome, Move):
        outcome = Move(outcome.draft.without(CLEARED), outcome.screen)
    return _commit(turn, user_id, dialogue, outcome, pressed)


# --- showing what was stored -----------------------------------------------------------------


def markup(buttons: Buttons) -> InlineKeyboardMarkup | None:
    rows = [[InlineKeyboardButton(label, callback_data=data) for label, data in r] for r in buttons]
    return InlineKeyboardMarkup(rows) if rows else None


async def show(update: Update, context: Ctx, applied: Applied) -> None:
    """Show the outcome of a transaction: alerts, replies, the next step."""
    query = update.callback_query
    if applied.alert is not None:
        assert query is not None
        if applied.alert.forged:
            await refuse_forged(update, context)
        else:
            if applied.alert.stale:
                log.info("stale callback data %r from user %s", query.data, query.from_user.id)
            await query.answer(applied.alert.text, show_alert=True)
    elif applied.expired is not None:
        await _say_expired(update, context, applied.expired)
    elif applied.say is not None:
        if query is not None:
            await acknowledge(query)
        await send_text(update, context, applied.say.text, keyboard=markup(applied.say.buttons))
    elif applied.draft is not None:
        await _show_step(update, context, applied)


async def _show_step(update: Update, context: Ctx, applied: Applied) -> None:
    draft, query = applied.draft, update.callback_query
    assert draft is not None and draft.screen is not None and update.effective_user is not None
    if applied.again and draft.shown:
        if query is not None:
            await acknowledge(query)  # the answer went before the restart
        return
    for chat_id, message_id, text in draft.screen.closes:
        await edit_earlier(context, chat_id, message_id, text)
    screen, where = draft.screen, None
    if query is not None:
        await _answer_press(query, screen.toast)
    if query is not None and query.message is not None and screen.in_place:
        await edit_in_place(query, screen.text, markup(screen.buttons))
    else:
        await _leave_prior(update, context, draft, screen)
        sent = await send_text(update, context, screen.text, keyboard=markup(screen.buttons))
        where = (sent.chat_id, sent.message_id) if screen.buttons else None
    user_id, update_id = update.effective_user.id, draft.update_id or update.update_id
    # A screen without buttons is noted with the update's mark done (one transaction for
    # many updates): nothing is pressed on it that would need to find its message first.
    if where is None and write_after_handled(shown_later(user_id=user_id, update_id=update_id)):
        return
    await context.db.run(
        mark_shown,
        user_id=user_id,
        update_id=update_id,
        chat_id=where[0] if where else None,
        message_id=where[1] if where else None,
    )


async def _answer_press(query: CallbackQuery, toast: str | None) -> None:
    """Stop the button's spinner, with the step's notice if it has one. A press answered
    before a restart cannot be answered again: that is no failure."""
    if toast is None:
        await acknowledge(query)
        return
    try:
        await query.answer(toast)
    except BadRequest as refused:
        if QUERY_GONE not in refused.message.lower():
            raise


async def _leave_prior(update: Update, context: Ctx, draft: Draft, screen: Screen) -> None:
    """The question answered loses its buttons (or becomes `screen.prior`)."""
    query = update.callback_query
    message = query.message if query is not None else None
    chat_id = message.chat.id if message is not None else draft.chat_id
    message_id = message.message_id if message is not None else draft.message_id
    if chat_id is None or message_id is None:
        return
    if screen.prior is not None:
        await edit_earlier(context, chat_id, message_id, screen.prior)
    else:
        await remove_buttons(context, draft.shown_in(chat_id, message_id))


async def edit_earlier(
    context: Ctx,
    chat_id: int,
    message_id: int,
    text: str | None,
    buttons: Buttons = (),
) -> None:
    """Turn an earlier message into `text` (None: keep the text, drop the buttons). Telegram
    refuses an edit that changes nothing (made already, before a restart): no failure."""
    try:
        if text is None:
            await context.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
        else:
            await context.bot.edit_message_text(
                text, chat_id, message_id, reply_markup=markup(buttons)
            )
    except BadRequest as refused:
        log.info("message %s not edited: %s", message_id, refused.message)


async def _say_expired(update: Update, context: Ctx, draft: Draft) -> None:
    """The draft ran out of time: its buttons go, and the user is told nothing was stored."""
    await remove_buttons(context, draft)
    if update.callback_query is not None:
        await acknowledge(update.callback_query)
    await send(
        update,
        context,
        "dialogue_expired.html",
        what=draft.what,
        command=draft.dialogue,
        minutes=context.settings.dialogue_minutes,
    )


# --- starting a dialogue ---------------------------------------------------------------------


async def begin(update: Update, context: Ctx, dialogue: Dialogue, args: str) -> None:
    """Start `dialogue` from a command; an open one is replaced only once nothing the user
    entered would be lost (otherwise they are offered to finish it first)."""
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    applied = await context.db.run(
        _begin,
        context=context,
        update_id=update.update_id,
        user_id=user.id,
        dialogue=dialogue,
        args=args,
        command=(message.text or f"/{dialogue.name}").strip(),
    )
    if applied.lapsed is not None:
        await _say_expired(update, context, applied.lapsed)
    await show(update, context, applied)


def _begin(
    session: Session,
    *,
    context: Ctx,
    update_id: int,
    user_id: int,
    dialogue: Dialogue,
    args: str,
    command: str,
) -> Applied:
    turn = Turn(session, context, update_id)
    lookup = _load(turn, user_id)
    old = lookup.draft
    if old is not None and old.update_id == update_id and not (old.shown and old.closed):
        return Applied(draft=old, again=True)
    # A finished one-line update is begun again: the domain answers "already stored".
    open_ = lookup.open
    if open_ is not None and open_.update_id != update_id and open_.stake:
        return _hold(turn, user_id, open_, command, f"/{dialogue.name}")
    applied = _commit(turn, user_id, dialogue, dialogue.begin(turn, args), None)
    if lookup.expired is not None:
        # The first look left the draft to this transaction (`Dialogues.first_look`).
        return replace(applied, lapsed=lookup.expired)
    if applied.draft is None or open_ is None:
        return applied
    text = turn.render("dialogue_replaced.html", what=open_.what, command=f"/{dialogue.name}")
    return _closing(turn, user_id, applied, open_, text)


def _closing(turn: Turn, user_id: int, applied: Applied, old: Draft, text: str | None) -> Applied:
    """The stored screen also turns `old`'s question into `text` (None: only its buttons
    go), so a reply shown again after a crash says it too."""
    draft = applied.draft
    if draft is None or draft.screen is None or old.chat_id is None or old.message_id is None:
        return applied
    closes = ((old.chat_id, old.message_id, text),)
    draft = replace(draft, screen=replace(draft.screen, closes=closes))
    save_draft(turn.session, user_id=user_id, draft=draft)
    return replace(applied, draft=draft)


def _hold(turn: Turn, user_id: int, draft: Draft, command: str, name: str) -> Applied:
    """Keep `command` (which starts `name`) waiting and ask: finish the open dialogue
    first, or discard it?"""
    save_draft(turn.session, user_id=user_id, draft=replace(draft, held=command, paused=False))
    text = turn.render("dialogue_held.html", what=draft.what, stake=draft.stake, command=command)
    buttons = (
        (choice("↩️ Finish it first", ENGINE, FINISH),),
        (choice(f"🗑 Discard it, go on with {name}", ENGINE, GO_ON),),
    )
    return Applied(say=Say(text, buttons))


# --- the router: typed answers, presses, /cancel, and the engine's own buttons ------------------


class Dialogues:
    """Every dialogue the bot has, and the handlers that bring updates to them."""

    def __init__(self, dialogues: Iterable[Dialogue]) -> None:
        self.by_name = {dialogue.name: dialogue for dialogue in dialogues}

    def starting(self, text: str) -> Dialogue | None:
        """The dialogue this command starts, if it starts one (`/start update` does)."""
        words = text.split()
        name = words[0].split("@")[0].lower().removeprefix("/")
        if name == "start":
            return self.by_name.get("update") if words[1:] == ["update"] else None
        return self.by_name.get(name)

    def first_look_handlers(self) -> list[BaseHandler[Update, Ctx, None]]:
        """For handler group -1: every private text message is seen here first."""
        return [MessageHandler(filters.ChatType.PRIVATE & filters.TEXT, self.first_look)]

    def handlers(self) -> list[BaseHandler[Update, Ctx, None]]:
        """The dialogues' buttons, the engine's buttons and /cancel (handler group 0)."""
        presses = [self._press_handler(dialogue) for dialogue in self.by_name.values()]
        return [
            *presses,
            guarded_button(rf"^{ENGINE}:", "cancel", self.on_engine_button),
            command("cancel", self.cancel),
        ]

    # typed text

    async def first_look(self, update: Update, context: Ctx) -> None:
        """A private message: the answer to the open dialogue (and stopped here), or a
        command (which puts the open dialogue on hold), or on to the features."""
        user, message = update.effective_user, update.effective_message
        assert user is not None and message is not None
        text = message.text or ""
        if text.startswith("/") and self.starting(text):
            # The dialogue reads the draft itself, holding its row, and says if it had run
            # out of time: read here too, it would be read twice. Only who wrote is read.
            member = await context.db.run(member_who_wrote, telegram_id=user.id)
            context.member, context.member_known = member, True
            return
        lookup, member = await context.db.run(
            _first_look, telegram_id=user.id, at=context.now(), expiry=_expiry(context)
        )
        context.member, context.member_known = member, True
        if lookup.expired is not None:
            await _say_expired(update, context, lookup.expired)
            if not text.startswith("/"):
                raise ApplicationHandlerStop
        draft = lookup.open
        if draft is None or draft.closed:
            return
        if text.startswith("/"):
            await self._command_during(update, context, draft, text)
            return
        await self._typed(update, context, draft, text)
        raise ApplicationHandlerStop

    async def _typed(self, update: Update, context: Ctx, draft: Draft, text: str) -> None:
        dialogue = self.by_name.get(draft.dialogue)
        if dialogue is None:
            return
        if draft.paused or draft.held:
            template = "dialogue_on_hold.html" if draft.paused else "dialogue_choose.html"
            await send(update, context, template, what=draft.what)
            return

        async def take_typed(update: Update, context: Ctx) -> None:
            """Read the typed answer to the open step."""
            await self._apply(update, context, dialogue, text=text)

        await guarded(dialogue.name, take_typed)(update, context)

    async def _command_during(self, update: Update, context: Ctx, draft: Draft, text: str) -> None:
        """/cancel and commands that start a dialogue deal with the open one themselves;
        any other command puts it on hold (or closes it when nothing would be lost)."""
        if text.split()[0].split("@")[0].lower() == "/cancel" or self.starting(text):
            return
        user = update.effective_user
        assert user is not None
        held = await context.db.run(
            _interrupt,
            context=context,
            update_id=update.update_id,
            user_id=user.id,
            command=text.split()[0].split("@")[0],
        )
        if held is not None:
            await edit_earlier(context, *held)

    # presses

    def _press_handler(self, dialogue: Dialogue) -> BaseHandler[Update, Ctx, None]:
        async def on_press(update: Update, context: Ctx) -> None:
            """A press on one of the dialogue's buttons."""
            query = update.callback_query
            assert query is not None
            data = (query.data or "").split(":")[len(dialogue.prefix) :]
            await self._apply(update, context, dialogue, data=data)

        pattern = "^" + ":".join(dialogue.prefix) + ":"
        return guarded_button(pattern, dialogue.name, on_press)

    async def _apply(
        self,
        update: Update,
        context: Ctx,
        dialogue: Dialogue,
        *,
        text: str | None = None,
        data: list[str] | None = None,
    ) -> None:
        user = update.effective_user
        assert user is not None
        message = update.callback_query.message if update.callback_query else None
        try:
            applied = await context.db.run(
                _answer,
                context=context,
                update_id=update.update_id,
                user_id=user.id,
                dialogue=dialogue,
                text=text,
                data=data,
                pressed=(message.chat.id, message.message_id) if message else None,
            )
        except DomainError as problem:
            # The step refused inside its transaction (nothing of it was kept): the dialogue
            # ends here, saying why.
            applied = await context.db.run(
                _failed,
                context=context,
                update_id=update.update_id,
                user_id=user.id,
                dialogue=dialogue,
                problem=str(problem),
            )
        await show(update, context, applied)

    async def on_engine_button(self, update: Update, context: Ctx) -> None:
        """dg:back / dg:go (a held command), dg:on / dg:drop (a dialogue on hold)."""
        query, user = update.callback_query, update.effective_user
        assert query is not None and user is not None
        message = query.message
        applied = await context.db.run(
            self._engine_press,
            context=context,
            update_id=update.update_id,
            user_id=user.id,
            action=(query.data or "").removeprefix(f"{ENGINE}:"),
            pressed=(message.chat.id, message.message_id) if message else None,
        )
        await show(update, context, applied)

    def _engine_press(
        self,
        session: Session,
        *,
        context: Ctx,
        update_id: int,
        user_id: int,
        action: str,
        pressed: tuple[int, int] | None,
    ) -> Applied:
        turn = Turn(session, context, update_id)
        lookup = _load(turn, user_id)
        if lookup.expired is not None:
            return Applied(expired=lookup.expired)
        if lookup.draft is not None and lookup.draft.answered_by(update_id):
            return Applied(draft=lookup.draft, again=True)
        draft = lookup.open
        dialogue = self.by_name.get(draft.dialogue) if draft else None
        if action not in (FINISH, GO_ON, CARRY_ON, DISCARD, KEEP, EDIT):
            return Applied(alert=Alert(turn.render("button_expired.html"), forged=True))
        if draft is None or dialogue is None:
            return Applied(alert=Alert(turn.render("button_expired.html"), stale=True))
        if draft.held and action == FINISH:
            return _finish_first(turn, user_id, dialogue, draft, pressed)
        if draft.held and action == GO_ON:
            return self._go_on(turn, user_id, draft, draft.held, pressed)
        if draft.paused and action == CARRY_ON and draft.screen is not None:
            screen = replace(draft.screen, in_place=True, prior=None, toast=None)
            return _commit(
                turn, user_id, dialogue, Move(replace(draft, paused=False), screen), pressed
            )
        if action in (KEEP, EDIT) and HELD in draft.values and not draft.paused:
            return _case_choice(turn, user_id, dialogue, draft, action, pressed)
        if draft.paused and action == DISCARD:
            text = turn.render("dialogue_discarded.html", what=draft.what)
            return _commit(turn, user_id, dialogue, Move(turn.close(draft), Screen(text)), pressed)
        return Applied(alert=Alert(turn.render("button_expired.html"), stale=True))

    def _go_on(
        self,
        turn: Turn,
        user_id: int,
        old: Draft,
        held: str,
        pressed: tuple[int, int] | None,
    ) -> Applied:
        """Discard the open dialogue and run the command that was waiting."""
        dialogue = self.starting(held)
        member = turn.context.acting_member
        if dialogue is None or not may_use(member.role, dialogue.name):
            return Applied(alert=Alert(turn.render("button_expired.html"), stale=True))
        args = "" if held.split()[0].lower().startswith("/start") else _arguments(held)
        gone = turn.render("dialogue_discarded.html", what=old.what)
        # Closed first, so a start that is refused (a Say) still leaves nothing open.
        _commit(turn, user_id, dialogue, Move(turn.close(old), Screen(gone)), pressed)
        applied = _commit(turn, user_id, dialogue, dialogue.begin(turn, args), pressed)
        return _closing(turn, user_id, applied, old, gone)

    # /cancel

    async def cancel(self, update: Update, context: Ctx) -> None:
        """Leave the open dialogue at any step; nothing is stored."""
        user = update.effective_user
        assert user is not None
        applied = await context.db.run(
            self._cancel, context=context, update_id=update.update_id, user_id=user.id
        )
        if applied is None:
            await send(update, context, "cancel_nothing.html")
        else:
            await show(update, context, applied)

    def _cancel(
        self, session: Session, *, context: Ctx, update_id: int, user_id: int
    ) -> Applied | None:
        turn = Turn(session, context, update_id)
        lookup = _load(turn, user_id)
        if lookup.draft is not None and lookup.draft.answered_by(update_id):
            return Applied(draft=lookup.draft, again=True)
        draft = lookup.open
        dialogue = self.by_name.get(draft.dialogue) if draft else None
        if draft is None or dialogue is None:
            return None
        return _commit(turn, user_id, dialogue, _cancelled(turn, dialogue, draft), None)


def _arguments(command: str) -> str:
    """What follows the command word: `/update SOC-1 done` -> `SOC-1 done`."""
    return command.partition(" ")[2].strip()


def _finish_first(
    turn: Turn, user_id: int, dialogue: Dialogue, draft: Draft, pressed: tuple[int, int] | None
) -> Applied:
    """The held command is dropped; the open step's question is asked again, at the bottom."""
    assert draft.held is not None and draft.screen is not None
    prior = turn.render("dialogue_finishing.html", what=draft.what, command=draft.held)
    screen = replace(draft.screen, in_place=False, prior=prior, toast=None)
    applied = _commit(turn, user_id, dialogue, Move(replace(draft, held=None), screen), pressed)
    return _closing(turn, user_id, applied, draft, None)


def _failed(
    session: Session,
    *,
    context: Ctx,
    update_id: int,
    user_id: int,
    dialogue: Dialogue,
    problem: str,
) -> Applied:
    """Close the dialogue whose last step was refused, keeping the reason to show."""
    turn = Turn(session, context, update_id)
    draft = _load(turn, user_id).open
    if draft is None:
        return Applied(say=Say(turn.render("form_not_saved.html", problem=problem)))
    screen = Screen(turn.render("form_not_saved.html", problem=problem), in_place=False)
    return _commit(turn, user_id, dialogue, Move(turn.close(draft), screen), None)


def _first_look(
    session: Session, *, telegram_id: int, at: datetime, expiry: timedelta
) -> tuple[DraftLookup, MemberView | None]:
    """One trip to the database per private message: who wrote (for the guard), noted as
    reachable, and any dialogue they have open."""
    member = member_who_wrote(session, telegram_id=telegram_id)
    return load_draft(session, user_id=telegram_id, at=at, expiry=expiry), member


def _interrupt(
    session: Session, *, context: Ctx, update_id: int, user_id: int, command: str
) -> tuple[int, int, str, Buttons] | None:
    """Another command while a dialogue is open: put it on hold if the user has entered
    something, else close it. Returns how its question message is to be edited."""
    turn = Turn(session, context, update_id)
    draft = _load(turn, user_id).open
    if draft is None or draft.paused or draft.chat_id is None or draft.message_id is None:
        return None
    where = (draft.chat_id, draft.message_id)
    if not draft.stake:
        save_draft(session, user_id=user_id, draft=turn.close(draft))
        return (*where, turn.render("dialogue_replaced.html", what=draft.what, command=command), ())
    save_draft(session, user_id=user_id, draft=replace(draft, paused=True, held=None))
    text = turn.render("dialogue_paused.html", what=draft.what, stake=draft.stake, command=command)
    buttons = ((choice("▶️ Carry on", ENGINE, CARRY_ON), choice("🗑 Discard", ENGINE, DISCARD)),)
    return (*where, text, buttons)
