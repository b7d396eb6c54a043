"""Figures chased like updates: due a number of working days after their period ends, then
weekly while missing, to the supplier's partners, on a moved clock."""

from __future__ import annotations

from csp_bot.bot.emulator import BotApiEmulator
from csp_bot.handlers.context import CspApplication
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from csp_bot.models.reminder_types import OutboxState, ReminderKind, Topic
from csp_bot.models.reminders import set_topic
from tests.harness import PEOPLE, Harness
from tests.reminder_helpers import outbox, schedule, set_clock, texts, tick

POLICE = PEOPLE["police"].user


def figure_texts(emulator: BotApiEmulator) -> list[str]:
    """The headings of the police partner's figure reminders, as sent."""
    return [t.split("</b>")[0] for t in texts(emulator, "police") if t.startswith("📏")]


def in_plan_order(headings: list[str]) -> list[str]:
    """Reminders going at one moment in plan order: the order among them is not fixed."""
    order = ["SOC-M1", "SOC-M2", "DASV-M1", "HATE-M1", "ASB-M1", "ASB-M2"]
    return sorted(headings, key=lambda heading: order.index(heading.split(": ")[-1]))


async def test_a_figure_is_chased_when_due_then_weekly_until_it_is_sent(
    app: CspApplication,
    bot: Harness,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    # 2021/22-Q1 ended on Wednesday 30 June 2021; ten working days later is Wednesday 14 July.
    set_clock(clock, "2021-07-14T08:59")
    await tick(app)
    assert figure_texts(emulator) == []
    set_clock(clock, "2021-07-14T09:00")
    await tick(app)
    # The police supply four of the sample plan's measures.
    assert in_plan_order(figure_texts(emulator)) == [
        "📏 <b>Figure due: SOC-M1",
        "📏 <b>Figure due: DASV-M1",
        "📏 <b>Figure due: HATE-M1",
        "📏 <b>Figure due: ASB-M1",
    ]
    asb = next(t for t in texts(emulator, "police") if "ASB-M1" in t)
    assert asb == (
        "📏 <b>Figure due: ASB-M1</b> ASB incidents reported to police\n"
        "The figure for 2021/22-Q1 (which ended Wed 30 Jun 2021) is due from Northants Police.\n"
        "Its target is 440, lower is better.\n\n"
        "Send it with <code>/figure ASB-M1 2021-Q1 VALUE</code>, or /figure to be asked."
    )
    await tick(app)  # once only
    assert len(figure_texts(emulator)) == 4
    set_clock(clock, "2021-07-15T10:00")
    assert (await bot.reply(POLICE, "/figure ASB-M1 2021-Q1 430")).startswith("📈 Stored")
    set_clock(clock, "2021-07-21T09:00")
    await tick(app)
    assert in_plan_order(figure_texts(emulator)[4:]) == [
        "📏 <b>Figure still missing: SOC-M1",
        "📏 <b>Figure still missing: DASV-M1",
        "📏 <b>Figure still missing: HATE-M1",
    ]


async def test_a_figure_sent_before_its_reminder_goes_drops_it(
    app: CspApplication,
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    set_clock(clock, "2021-07-14T07:00")
    await tick(app)
    set_clock(clock, "2021-07-14T08:00")
    for code in ("SOC-M1", "DASV-M1", "HATE-M1", "ASB-M1"):
        assert (await bot.reply(POLICE, f"/figure {code} 2021-Q1 100")).startswith("📈 Stored")
    set_clock(clock, "2021-07-14T09:00")
    await tick(app)
    assert figure_texts(emulator) == []
    assert all(entry.state != OutboxState.SENT for entry in outbox(db, ReminderKind.FIGURE_DUE))


async def test_requests_for_updates_turned_off_mutes_figure_reminders(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    db.call(set_topic, member_id=people["police"].id, topic=Topic.CHECKINS, on=False, at=clock())
    set_clock(clock, "2021-07-14T09:00")
    await tick(app)
    assert figure_texts(emulator) == []
    assert {entry.state for entry in outbox(db, ReminderKind.FIGURE_DUE)} == {OutboxState.MUTED}


async def test_periods_before_the_plan_and_weekends_are_respected(
    app: CspApplication,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    # 2020/21-Q4 (the baseline's quarter, before the plan began) is never chased.
    set_clock(clock, "2021-06-10T09:00")
    await tick(app)
    assert figure_texts(emulator) == []
    # 2021/22-Q2 ends Thursday 30 September; ten working days on is Thursday 14 October.
    set_clock(clock, "2021-10-14T09:00")
    await tick(app)
    assert in_plan_order(figure_texts(emulator)[-4:]) == [
        "📏 <b>Figure due: SOC-M1",
        "📏 <b>Figure due: DASV-M1",
        "📏 <b>Figure due: HATE-M1",
        "📏 <b>Figure due: ASB-M1",
    ]


async def test_the_chairs_returns_before_a_meeting_list_the_missing_figures(
    app: CspApplication,
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    schedule(db, clock, "2021-07-29T10:00")
    set_clock(clock, "2021-07-20T10:00")
    assert (await bot.reply(POLICE, "/figure ASB-M1 2021-Q1 430")).startswith("📈 Stored")
    set_clock(clock, "2021-07-28T10:00")
    await tick(app)
    [returns] = [t for t in texts(emulator, "chair") if t.startswith("📋")]
    assert returns.endswith(
        "Figures not sent:\n"
        "• SOC-M1 2021/22-Q1 (Northants Police)\n"
        "• SOC-M2 2021/22-Q1 (Drug and Alcohol Treatment and Recovery Service)\n"
        "• DASV-M1 2021/22-Q1 (Northants Police)\n"
        "• HATE-M1 2021/22-Q1 (Northants Police)\n"
        "• ASB-M2 2021-06 (North Northamptonshire Council)"
    )


async def test_a_partners_returns_request_lists_the_figures_their_organisation_owes(
    app: CspApplication,
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    schedule(db, clock, "2021-07-29T10:00")
    set_clock(clock, "2021-07-20T10:00")
    assert (await bot.reply(POLICE, "/figure ASB-M1 2021-Q1 430")).startswith("📈 Stored")
    set_clock(clock, "2021-07-22T10:00")
    await tick(app)
    [request] = [t for t in texts(emulator, "police") if t.startswith("📝")]
    assert request.endswith(
        "Please send an update on each with /update before the meeting.\n\n"
        "Figures not sent yet:\n"
        "📏 <b>SOC-M1</b> 2021/22-Q1 (Northants Police)\n"
        "📏 <b>DASV-M1</b> 2021/22-Q1 (Northants Police)\n"
        "📏 <b>HATE-M1</b> 2021/22-Q1 (Northants Police)\n\n"
        "Send each with /figure before the meeting."
    )


async def test_the_weekly_digest_lists_the_figures_not_sent(
    app: CspApplication,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    # Monday 19 July 2021: the 2021/22-Q1 figures fell due on Wednesday 14 July.
    set_clock(clock, "2021-07-19T09:00")
    await tick(app)
    [digest] = [t for t in texts(emulator, "chair") if "Weekly digest" in t]
    assert digest.endswith(
        "\n\n<b>Figures not sent</b>\n"
        "• SOC-M1 2021/22-Q1 (Northants Police)\n"
        "• SOC-M2 2021/22-Q1 (Drug and Alcohol Treatment and Recovery Service)\n"
        "• DASV-M1 2021/22-Q1 (Northants Police)\n"
        "• HATE-M1 2021/22-Q1 (Northants Police)\n"
        "• ASB-M1 2021/22-Q1 (Northants Police)\n"
        "• ASB-M2 2021-06 (North Northamptonshire Council)"
    )
