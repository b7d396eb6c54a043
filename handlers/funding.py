"""Funding in chat: /funding [YEAR] shows a financial year, /decide records a decision."""

from __future__ import annotations

from datetime import date

from telegram import Update
from telegram.ext import BaseHandler

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.dialogue import Turn
from csp_bot.handlers.forms import Form, Option, Step, start_form
from csp_bot.handlers.guard import command
from csp_bot.handlers.replies import send
from csp_bot.models.audit import Actor
from csp_bot.models.dialogue import Screen
from csp_bot.models.enums import FundingStatus
from csp_bot.models.errors import DomainError
from csp_bot.models.funding import (
    check_financial_year,
    financial_year_of,
    funded_years,
    funding_year,
    organisation_choices,
    preview_decision,
    read_amount,
    record_decision,
    stream_choices,
)
from csp_bot.models.limits import check_note
from csp_bot.models.membership import find_organisation
from csp_bot.models.values import format_financial_year, format_money


async def funding_command(update: Update, context: Ctx) -> None:
    """Each stream's contributions and totals by status, this financial year or the one asked."""
    typed = " ".join(context.args or [])
    today = context.now().astimezone(context.settings.tz).date()
    try:
        year = check_financial_year(typed, today=today) if typed else financial_year_of(today)
    except DomainError as problem:
        await send(update, context, "funding_bad_year.html", problem=str(problem))
        return
    overview = await context.db.run(funding_year, year=year)
    years = await context.db.run(funded_years)
    await send(
        update,
        context,
        "funding_year.html",
        funding=overview,
        money=format_money,
        other_years=[format_financial_year(y) for y in years if y != year],
        statuses=list(FundingStatus),
    )


# --- /decide: the guided form ----------------------------------------------------------------


def _streams(turn: Turn, values: dict[str, str]) -> list[Option]:
    return [Option(c.label, str(c.id)) for c in stream_choices(turn.session)]


def _partners(turn: Turn, values: dict[str, str]) -> list[Option]:
    return [Option(c.label, str(c.id)) for c in organisation_choices(turn.session)]


def _today(turn: Turn) -> date:
    return turn.context.now().astimezone(turn.context.settings.tz).date()


def _years(turn: Turn, values: dict[str, str]) -> list[Option]:
    current = financial_year_of(_today(turn))
    return [Option(format_financial_year(y), str(y)) for y in (current - 1, current, current + 1)]


def _statuses(turn: Turn, values: dict[str, str]) -> list[Option]:
    return [Option(status.value, status.value) for status in FundingStatus]


def _read_stream(turn: Turn, text: str, values: dict[str, str]) -> str:
    """A stream typed by its code (MAPPA) instead of tapped."""
    for option in _streams(turn, values):
        if option.label.lower() == text.strip().lower():
            return option.value
    raise DomainError(f"There is no funding stream {text.strip()!r}: tap one of the buttons.")


def _read_partner(turn: Turn, text: str, values: dict[str, str]) -> str:
    return str(find_organisation(turn.session, name=text).id)


def _read_year(turn: Turn, text: str, values: dict[str, str]) -> str:
    return str(check_financial_year(text, today=_today(turn)))


def _read_amount(turn: Turn, text: str, values: dict[str, str]) -> str:
    return str(read_amount(text))


def _read_status(turn: Turn, text: str, values: dict[str, str]) -> str:
    try:
        return FundingStatus(text.strip().lower()).value
    except ValueError:
        words = ", ".join(status.value for status in FundingStatus)
        raise DomainError(f"The status is one of {words}.") from None


def _read_note(turn: Turn, text: str, values: dict[str, str]) -> str:
    return check_note(text, required=False)


def _describe(turn: Turn, values: dict[str, str]) -> dict[str, object]:
    preview = preview_decision(
        turn.session,
        stream_id=int(values["stream"]),
        organisation_id=int(values["partner"]),
        year=int(values["year"]),
    )
    return {
        "preview": preview,
        "year": format_financial_year(int(values["year"])),
        "amount": format_money(int(values["amount"])),
        "status": values["status"],
        "note": values["note"],
        "money": format_money,
    }


def _save(turn: Turn, values: dict[str, str]) -> Screen:
    """Record the decision (audited) and confirm it."""
    context = turn.context
    member = context.acting_member
    decision = record_decision(
        turn.session,
        stream_id=int(values["stream"]),
        organisation_id=int(values["partner"]),
        year=int(values["year"]),
        amount_pence=int(values["amount"]),
        status=FundingStatus(values["status"]),
        note=values["note"],
        at=context.now(),
        actor=Actor.member(member.id),
    )
    text = turn.render(
        "funding_decided.html",
        decision=decision,
        year=format_financial_year(decision.year),
        money=format_money,
    )
    return Screen(text, in_place=False)


DECIDE_FORM = Form(
    name="decide",
    called="funding decision",
    steps=(
        Step("stream", "funding_ask_stream.html", read=_read_stream, options=_streams),
        Step(
            "partner", "funding_ask_partner.html", read=_read_partner, options=_partners, columns=3
        ),
        Step("year", "funding_ask_year.html", read=_read_year, options=_years, columns=3),
        Step("amount", "funding_ask_amount.html", read=_read_amount),
        Step("status", "funding_ask_status.html", read=_read_status, options=_statuses),
        Step("note", "funding_ask_note.html", read=_read_note, skippable=True, case_check=True),
    ),
    summary="funding_summary.html",
    save=_save,
    describe=_describe,
)


async def decide_command(update: Update, context: Ctx) -> None:
    """Start the guided form that records a funding decision."""
    await start_form(update, context, DECIDE_FORM)


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [
    command("funding", funding_command),
    command("decide", decide_command),
]
