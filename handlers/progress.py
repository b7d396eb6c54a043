"""Partners' daily job: /my, the guided and one-line /update, and /undo.

The guided update is a dialogue of `handlers.dialogue`: each step is a plain function that
runs inside the transaction that reads its answer, and the update is stored by the same
transaction as its last step.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.ext import BaseHandler, filters

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
)
from csp_bot.handlers.guard import command
from csp_bot.handlers.keyboards import number, page_of, pager
from csp_bot.handlers.replies import send
from csp_bot.handlers.templating import STATUS_MARKS
from csp_bot.models import access
from csp_bot.models.case_data import find_case_data
from csp_bot.models.dialogue import Buttons, Draft, Screen
from csp_bot.models.enums import Status
from csp_bot.models.errors import DomainError
from csp_bot.models.limits import check_note
from csp_bot.models.measures import FigureUndone, undo_latest
from csp_bot.models.my_actions import my_page
from csp_bot.models.owners import may_update_action
from csp_bot.models.progress import (
    ActionView,
    LoggedUpdate,
    NotPermitted,
    UnknownAction,
    find_action,
    log_progress,
    normalise_ref,
    refusal,
    updatable_actions,
)
from csp_bot.models.values import parse_status

log = logging.getLogger(__name__)

ACTIONS_PER_PAGE = 8
TITLE_IN_BUTTON = 40
UPDATE_STATUSES = (Status.GREEN, Status.AMBER, Status.RED, Status.COMPLETE)
# Statuses that ask nothing more: a one-line update with one of them and a note is stored.
STORED_AT_ONCE = (Status.GREEN, Status.COMPLETE)
# Button label, and what is stored as the forecast.
FORECASTS = {
    "yes": ("Yes, by the due date", "Expected to recover by the due date"),
    "no": ("No, it will be late", "Not expected to recover by the due date"),
    "unsure": ("Not sure yet", "Not yet known whether it will recover by the due date"),
}
DEEP_LINK_UPDATE = "update"
COMMAND_WORD = re.compile(r"^/\S+\s*")
# The steps of the guided update, and how the question still open is named.
ACTION, STATUS, NOTE, MITIGATION, FORECAST = "action", "status", "note", "mitigation", "forecast"
STEP_WORDS = {MITIGATION: "what is being done about it", FORECAST: "the forecast"}


# --- /my -------------------------------------------------------------------------------


async def my_actions(update: Update, context: Ctx) -> None:
    """The member's actions with status, due date and last update, and who covers for whom."""
    member = context.acting_member
    page = await context.db.run(
        my_page, member=member, at=context.now(), quiet_after=context.quiet_after
    )
    await send(
        update,
        context,
        "my_actions.html",
        member=member,
        actions=page.actions,
        page=page,
        quiet_days=context.settings.quiet_days,
        may_update=member.role in access.UPDATERS,  # board members and observers only read
    )


# --- /update: starting -------------------------------------------------------------------


async def update_command(update: Update, context: Ctx) -> None:
    """Start a guided update, or take the one-line form `/update REF STATUS note`."""
    chat = update.effective_chat
    assert chat is not None
    if chat.type != ChatType.PRIVATE:
        await send_to_private_chat(update, context)
        return
    await begin(update, context, UPDATE, COMMAND_WORD.sub("", _text(update)).strip())


def _text(update: Update) -> str:
    message = update.effective_message
    return (message.text or "") if message else ""


async def send_to_private_chat(update: Update, context: Ctx) -> None:
    """In a group, point to a private chat instead of filling the group with forms."""
    link = f"https://t.me/{context.bot.username}?start={DEEP_LINK_UPDATE}"
    buttons = InlineKeyboardMarkup([[InlineKeyboardButton("Update in a private chat", url=link)]])
    await send(update, context, "update_in_private.html", keyboard=buttons)


async def start_from_link(update: Update, context: Ctx) -> None:
    """`/start update` (the group's deep link) opens the guided update; typed in a group,
    it points to the private chat, as /update does there."""
    chat = update.effective_chat
    if chat is not None and chat.type != ChatType.PRIVATE:
        await send_to_private_chat(update, context)
        return
    await begin(update, context, UPDATE, "")


@dataclass(frozen=True)
class UpdateFacts:
    """A draft's answers as the templates read them."""

    ref: str | None
    status: Status | None


def _facts(draft: Draft) -> UpdateFacts:
    status = draft.values.get("status")
    return UpdateFacts(draft.values.get("ref"), Status(status) if status else None)


