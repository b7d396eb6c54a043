"""Measures in chat: /figure sends a figure (guided, or in one line), /measure shows one.

/figure is a form of the one dialogue engine (`handlers.forms`); its one-line form
`/figure ASB-M1 2021-Q2 412 note...` fills the form's answers from the command and stores
the figure at once, asking only for what is missing.
"""

from __future__ import annotations

import asyncio
from datetime import date

from telegram import Update
from telegram.ext import BaseHandler

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.dialogue import Move, Outcome, Say, Turn
from csp_bot.handlers.forms import Form, Option, Step, start_form
from csp_bot.handlers.guard import command
from csp_bot.handlers.replies import send
from csp_bot.handlers.report import measure_chart
from csp_bot.models.audit import Actor
from csp_bot.models.dialogue import Draft, Screen
from csp_bot.models.errors import DomainError
from csp_bot.models.limits import check_note
from csp_bot.models.measures import (
    MeasureView,
    UnknownMeasure,
    chart_description,
    check_supplier,
    find_measure,
    measures_supplied_by,
    preview_figure,
    proposed_period,
    rag_words,
    read_period,
    read_value,
    record_figure,
)
from csp_bot.models.values import parse_period

UNIT_WORDS = {
    "count": "a whole number, e.g. 412",
    "%": "per cent, e.g. 72.5",
    "£": "pounds, e.g. £12,500",
    "days": "days, e.g. 14",
}


def _today(turn: Turn) -> date:
    return turn.context.now().astimezone(turn.context.settings.tz).date()


def _measure(turn: Turn, values: dict[str, str]) -> MeasureView:
    return find_measure(turn.session, code=values["code"])


# --- the questions ---------------------------------------------------------------------------


def _measures(turn: Turn, values: dict[str, str]) -> list[Option]:
    mine = measures_supplied_by(
        turn.session, member_id=turn.context.acting_member.id, at=turn.context.now()
    )
    return [Option(view.code, str(view.id), view.code) for view in mine]


def _read_measure(turn: Turn, text: str, values: dict[str, str]) -> str:
    view = find_measure(turn.session, code=text)
    check_supplier(
        turn.session, member_id=turn.context.acting_member.id, view=view, at=turn.context.now()
    )
    return view.code


def _periods(turn: Turn, values: dict[str, str]) -> list[Option]:
    latest = proposed_period(_measure(turn, values), today=_today(turn))
    periods = [latest, latest.shifted(-1), latest.shifted(-2)]
    return [Option(str(period), str(period.index), str(period)) for period in periods]


def _read_period(turn: Turn, text: str, values: dict[str, str]) -> str:
    return str(read_period(_measure(turn, values), text, today=_today(turn)))


def _read_value(turn: Turn, text: str, values: dict[str, str]) -> str:
    return repr(read_value(_measure(turn, values), text))


def _read_note(turn: Turn, text: str, values: dict[str, str]) -> str:
    return check_note(text, required=False)


def _facts(turn: Turn, values: dict[str, str]) -> dict[str, object]:
    measure = _measure(turn, values)
    period = parse_period(values["period"])
    return {
        "measure": measure,
        "period": period,
        "value": float(values["value"]),
        "note": values["note"],
        "earlier": preview_figure(turn.session, code=measure.code, period=period),
    }


def _save(turn: Turn, values: dict[str, str]) -> Screen:
    """Store the figure (audited; one it replaces is kept) and confirm it."""
    member_id = turn.context.acting_member.id
    measure = _measure(turn, values)
    check_supplier(turn.session, member_id=member_id, view=measure, at=turn.context.now())
    # The period is checked again: a form left open over a period's end is still right,
    # but one typed for a period not yet over must not slip through.
    period = read_period(measure, values["period"], today=_today(turn))
    recorded = record_figure(
        turn.session,
        code=measure.code,
        period=period,
        value=float(values["value"]),
        note=values["note"],
        at=turn.context.now(),
        actor=Actor.member(member_id),
        telegram_update_id=turn.update_id,
    )
    text = turn.render(
        "figure_recorded.html",
        recorded=recorded,
        rag=recorded.measure.rag(recorded.figure),
        rag_words=rag_words(recorded.measure, recorded.figure),
    )
    return Screen(text, in_place=False)


