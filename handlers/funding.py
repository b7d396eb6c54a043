"""Funding in chat: /funding [YEAR] shows a financial year, /decide records a decision."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler

from csp_bot.bot.context import Ctx
from csp_bot.handlers.forms import Form, Option, Step, form_buttons, start_form
from csp_bot.handlers.guard import command
from csp_bot.handlers.replies import send
from csp_bot.models.audit import Actor
from csp_bot.models.enums import FundingStatus
from csp_bot.models.errors import DomainError
from csp_bot.models.funding import (
    check_amount,
    check_financial_year,
    check_note,
    financial_year_of,
    funded_years,
    funding_year,
    organisation_choices,
    preview_decision,
    record_decision,
    stream_choices,
)
from csp_bot.models.membership import find_organisation
from csp_bot.models.plan import format_financial_year, format_money


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


async def _streams(context: Ctx, values: dict[str, str]) -> list[Option]:
    return [Option(c.label, str(c.id)) for c in await context.db.run(stream_choices)]


async def _partners(context: Ctx, values: dict[str, str]) -> list[Option]:
    return [Option(c.label, str(c.id)) for c in await context.db.run(organisation_choices)]


async def _years(context: Ctx, values: dict[str, str]) -> list[Option]:
    current = financial_year_of(context.now().astimezone(context.settings.tz).date())
    return [Option(format_financial_year(y), str(y)) for y in (current - 1, current, current + 1)]


async def _statuses(context: Ctx, values: dict[str, str]) -> list[Option]:
    return [Option(status.value, status.value) for status in FundingStatus]


async def _read_stream(context: Ctx, text: str, values: dict[str, str]) -> str:
    """A stream typed by its code (MAPPA) instead of tapped."""
    for option in await _streams(context, values):
        if option.label.lower() == text.strip().lower():
            return option.value
    raise DomainError(f"There is no funding stream {text.strip()!r}: tap one of the buttons.")


async def _read_partner(context: Ctx, text: str, values: dict[str, str]) -> str:
    organisation = await context.db.run(find_organisation, name=text)
    return str(organisation.id)


async def _read_year(context: Ctx, text: str, values: dict[str, str]) -> str:
    today = context.now().astimezone(context.settings.tz).date()
    return str(check_financial_year(text, today=today))


async def _read_amount(context: Ctx, text: str, values: dict[str, str]) -> str:
    return str(check_amount(text))


async def _read_status(context: Ctx, text: str, values: dict[str, str]) -> str:
    try:
        return FundingStatus(text.strip().lower()).value
    except ValueError:
        words = ", ".join(status.value for status in FundingStatus)
        raise DomainError(f"The status is one of {words}.") from None


async def _read_note(context: Ctx, text: str, values: dict[str, str]) -> str:
    return check_note(text)


async def _describe(context: Ctx, values: dict[str, str]) -> dict[str, object]:
    preview = await context.db.run(
        preview_decision,
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


async def _save(update: Update, context: Ctx, values: dict[str, str]) -> None:
    """Record the decision (audited) and confirm it."""
    member = context.acting_member
    decision = await context.db.run(
        record_decision,
        stream_id=int(values["stream"]),
        organisation_id=int(values["partner"]),
        year=int(values["year"]),
        amount_pence=int(values["amount"]),
        status=FundingStatus(values["status"]),
        note=values["note"],
        at=context.now(),
        actor=Actor.member(member.id),
    )
    await send(
        update,
        context,
        "funding_decided.html",
        decision=decision,
        year=format_financial_year(decision.year),
        money=format_money,
    )


DECIDE_FORM = Form(
    name="decide",
    steps=(
        Step("stream", "funding_ask_stream.html", read=_read_stream, options=_streams),
        Step(
            "partner", "funding_ask_partner.html", read=_read_partner, options=_partners, columns=3
        ),
        Step("year", "funding_ask_year.html", read=_read_year, options=_years, columns=3),
        Step("amount", "funding_ask_amount.html", read=_read_amount),
        Step("status", "funding_ask_status.html", read=_read_status, options=_statuses),
        Step("note", "funding_ask_note.html", read=_read_note, skippable=True),
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
    form_buttons(DECIDE_FORM),
]