class UpdateDialogue(Dialogue):
    """The guided update: action, status, note, then a mitigation and a forecast if the
    status needs them. The one-line form starts it with whatever was typed."""

    name = "update"
    prefix = ("u",)

    def begin(self, turn: Turn, args: str) -> Outcome:
        return _one_line(turn, args) if args else _choose_action(turn)

    def typed(self, turn: Turn, draft: Draft, text: str) -> Outcome:
        if draft.step == NOTE:
            return _take_note(turn, draft, text)
        if draft.step == MITIGATION:
            return _take_mitigation(turn, draft, text)
        if draft.step == ACTION and text.strip():
            # A reference typed at the picker ("SOC-1", or the whole one-line form).
            return _one_line(turn, text.strip())
        return Say(turn.render("update_use_buttons.html"))

    def well_formed(self, data: list[str]) -> bool:
        return len(data) == 2 and data[0] in STEP_BUTTONS

    def pressed(self, turn: Turn, draft: Draft, data: list[str]) -> Outcome:
        expected, handle = STEP_BUTTONS[data[0]]
        if draft.step != expected:
            return Alert(turn.render("button_expired.html"), stale=True)
        return handle(turn, draft, data[1])

    def what(self, draft: Draft) -> str:
        ref = draft.values.get("ref")
        return f"update on {ref}" if ref else "update"

    def at_stake(self, draft: Draft) -> str | None:
        """A typed note is never dropped without a word; a choice of buttons is quick to redo."""
        note = draft.values.get("note")
        if note is None:
            return None
        lines = [f"Still to answer: {STEP_WORDS.get(draft.step, 'one more question')}."]
        lines.append(f"Your note: “{note}”")
        if "mitigation" in draft.values:
            lines.append(f"Mitigation: “{draft.values['mitigation']}”")
        return "\n".join(lines)

    def cancelled(self, turn: Turn, draft: Draft) -> str:
        return turn.render("cancelled.html", ref=draft.values.get("ref"))


def _choose_action(turn: Turn) -> Outcome:
    """The action picker, as the first step."""
    views = _updatable(turn)
    if not views:
        return Say(turn.render("update_nothing.html", member=turn.context.acting_member))
    return Move(turn.draft("update", ACTION), _action_picker(turn, views, page=0))


def _updatable(turn: Turn) -> list[ActionView]:
    context = turn.context
    return updatable_actions(
        turn.session,
        member=context.acting_member,
        at=context.now(),
        quiet_after=context.quiet_after,
    )


def _action_picker(turn: Turn, views: list[ActionView], *, page: int) -> Screen:
    shown, page, pages = page_of(views, page, ACTIONS_PER_PAGE)
    rows = [(UPDATE.button(_action_label(view), "a", view.ref),) for view in shown]
    pages_row = tuple((b.text, str(b.callback_data)) for b in pager(page, pages, "u", "p"))
    text = turn.render("update_choose_action.html", page=page, pages=pages)
    return Screen(text, (*rows, pages_row, (UPDATE.cancel_button(),)))


def _action_label(view: ActionView) -> str:
    title = view.title
    if len(title) > TITLE_IN_BUTTON:
        title = title[: TITLE_IN_BUTTON - 1] + "…"
    return f"{STATUS_MARKS[view.status]} {view.ref} {title}"


def _status_picker() -> Buttons:
    statuses = [
        UPDATE.button(f"{STATUS_MARKS[s]} {s.label}", "s", s.value) for s in UPDATE_STATUSES
    ]
    return (tuple(statuses[:2]), tuple(statuses[2:]), (UPDATE.cancel_button(),))


def _forecast_picker() -> Buttons:
    choices = [(UPDATE.button(label, "f", key),) for key, (label, _) in FORECASTS.items()]
    return (*choices, (UPDATE.cancel_button(),))


# --- the one-line form -------------------------------------------------------------------


def _one_line(turn: Turn, typed: str) -> Outcome:
    """`SOC-1 amber waiting for ...`: as much as is typed, then ask for what is missing."""
    ref, _, rest = typed.partition(" ")
    status, note = _split_status(rest)
    cleaned = _storable(note) if status in STORED_AT_ONCE else None
    if status is not None and cleaned is not None:
        return _store_typed(turn, ref, status, cleaned)
    action = _action_for(turn, ref)
    if not isinstance(action, ActionView):
        return action
    draft = turn.draft("update", STATUS, ref=action.ref)
    if not rest.strip():
        return _ask_status(turn, draft, action)
    if status is None:
        return Say(turn.render("update_bad_status.html", typed=rest.split()[0]))
    draft = turn.move(draft, NOTE, status=status.value)
    if note.strip():
        return _take_note(turn, draft, note)
    return _ask_note(turn, draft, None)