class FigureForm(Form):
    """The /figure form; its one-line form answers the questions from the command."""

    def begin(self, turn: Turn, args: str) -> Outcome:
        words = args.split(maxsplit=3)
        if not words:
            return super().begin(turn, args)
        draft = turn.draft(self.name, "0")
        for word, step in zip(words[:3], self.steps[:3], strict=False):
            try:
                value = step.read(turn, word, draft.values) if step.read else word
            except DomainError as problem:
                return Say(str(problem))
            draft = self._next(turn, draft, step.name, value)
        if len(words) < 3:
            return Move(draft, self.ask(turn, draft))
        note = words[3] if len(words) > 3 else ""
        return self._one_line(turn, draft, note)

    def _next(self, turn: Turn, draft: Draft, name: str, value: str) -> Draft:
        values = {name: value}
        if name == "code":
            values["_unit"] = UNIT_WORDS[find_measure(turn.session, code=value).unit]
        return turn.move(draft, str(int(draft.step) + 1), **values)

    def _one_line(self, turn: Turn, draft: Draft, note: str) -> Outcome:
        """Everything was typed: store it now (a note that looks like case data asks first)."""
        if note:
            outcome = self.typed(turn, draft, note)
            if not isinstance(outcome, Move) or self.step(int(outcome.draft.step)) is not None:
                return outcome  # held for the case-data question, or the note refused
            draft = outcome.draft
        else:
            draft = turn.move(draft, str(len(self.steps)), note="")
        return Move(turn.close(draft), self.save(turn, draft.values))

    def _answered(self, turn: Turn, draft: Draft, step: Step, value: str) -> Outcome:
        if step.name != "code":
            return super()._answered(turn, draft, step, value)
        moved = self._next(turn, draft, step.name, value)
        return Move(moved, self.ask(turn, moved))


FIGURE_FORM = FigureForm(
    name="figure",
    called="figure",
    steps=(
        Step("code", "figure_ask_measure.html", read=_read_measure, options=_measures, columns=3),
        Step("period", "figure_ask_period.html", read=_read_period, options=_periods, columns=3),
        Step("value", "figure_ask_value.html", read=_read_value),
        Step("note", "figure_ask_note.html", read=_read_note, skippable=True, case_check=True),
    ),
    summary="figure_summary.html",
    save=_save,
    describe=_facts,
)


async def figure_command(update: Update, context: Ctx) -> None:
    """`/figure [CODE PERIOD VALUE note]`: send a figure for a measure."""
    await start_form(update, context, FIGURE_FORM, " ".join(context.args or []))


# --- /measure ----------------------------------------------------------------------------------


async def measure_command(update: Update, context: Ctx) -> None:
    """`/measure CODE`: the latest figure against its target, the trend, and a chart."""
    if not context.args:
        await send(update, context, "usage.html", usage="/measure CODE", example="/measure ASB-M1")
        return
    try:
        view = await context.db.run(find_measure, code=context.args[0])
    except UnknownMeasure as unknown:
        await send(update, context, "problem.html", problem=str(unknown))
        return
    latest = view.latest
    await send(
        update,
        context,
        "measure.html",
        measure=view,
        target=None if latest is None else view.target_for(latest.period),
        rag=view.rag(),
        rag_words=rag_words(view),
    )
    if view.figures:
        chat = update.effective_chat
        assert chat is not None
        png = await asyncio.to_thread(measure_chart, view)
        await context.bot.send_photo(
            chat.id, photo=png, filename=f"{view.code}.png", caption=chart_description(view)
        )


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [
    command("figure", figure_command),
    command("measure", measure_command),
]
