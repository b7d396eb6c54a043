"""Away and back: `/away [14 days]` names a deputy from the member's organisation (a form of
the one dialogue engine), `/back` ends the absence early. While away, the member's reminders
go to the deputy (`scheduler.due.People`), who may update what the member owns."""

from __future__ import annotations

from datetime import timedelta

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import BaseHandler

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.dialogue import Move, Outcome, Say, Turn, begin
from csp_bot.handlers.forms import Form, Option, Step
from csp_bot.handlers.guard import command
from csp_bot.handlers.progress import COMMAND_WORD
from csp_bot.handlers.replies import send
from csp_bot.models.absences import (
    check_deputy,
    deputy_choices,
    end_absence,
    read_days,
    start_absence,
)
from csp_bot.models.dialogue import Screen
from csp_bot.models.errors import DomainError

DAYS_OFFERED = (7, 14, 28)


def _days_options(turn: Turn, values: dict[str, str]) -> list[Option]:
    return [Option(f"{days} days", str(days)) for days in DAYS_OFFERED]


def _read_days(turn: Turn, text: str, values: dict[str, str]) -> str:
    return str(read_days(text))


def _deputies(turn: Turn, values: dict[str, str]) -> list[Option]:
    member = turn.context.acting_member
    choices = deputy_choices(turn.session, member_id=member.id)
    return [Option(choice.name, str(choice.id)) for choice in choices]


def _read_deputy(turn: Turn, text: str, values: dict[str, str]) -> str:
    """A deputy typed by name instead of tapped; the same checks as a tap, and more."""
    wanted = text.strip().casefold()
    for option in _deputies(turn, values):
        if option.label.casefold() == wanted:
            return option.value
    member = turn.context.acting_member
    if wanted == member.name.casefold():
        raise DomainError("You cannot cover for yourself: choose someone else.")
    raise DomainError(
        f"{text.strip()!r} is not an active member of {member.organisation}: "
        "your deputy must be a colleague. Tap one of the buttons."
    )


def _describe(turn: Turn, values: dict[str, str]) -> dict[str, object]:
    member = turn.context.acting_member
    deputy = check_deputy(turn.session, member_id=member.id, deputy_id=int(values["deputy"]))
    days = int(values["days"])
    return {"days": days, "deputy": deputy, "until": turn.context.now() + timedelta(days=days)}


def _save(turn: Turn, values: dict[str, str]) -> Screen:
    """Record the absence (audited) and confirm it."""
    member = turn.context.acting_member
    absence = start_absence(
        turn.session,
        member_id=member.id,
        deputy_id=int(values["deputy"]),
        days=int(values["days"]),
        at=turn.context.now(),
    )
    return Screen(turn.render("away_saved.html", absence=absence), in_place=False)


class AwayForm(Form):
    """The /away form; `/away 14 days` answers its first question from the command."""

    def begin(self, turn: Turn, args: str) -> Outcome:
        member = turn.context.acting_member
        if not deputy_choices(turn.session, member_id=member.id):
            return Say(turn.render("away_no_deputy.html", member=member))
        if not args:
            return super().begin(turn, args)
        try:
            days = read_days(args)
        except DomainError as problem:
            return Say(turn.render("away_bad_days.html", problem=str(problem)))
        draft = turn.draft(self.name, "1", days=str(days))
        return Move(draft, self.ask(turn, draft))


AWAY_FORM = AwayForm(
    name="away",
    called="absence",
    steps=(
        Step("days", "away_ask_days.html", read=_read_days, options=_days_options, columns=3),
        Step("deputy", "away_ask_deputy.html", read=_read_deputy, options=_deputies),
    ),
    summary="away_summary.html",
    save=_save,
    describe=_describe,
)


async def away_command(update: Update, context: Ctx) -> None:
    """Start the /away form (in a private chat), its length taken from the command if given."""
    chat, message = update.effective_chat, update.effective_message
    assert chat is not None and message is not None
    if chat.type != ChatType.PRIVATE:
        await send(update, context, "form_private_only.html", command=AWAY_FORM.name)
        return
    await begin(update, context, AWAY_FORM, COMMAND_WORD.sub("", message.text or "").strip())


async def back_command(update: Update, context: Ctx) -> None:
    """End the member's absence now: their reminders come to them again."""
    member = context.acting_member
    report = await context.db.run(end_absence, member_id=member.id, at=context.now())
    await send(update, context, "away_back.html", report=report)


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [
    command("away", away_command),
    command("back", back_command),
]