def _storable(note: str) -> str | None:
    """The note as it is stored, if it can be stored as typed (not empty, not too long, no
    case data); None if something is to be asked about it."""
    try:
        cleaned = check_note(note)
    except DomainError:
        return None
    return None if find_case_data(note) else cleaned


def _store_typed(turn: Turn, ref: str, status: Status, note: str) -> Outcome:
    """Everything was typed and nothing is to be asked: store it at once. The update's own
    checks say whether there is such an action and whether the member may update it, as
    `_action_for` would have before anything else (read once: the action is locked there)."""
    values = {"ref": normalise_ref(ref), "status": status.value, "note": note}
    draft = turn.draft("update", NOTE, **values)
    try:
        logged = _log(turn, draft, None)
    except UnknownAction as unknown:
        return _offer_closest(turn, unknown)
    except NotPermitted as refused:
        return Say(turn.render("refused_action.html", reason=str(refused)))
    return _stored(turn, draft, logged, prior=None)


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


def _action_for(turn: Turn, ref: str) -> ActionView | Outcome:
    """The action the member named and may update; otherwise the reply that says why."""
    member = turn.context.acting_member
    try:
        action = _find(turn, ref)
    except UnknownAction as unknown:
        return _offer_closest(turn, unknown)
    if not _may_update(turn, action):
        return Say(turn.render("refused_action.html", reason=refusal(member, action)))
    return action


def _may_update(turn: Turn, action: ActionView) -> bool:
    member, now = turn.context.acting_member, turn.context.now()
    return may_update_action(
        turn.session,
        member=member,
        action_id=action.id,
        lead_organisation_id=action.lead_organisation_id,
        at=now,
    )


def _find(turn: Turn, ref: str) -> ActionView:
    context = turn.context
    return find_action(turn.session, ref=ref, at=context.now(), quiet_after=context.quiet_after)


def _offer_closest(turn: Turn, unknown: UnknownAction) -> Outcome:
    """Say there is no such action, offering the closest references as buttons."""
    text = turn.render("unknown_action.html", ref=unknown.ref, suggestions=unknown.suggestions)
    if not unknown.suggestions:
        return Say(text)
    rows = [(UPDATE.button(ref, "a", ref),) for ref in unknown.suggestions]
    return Move(turn.draft("update", ACTION), Screen(text, (*rows, (UPDATE.cancel_button(),))))


# --- the guided steps --------------------------------------------------------------------


def _page(turn: Turn, draft: Draft, value: str) -> Outcome:
    """Show another page of the action picker."""
    page = number(value)
    if page is None:
        return Alert(turn.render("button_expired.html"), forged=True)
    return Move(turn.move(draft, ACTION), _action_picker(turn, _updatable(turn), page=page))


def _picked_action(turn: Turn, draft: Draft, ref: str) -> Outcome:
    """The partner chose an action: check they may, then ask for its status."""
    member = turn.context.acting_member
    try:
        action = _find(turn, ref)
    except UnknownAction:
        return Alert(turn.render("button_expired.html"), forged=True)
    if not _may_update(turn, action):
        log.warning("refused update button for %s from member %s", ref, member.id)
        return Alert(refusal(member, action))
    return _ask_status(turn, turn.move(draft, STATUS, ref=action.ref), action)


def _ask_status(turn: Turn, draft: Draft, action: ActionView) -> Outcome:
    text = turn.render("update_choose_status.html", action=action)
    return Move(draft, Screen(text, _status_picker()))


def _picked_status(turn: Turn, draft: Draft, value: str) -> Outcome:
    """The partner chose a status: ask for the note."""
    if value not in {status.value for status in UPDATE_STATUSES}:
        return Alert(turn.render("button_expired.html"), forged=True)
    return _ask_note(turn, turn.move(draft, NOTE, status=value), None)


def _ask_note(turn: Turn, draft: Draft, problem: str | None) -> Outcome:
    text = turn.render("update_ask_note.html", draft=_facts(draft), problem=problem)
    return Move(draft, Screen(text, ((UPDATE.cancel_button(),),)))


