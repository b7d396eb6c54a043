"""Funding: /funding for a financial year with totals, and recording decisions with /decide."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from csp_bot.bot.emulator import SentMessage
from csp_bot.models.db import Database
from csp_bot.models.enums import FundingStatus
from csp_bot.models.membership import MemberView
from csp_bot.models.tables import AuditEntry, FundingDecision, FundingStream, Organisation
from tests.harness import PEOPLE, Harness

CHAIR = PEOPLE["chair"].user
POLICE = PEOPLE["police"].user


async def test_funding_shows_this_financial_year_with_totals_by_status(
    bot: Harness, people: dict[str, MemberView]
) -> None:
    [shown] = await bot.send(POLICE, "/funding")  # 10 June 2021 is in 2021/22
    text = shown.plain_text
    assert text.startswith("Funding 2021/22 (1 April 2021 to 31 March 2022)")
    assert "MAPPA Multi-agency Public Protection Arrangements\n" in text
    assert "• Northants Police: £12,500.00, confirmed (Thu 10 Jun 2021)" in text
    assert "Totals: confirmed £31,000.00" in text
    assert "Totals: agreed £15,000.00 · confirmed £85,000.00" in text  # the IPV pooled fund
    assert (
        "All streams\nProposed: £0.00\nAgreed: £21,000.00\nConfirmed: £170,000.00\nDeclined: £0.00"
        in text
    )
    assert "Other years: 2022/23" in text


async def test_funding_for_another_year(bot: Harness, people: dict[str, MemberView]) -> None:
    [shown] = await bot.send(CHAIR, "/funding 2022/23")
    text = shown.plain_text
    assert "– Subject to the council's budget setting in February 2022." in text
    assert "• NHS Northamptonshire Clinical Commissioning Group: £15,000.00, declined" in text
    assert (
        "Proposed: £100,250.00\nAgreed: £56,750.00\nConfirmed: £0.00\nDeclined: £15,000.00" in text
    )
    [later] = await bot.send(CHAIR, "/funding 2030-31")
    assert "No funding is recorded for 2030/31." in later.plain_text


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("2021/23", "the second year must follow the first"),
        ("next year", "Not a financial year: 'next year'"),
        ("1990", "1990/91 is not a year the partnership can have funding for"),
    ],
)
async def test_funding_explains_a_year_that_does_not_exist(
    bot: Harness, people: dict[str, MemberView], typed: str, problem: str
) -> None:
    [reply] = await bot.send(CHAIR, f"/funding {typed}")
    assert problem in reply.plain_text
    assert "Send /funding for this financial year" in reply.plain_text


async def test_observers_do_not_see_funding(bot: Harness, people: dict[str, MemberView]) -> None:
    reply = await bot.reply(PEOPLE["observer"].user, "/funding")
    assert "Sorry, /funding isn't available" in reply


def tap(bot: Harness, message: SentMessage, label: str) -> str:
    return dict(bot.emulator.buttons(message))[label]


async def chair_sees(bot: Harness) -> SentMessage:
    return bot.emulator.messages(CHAIR.id)[-1]


def decision(db: Database, stream: str, organisation: str, year: int) -> FundingDecision:
    def read(session: object) -> FundingDecision:
        return session.exec(  # type: ignore[attr-defined,no-any-return]
            select(FundingDecision)
            .join(FundingStream)
            .join(Organisation)
            .where(FundingStream.code == stream, Organisation.short_name == organisation)
            .where(FundingDecision.financial_year == year)
        ).one()

    return db.call(read)


async def test_decide_records_a_decision_with_taps_and_audits_it(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    first = (await bot.send(CHAIR, "/decide"))[0]
    assert "Which funding stream?" in first.text
    await bot.press(CHAIR, first, tap(bot, first, "MAPPA"))
    partner = await chair_sees(bot)
    await bot.press(CHAIR, partner, tap(bot, partner, "NNC"))
    year = await chair_sees(bot)
    assert [label for label, _ in bot.emulator.buttons(year)][:3] == [
        "2020/21",
        "2021/22",
        "2022/23",
    ]
    await bot.press(CHAIR, year, tap(bot, year, "2022/23"))
    [problem] = await bot.send(CHAIR, "six and a half grand")
    assert "“six and a half grand” is not an amount of money" in problem.plain_text
    [status] = await bot.send(CHAIR, "£6,500")
    await bot.press(CHAIR, status, tap(bot, status, "confirmed"))
    note = await chair_sees(bot)
    await bot.press(CHAIR, note, tap(bot, note, "Skip"))
    summary = await chair_sees(bot)
    assert (
        "MAPPA, North Northamptonshire Council, 2022/23\n£6,500.00, confirmed" in summary.plain_text
    )
    assert "This replaces £6,000.00, proposed (Thu 10 Jun 2021)." in summary.plain_text
    done = await bot.press(CHAIR, summary, tap(bot, summary, "💾 Save"))
    assert done[-1].plain_text.startswith(
        "💷 Recorded: MAPPA, North Northamptonshire Council, 2022/23: £6,500.00, confirmed."
    )
    assert "It was £6,000.00, proposed." in done[-1].plain_text
    stored = decision(db, "MAPPA", "NNC", 2022)
    assert (stored.amount_pence, stored.status, stored.note) == (
        650000,
        FundingStatus.CONFIRMED,
        "",
    )
    audit = db.call(
        lambda s: s.exec(
            select(AuditEntry)
            .where(AuditEntry.entity == "funding_decision")
            .order_by(col(AuditEntry.id))
        ).all()
    )[-1]
    assert audit.member_id == people["chair"].id
    assert audit.before is not None and audit.before["amount_pence"] == 600000
    assert audit.after is not None and audit.after["status"] == "confirmed"
    [year_view] = await bot.send(CHAIR, "/funding 2022/23")
    assert "• North Northamptonshire Council: £6,500.00, confirmed" in year_view.plain_text


async def test_decide_takes_typed_answers_too(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    await bot.send(CHAIR, "/decide")
    for typed in ("ipv", "police", "2023/24", "10000", "agreed"):
        await bot.send(CHAIR, typed)
    [summary] = await bot.send(CHAIR, "Subject to the PCC's precept")
    assert "IPV, Northants Police, 2023/24\n£10,000.00, agreed" in summary.plain_text
    await bot.press(CHAIR, summary, tap(bot, summary, "💾 Save"))
    stored = decision(db, "IPV", "Police", 2023)
    assert (stored.amount_pence, stored.note) == (1000000, "Subject to the PCC's precept")


async def test_decide_refuses_what_does_not_exist_and_stores_nothing(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    count = len(db.call(lambda s: s.exec(select(FundingDecision)).all()))
    await bot.send(CHAIR, "/decide")
    assert "There is no funding stream 'CCTV'" in (await bot.send(CHAIR, "CCTV"))[0].plain_text
    await bot.send(CHAIR, "MAPPA")
    assert "unknown organisation 'Acme'" in (await bot.send(CHAIR, "Acme"))[0].plain_text
    await bot.send(CHAIR, "Police")
    [problem] = await bot.send(CHAIR, "2024/26")
    assert "the second year must follow the first" in problem.plain_text
    assert await bot.reply(CHAIR, "/cancel") == "Cancelled. Nothing was stored."
    assert len(db.call(lambda s: s.exec(select(FundingDecision)).all())) == count


async def test_only_the_chair_and_coordinator_decide(
    bot: Harness, people: dict[str, MemberView]
) -> None:
    assert "Sorry, /decide isn't available" in await bot.reply(POLICE, "/decide")
