"""Guided forms: a few questions in turn, answered by tapping a button or typing, then a
summary with Save and Cancel. /meeting and /decide are forms.

A form is a dialogue of `handlers.dialogue`: its questions' readers, options and its save
run inside the transaction that reads the answer, so what is saved and the step that saves
it are one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from telegram import Update
from telegram.constants import ChatType

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.dialogue import (
    Alert,
    Dialogue,
    Move,
    Outcome,
    Say,
    Turn,
    begin,
    case_data_check,
    rows_of,
)
from csp_bot.handlers.keyboards import number
from csp_bot.handlers.replies import send
from csp_bot.models.dialogue import Buttons, Draft, Screen
from csp_bot.models.errors import DomainError

PREFIX = "fm"
SKIP = "_skip"
SAVE = "save"


@dataclass(frozen=True)
class Option:
    """A one-tap answer: what the button says and the value it stands for."""

    label: str
    value: str  # in the callback data, so short
    stored: str | None = None  # what the answer stores, if not `value` itself


OptionsFor = Callable[[Turn, dict[str, str]], list[Option]]
# Reads a typed answer into the value stored; raises DomainError with what is wrong.
ReadAnswer = Callable[[Turn, str, dict[str, str]], str]
# Stores what the form collected and returns the confirmation; DomainError if refused.
Finish = Callable[[Turn, dict[str, str]], Screen]
Describe = Callable[[Turn, dict[str, str]], dict[str, object]]


@dataclass(frozen=True)
class Step:
    """One question of a form."""

    name: str
    question: str  # template
    read: ReadAnswer | None = None  # None: only the buttons answer it
    options: OptionsFor | None = None
    skippable: bool = False
    columns: int = 2
    # Free text that could carry case data (an agenda, a note): checked before it is kept.
    case_check: bool = False


class Form(Dialogue):
    """A guided form; `name` is also the command whose access rule applies to it. The
    draft's step is the index of the question it waits for (the summary after the last)."""

    def __init__(
        self,
        *,
        name: str,
        called: str,
        steps: tuple[Step, ...],
        summary: str,
        save: Finish,
        describe: Describe,
    ) -> None:
        self.name = name
        self.prefix = (PREFIX, name)
        self.called = called  # "new board meeting": how the bot names it to the user
        self.steps = steps
        self.summary = summary  # template shown before saving; receives `describe`'s facts
        self.save = save
        self.describe = describe

    def step(self, index: int) -> Step | None:
        return self.steps[index] if index < len(self.steps) else None

    def begin(self, turn: Turn, args: str) -> Outcome:
        draft = turn.draft(self.name, "0")
        return Move(draft, self.ask(turn, draft))

    def ask(self, turn: Turn, draft: Draft) -> Screen:
        """The question the draft is waiting for, or the summary."""
        step = self.step(int(draft.step))
        if step is None:
            facts = self.describe(turn, draft.values)
            text = turn.render(self.summary, **facts)
            return Screen(text, ((self.button("💾 Save", SAVE),), (self.cancel_button(),)))
        options = step.options(turn, draft.values) if step.options else []
        text = turn.render(step.question, values=draft.values, options=options)
        return Screen(text, self._step_buttons(int(draft.step), step, options))

    def _step_buttons(self, index: int, step: Step, options: Sequence[Option]) -> Buttons:
        buttons = [self.button(option.label, index, option.value) for option in options]
        rows = rows_of(buttons, step.columns)
        if step.skippable:
            rows = (*rows, (self.button("Skip", index, SKIP),))
        return (*rows, (self.cancel_button(),))

    def typed(self, turn: Turn, draft: Draft, text: str) -> Outcome:
        """Read the typed answer to the current question; on a problem, ask again."""
        step = self.step(int(draft.step))
        if step is None or step.read is None:
            return Say(turn.render("form_use_buttons.html"))
        try:
            value = step.read(turn, text, draft.values)
        except DomainError as problem:
            # Only what was wrong: the question and its buttons are still just above.
            return Say(turn.render("form_try_again.html", problem=str(problem)))
        held = case_data_check(turn, self, draft, text) if step.case_check else None
        if held is not None:
            return held
        return self._answered(turn, draft, step, value)

    def well_formed(self, data: list[str]) -> bool:
        return data == [SAVE] or (len(data) == 2 and number(data[0]) is not None)

    def pressed(self, turn: Turn, draft: Draft, data: list[str]) -> Outcome:
        """Save, or a tap on an answer: it must belong to the current question."""
        step = self.step(int(draft.step))
        if data == [SAVE]:
            if step is not None:
                return Alert(turn.render("button_expired.html"), stale=True)
            confirmation = self.save(turn, draft.values)
            return Move(turn.close(draft), confirmation)
        index, value = data
        if step is None or index != draft.step:
            # A question already answered (a stale client can still show its buttons).
            return Alert(turn.render("button_expired.html"), stale=True)
        if value == SKIP and step.skippable:
            return self._answered(turn, draft, step, "")
        options = step.options(turn, draft.values) if step.options else []
        chosen = next((option for option in options if option.value == value), None)
        if chosen is None:
            return Alert(turn.render("button_expired.html"), forged=True)
        return self._answered(
            turn, draft, step, chosen.value if chosen.stored is None else chosen.stored
        )

    def _answered(self, turn: Turn, draft: Draft, step: Step, value: str) -> Outcome:
        moved = turn.move(draft, str(int(draft.step) + 1), **{step.name: value})
        return Move(moved, self.ask(turn, moved))

    def what(self, draft: Draft) -> str:
        return self.called

    def at_stake(self, draft: Draft) -> str | None:
        """Any answer given is kept: a form takes longer to fill in again than an update."""
        answered = [name for name in draft.values if not name.startswith("_")]  # the engine's
        if not answered:
            return None
        return f"Answered so far: {len(answered)} of {len(self.steps)} questions."


async def start_form(update: Update, context: Ctx, form: Form, args: str = "") -> None:
    """Open `form` at its first question, or where the command's `args` take it (in a
    private chat; a group is sent there)."""
    chat = update.effective_chat
    assert chat is not None
    if chat.type != ChatType.PRIVATE:
        await send(update, context, "form_private_only.html", command=form.name)
        return
    await begin(update, context, form, args)