def _picked_forecast(turn: Turn, draft: Draft, key: str) -> Outcome:
    """The last step: the forecast is chosen, so the update is stored."""
    if key not in FORECASTS:
        return Alert(turn.render("button_expired.html"), forged=True)
    label, forecast = FORECASTS[key]
    chosen = turn.render("update_forecast_chosen.html", label=label)
    return _submit(turn, draft, forecast, prior=chosen)


STEP_BUTTONS = {
    "p": (ACTION, _page),
    "a": (ACTION, _picked_action),
    "s": (STATUS, _picked_status),
    "f": (FORECAST, _picked_forecast),
}


def _take_note(turn: Turn, draft: Draft, note: str) -> Outcome:
    """Check the note; ask again if it is empty or too long, else go on."""
    try:
        cleaned = check_note(note)
    except DomainError as problem:
        return _ask_note(turn, draft, str(problem))
    held = case_data_check(turn, UPDATE, draft, note)
    if held is not None:
        return held
    return _after_text(turn, turn.move(draft, NOTE, note=cleaned))


def _take_mitigation(turn: Turn, draft: Draft, text: str) -> Outcome:
    try:
        cleaned = check_note(text, what="mitigation")
    except DomainError as problem:
        return _ask_mitigation(turn, draft, str(problem))
    held = case_data_check(turn, UPDATE, draft, text)
    if held is not None:
        return held
    return _after_text(turn, turn.move(draft, MITIGATION, mitigation=cleaned))


def _after_text(turn: Turn, draft: Draft) -> Outcome:
    """Ask for the mitigation or the forecast if the status needs them; otherwise store."""
    status = Status(draft.values["status"])
    if status == Status.RED and "mitigation" not in draft.values:
        return _ask_mitigation(turn, turn.move(draft, MITIGATION), None)
    if status in (Status.AMBER, Status.RED):
        assert draft.values.get("ref") is not None
        action = _find(turn, draft.values["ref"])
        text = turn.render("update_ask_forecast.html", action=action)
        return Move(turn.move(draft, FORECAST), Screen(text, _forecast_picker()))
    return _submit(turn, draft, None, prior=None)


def _ask_mitigation(turn: Turn, draft: Draft, problem: str | None) -> Outcome:
    text = turn.render("update_ask_mitigation.html", draft=_facts(draft), problem=problem)
    return Move(draft, Screen(text, ((UPDATE.cancel_button(),),)))


def _submit(turn: Turn, draft: Draft, forecast: str | None, *, prior: str | None) -> Outcome:
    """Store the update with the step that finishes it (once, even if Telegram delivers
    this update again: the update's id is kept with it) and confirm."""
    try:
        logged = _log(turn, draft, forecast)
    except NotPermitted as refused:
        text = turn.render("refused_action.html", reason=str(refused))
        return Move(turn.close(draft), Screen(text, in_place=False, prior=prior))
    return _stored(turn, draft, logged, prior=prior)


def _log(turn: Turn, draft: Draft, forecast: str | None) -> LoggedUpdate:
    context, values = turn.context, draft.values
    return log_progress(
        turn.session,
        ref=values["ref"],
        member_id=context.acting_member.id,
        status=Status(values["status"]),
        note=values["note"],
        mitigation=values.get("mitigation"),
        forecast=forecast,
        at=context.now(),
        telegram_update_id=turn.update_id,
        quiet_after=context.quiet_after,
    )


def _stored(turn: Turn, draft: Draft, logged: LoggedUpdate, *, prior: str | None) -> Move:
    text = turn.render("update_stored.html", logged=logged)
    return Move(turn.close(draft), Screen(text, in_place=False, prior=prior))


UPDATE = UpdateDialogue()


# --- /undo -------------------------------------------------------------------------------


async def undo(update: Update, context: Ctx) -> None:
    """Take back the member's last update or figure if it is less than 15 minutes old."""
    try:
        undone = await context.db.run(
            undo_latest, member_id=context.acting_member.id, at=context.now()
        )
    except DomainError as problem:
        await send(update, context, "problem.html", problem=str(problem))
        return
    if isinstance(undone, FigureUndone):
        await send(update, context, "figure_undone.html", undone=undone)
    else:
        await send(update, context, "undone.html", undone=undone)


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [
    command("my", my_actions),
    command("update", update_command),
    command("start", start_from_link, policy="update", only=filters.Regex(r"^/start update$")),
    command("undo", undo),
]
