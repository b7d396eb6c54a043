"""The board's exception summary: /summary and /summary CODE, end to end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, event, func, update
from sqlmodel import Session, col, select

from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser, SentMessage
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.enums import FundingStatus, Status
from csp_bot.models.membership import MemberView
from csp_bot.models.progress import ActionView, find_action, log_progress, undo_last_update
from csp_bot.models.summary import board_summary
from csp_bot.models.tables import (
    Action,
    Deadline,
    DeadlineOrganisation,
    FundingDecision,
    Meeting,
    Organisation,
    Priority,
    ProgressUpdate,
)
from tests.conftest import link
from tests.harness import PEOPLE, Harness

QUIET = timedelta(days=28)
# The sample plan's actions that are not complete.
OPEN_ACTIONS = (
    *(f"SOC-{number}" for number in range(1, 6)),
    *(f"DASV-{number}" for number in range(1, 6)),
    "HATE-1",
    "HATE-2",
    "ASB-2",
    "ASB-3",
    "ASB-5",
)


def log(
    db: Database,
    clock: FakeClock,
    member: MemberView,
    ref: str,
    status: Status,
    note: str,
    **extra: str,
) -> None:
    db.call(
        log_progress, ref=ref, member_id=member.id, status=status, note=note, at=clock(), **extra
    )


def view(db: Database, clock: FakeClock, ref: str) -> ActionView:
    return db.call(find_action, ref=ref, at=clock(), quiet_after=QUIET)


# --- the query layer: an action's last update ------------------------------------------------


def test_last_update_follows_updates_and_undo(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    police, chair = people["police"], people["chair"]
    assert view(db, clock, "SOC-1").last_update_at is None  # the plan set its status
    clock.advance(days=1)
    first = clock()
    log(db, clock, police, "SOC-1", Status.AMBER, "Provider late")
    clock.advance(days=1)
    log(db, clock, police, "SOC-1", Status.GREEN, "Provider on site")
    assert view(db, clock, "SOC-1").last_update_at == clock()
    clock.advance(minutes=5)
    db.call(undo_last_update, member_id=police.id, at=clock())
    assert view(db, clock, "SOC-1").last_update_at == first
    # Two people take back their updates in the order that leaves the action's status time
    # pointing at a withdrawn update: the last update is then found among the live ones.
    clock.advance(minutes=1)
    log(db, clock, police, "SOC-1", Status.RED, "Provider gone")
    clock.advance(minutes=1)
    log(db, clock, chair, "SOC-1", Status.AMBER, "Re-procuring")
    db.call(undo_last_update, member_id=police.id, at=clock())  # not the latest: no change
    db.call(undo_last_update, member_id=chair.id, at=clock())
    assert view(db, clock, "SOC-1").last_update_at == first


def test_off_track_or_overdue_counts_each_action_once(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    # By 5 Jan 2022 the plan's two off-track actions (SOC-3, DASV-2) are overdue too.
    clock.now = datetime.fromisoformat("2022-01-05T09:00:00+00:00")
    summary = db.call(board_summary, at=clock(), quiet_after=QUIET, shown=10)
    assert (summary.totals.red, summary.totals.overdue) == (2, 6)
    assert summary.totals.off_track_or_overdue == 6
    # Off track first, in plan order; then the other overdue ones, soonest due first.
    assert [line.action.ref for line in summary.off_track_or_overdue(4)] == [
        "SOC-3",
        "DASV-2",
        "SOC-2",
        "SOC-4",
    ]


def test_one_prioritys_funding_is_its_lead_organisations(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    """Funding streams name no priority: a priority's funding lines are the contributions of
    the organisations leading its actions (DASV: the council and the PFCC)."""
    summary = db.call(board_summary, at=clock(), quiet_after=QUIET, code="DASV")
    assert [
        (d.year, d.stream_code, d.contribution.organisation) for d in summary.open_decisions
    ] == [
        (2022, "MAPPA", "North Northamptonshire Council"),
        (2022, "IPV", "North Northamptonshire Council"),
        (2022, "IPV", "Police, Fire and Crime Commissioner for Northamptonshire"),
        (2022, "ECINS", "North Northamptonshire Council"),
        (2022, "DHR", "North Northamptonshire Council"),
        (2022, "DHR", "Police, Fire and Crime Commissioner for Northamptonshire"),
    ]
    whole = db.call(board_summary, at=clock(), quiet_after=QUIET)
    assert len(whole.open_decisions) == 12


# --- /summary ---------------------------------------------------------------------------------

CHAIR = PEOPLE["chair"].user
BOARD = PEOPLE["board"].user
SECTION_BUTTONS = [
    ("🔴 Exceptions", "sm:exc:0"),
    ("📊 By priority", "sm:pri:0"),
    ("💷 Funding", "sm:fun:0"),
    ("📅 Meetings", "sm:mtg:0"),
    ("📭 Returns", "sm:ret:0"),
]
BACK = [("‹ Back", "sm:top:0")]


def at(clock: FakeClock, day: str) -> None:
    """Move the clock to 09:00 UTC on `day` (YYYY-MM-DD)."""
    clock.now = datetime.fromisoformat(f"{day}T09:00:00+00:00")


def seed_exceptions(db: Database, clock: FakeClock, people: dict[str, MemberView]) -> None:
    """Progress around the 16 Sep 2021 board meeting, so that every section has content."""
    police, chair = people["police"], people["chair"]
    at(clock, "2021-06-11")
    log(db, clock, police, "SOC-1", Status.GREEN, "Provider on site")
    at(clock, "2021-09-01")
    log(db, clock, police, "SOC-3", Status.AMBER, "EMAS signed; KGH still to sign")
    at(clock, "2021-09-20")
    log(
        db,
        clock,
        police,
        "SOC-1",
        Status.RED,
        "Provider pulled out",
        mitigation="Re-procuring through the PFCC framework",
        forecast="Not expected to recover by the due date",
    )
    log(
        db,
        clock,
        chair,
        "DASV-1",
        Status.AMBER,
        "Waiting for the housing allocation",
        forecast="Expected to recover by the due date",
    )
    at(clock, "2021-10-08")


async def first_screen(
    bot: Harness, user: EmulatedUser = CHAIR, command: str = "/summary", **chat: object
) -> SentMessage:
    """`/summary` answers with one message: its first screen."""
    [message] = await bot.send(user, command, **chat)  # type: ignore[arg-type]
    return message


async def tap(
    bot: Harness, message: SentMessage, label: str, user: EmulatedUser = CHAIR
) -> SentMessage:
    """`user` taps the button labelled `label`: the message as it reads afterwards, which the
    bot edited rather than sending anything new."""
    data = dict(bot.emulator.buttons(message))[label]
    assert await bot.press(user, message, data) == []
    return shown(bot, message)


def shown(bot: Harness, message: SentMessage) -> SentMessage:
    """`message` as its chat sees it now."""
    return next(
        m for m in bot.emulator.messages(message.chat_id) if m.message_id == message.message_id
    )


async def summary_section(
    bot: Harness, label: str, user: EmulatedUser = CHAIR, command: str = "/summary"
) -> str:
    """The text of one section, opened from a new first screen (one page, so it has Back only)."""
    section = await tap(bot, await first_screen(bot, user, command), label, user)
    assert len(section.text) <= 4096
    return section.text


def section(text: str, heading: str) -> str:
    """The part of a text from `heading` to the next bold heading."""
    start = text.index(heading)
    end = text.find("\n<b>", start + len(heading))
    return text[start : end if end != -1 else len(text)]


async def test_the_first_screen_is_short_and_says_what_needs_the_board(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    seed_exceptions(db, clock, people)
    message = await first_screen(bot)
    assert message.text == (
        "<b>Highlight summary</b>\n"
        "North Northamptonshire Community Safety Partnership Plan 2021-22\n"
        "Figures at Fri 8 Oct 2021, 10:00.\n"
        "\n"
        "🔴 2 off track · 🟠 5 at risk · ⚠️ 2 overdue · 💤 13 quiet\n"
        "📭 4 organisations with no update since the last board meeting\n"
        "💷 12 funding decisions open, £178,000.00\n"
        "📅 1 board meeting in the next six months, the next Thu 20 Jan 2022 (in 104 days)\n"
        "⏳ 3 deadlines in the next six months, the next Mon 31 Jan 2022 (in 115 days)\n"
        "\n"
        "<b>Off track or overdue: 4</b>\n"
        "🔴 <b>SOC-1</b> Run the #Citadel pilot in William Knibb ward, Kettering: off track\n"
        "🔴 <b>DASV-2</b> Confirm domestic abuse service funding before providers…: off track\n"
        "🟠 <b>SOC-2</b> Bring homelessness services into #Citadel: at risk, due 8 days ago\n"
        "🟢 <b>SOC-4</b> Bring probation services into #Citadel: on track, due 8 days ago"
    )
    assert bot.emulator.buttons(message) == SECTION_BUTTONS
    rows = (message.reply_markup or {})["inline_keyboard"]
    assert [len(row) for row in rows] == [2, 2, 1]


async def test_the_first_screen_caps_its_list_and_points_to_exceptions(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    # By 5 Jan 2022: SOC-3 and DASV-2 off track and overdue, four more overdue.
    at(clock, "2022-01-05")
    text = (await first_screen(bot)).text
    assert section(text, "<b>Off track or overdue") == (
        "<b>Off track or overdue: 6</b>\n"
        "🔴 <b>SOC-3</b> Agree #Citadel referral routes with EMAS and Kettering…:"
        " off track, due 66 days ago\n"
        "🔴 <b>DASV-2</b> Confirm domestic abuse service funding before providers…:"
        " off track, due 5 days ago\n"
        "🟠 <b>SOC-2</b> Bring homelessness services into #Citadel: at risk, due 97 days ago\n"
        "🟢 <b>SOC-4</b> Bring probation services into #Citadel: on track, due 97 days ago\n"
        "🟠 <b>DASV-1</b> Develop safe accommodation pathways for victims of…:"
        " at risk, due 5 days ago\n"
        "…and 1 more: Exceptions has them all."
    )
    assert "🔴 2 off track · 🟠 4 at risk · ⚠️ 6 overdue" in text


async def test_each_section_opens_in_place_and_back_returns(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    seed_exceptions(db, clock, people)
    message = await first_screen(bot)
    opened = await tap(bot, message, "🔴 Exceptions")
    assert opened.text.startswith(
        "<b>Exceptions</b>\n"
        "Figures at Fri 8 Oct 2021, 10:00. Direction of travel is since the board meeting on"
        " Thu 16 Sep 2021 (22 days ago).\n\n<b>🔴 Off track: 2</b>\n"
    )
    assert bot.emulator.buttons(opened) == BACK
    back = await tap(bot, opened, "‹ Back")
    assert back.text == message.text and bot.emulator.buttons(back) == SECTION_BUTTONS
    for label, heading in [
        ("📊 By priority", "<b>By priority</b>"),
        ("💷 Funding", "<b>Funding decisions still open</b>"),
        ("📅 Meetings", "<b>Meetings and deadlines</b>"),
        ("📭 Returns", "<b>Returns</b>"),
    ]:
        opened = await tap(bot, shown(bot, message), label)
        assert opened.text.startswith(f"{heading}\nFigures at Fri 8 Oct 2021, 10:00."), label
        assert bot.emulator.buttons(opened) == BACK
        await tap(bot, opened, "‹ Back")
    # One message all along: every press edited it.
    assert [m.message_id for m in bot.emulator.messages(CHAIR.id)] == [message.message_id]


async def test_the_exceptions_section(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    seed_exceptions(db, clock, people)
    text = await summary_section(bot, "🔴 Exceptions")
    red = section(text, "<b>🔴 Off track")
    assert red.startswith("<b>🔴 Off track: 2</b>\n")
    assert (
        "🔴 <b>SOC-1</b> Run the #Citadel pilot in William Knibb ward, Kettering\n"
        "    Northants Police · off track since Mon 20 Sep 2021 (18 days ago) · ↓ worsening\n"
        "    Note, Mon 20 Sep 2021 (18 days ago), Dan: Provider pulled out\n"
        "    Mitigation: Re-procuring through the PFCC framework"
    ) in red
    assert "<b>DASV-2</b>" in red and "No update yet: this is the status the plan set." in red

    amber = section(text, "<b>🟠 At risk")
    assert amber.startswith("<b>🟠 At risk: 5</b>\n")
    assert (
        "    Note, Mon 20 Sep 2021 (18 days ago), Sarah: Waiting for the housing allocation\n"
        "    Forecast: Expected to recover by the due date"
    ) in amber
    assert "EMAS signed; KGH still to sign\n    Forecast: none given" in amber

    # Actions due the same day come under that day, said once.
    assert section(text, "<b>⚠️ Overdue") == (
        "<b>⚠️ Overdue: 2</b>\n"
        "Due Thu 30 Sep 2021 (8 days ago):\n"
        "    🟠 <b>SOC-2</b> Bring homelessness services into #Citadel · at risk"
        " · Homelessness Outreach Service\n"
        "    🟢 <b>SOC-4</b> Bring probation services into #Citadel · on track"
        " · Probation Service\n"
    )

    quiet = section(text, "<b>💤 No update")
    # The stalest first; past ten, a count (SOC-3, last updated 1 Sep, is among the rest).
    assert quiet.startswith(
        "<b>💤 No update for 28+ days: 13</b>\n"
        "No update since the plan set its status, Thu 10 Jun 2021 (120 days ago):\n"
        "    🟠 <b>SOC-2</b> Bring homelessness services into #Citadel"
        " · Homelessness Outreach Service\n"
        "    🟢 <b>SOC-4</b> Bring probation services into #Citadel · Probation Service\n"
    )
    assert quiet.count("(120 days ago)") == 1
    assert quiet.count("</b>") == 1 + 10
    assert quiet.endswith(
        "…and 3 more with no recent update. /summary CODE shows one priority; /report has them all."
    )
    assert "SOC-3" not in quiet and "SOC-1" not in quiet


async def test_the_priority_funding_meetings_and_returns_sections(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    seed_exceptions(db, clock, people)
    rag = await summary_section(bot, "📊 By priority")
    # SOC was at risk at the meeting (SOC-3 had recovered to amber); SOC-1 is now off track.
    assert "🔴 <b>SOC</b> Serious and organised crime: off track, ↓ worsening (was at risk)" in rag
    assert "🔴 1 · 🟠 2 · 🟢 1 · ✅ 0 · ⚪ 1 · latest update Mon 20 Sep 2021 (18 days ago)" in rag
    assert "🟢 <b>HATE</b> Hate crime: on track, → steady\n" in rag
    assert rag.endswith("/report sends the board paper.</i>")

    assert await summary_section(bot, "💷 Funding") == (
        "<b>Funding decisions still open</b>\n"
        "Figures at Fri 8 Oct 2021, 10:00.\n"
        "\n"
        "<b>2021/22</b> (this financial year): 2 open, £21,000.00\n"
        "Recorded Thu 10 Jun 2021 (120 days ago):\n"
        "    IPV · NHS Northamptonshire Clinical Commissioning Group: £15,000.00 agreed\n"
        "    DHR · NHS Northamptonshire Clinical Commissioning Group: £6,000.00 agreed\n"
        "\n"
        "<b>2022/23</b> (next financial year): 10 open, £157,000.00\n"
        "Recorded Thu 10 Jun 2021 (120 days ago):\n"
        "    MAPPA · North Northamptonshire Council: £6,000.00 proposed\n"
        "    MAPPA · Northants Police: £12,750.00 agreed\n"
        "    MAPPA · Probation Service: £12,750.00 proposed\n"
        "    IPV · North Northamptonshire Council: £45,000.00 proposed\n"
        "    IPV · Police, Fire and Crime Commissioner for Northamptonshire: £32,000.00 agreed\n"
        "    ECINS · North Northamptonshire Council: £18,500.00 proposed\n"
        "    ECINS · Northamptonshire Fire and Rescue Service: £3,000.00 agreed\n"
        "    ECINS · Northants Police: £9,000.00 agreed\n"
        "    DHR · North Northamptonshire Council: £12,000.00 proposed\n"
        "    DHR · Police, Fire and Crime Commissioner for Northamptonshire:"
        " £6,000.00 proposed\n"
        "\n"
        "Next deadline: <b>Partner contributions confirmed</b>, Mon 31 Jan 2022 (in 115 days)"
    )

    assert await summary_section(bot, "📅 Meetings") == (
        "<b>Meetings and deadlines</b>\n"
        "Figures at Fri 8 Oct 2021, 10:00.\n"
        "\n"
        "<b>📅 Board meetings in the next six months: 1</b>\n"
        "North Northants CSP Board: Thu 20 Jan 2022, 10:00 (in 104 days),"
        " Online (Microsoft Teams)\n"
        "\n"
        "<b>⏳ Deadlines in the next six months: 3</b>\n"
        "Mon 31 Jan 2022 (in 115 days): <b>Partner contributions confirmed</b>\n"
        "Thu 24 Feb 2022 (in 139 days): <b>Councils set their budgets</b>\n"
        "Fri 1 Apr 2022 (in 175 days): <b>Financial year starts</b>"
    )

    # Northants Police updated SOC-1 after the meeting, the council's DASV-1 the chair.
    assert await summary_section(bot, "📭 Returns") == (
        "<b>Returns</b>\n"
        "Figures at Fri 8 Oct 2021, 10:00.\n"
        "\n"
        "<b>📭 No update since the last board meeting: 4 organisations</b>\n"
        "Homelessness Outreach Service: 1 open action, no update yet\n"
        "Police, Fire and Crime Commissioner for Northamptonshire: 1 open action, no update yet\n"
        "Probation Service: 1 open action, no update yet\n"
        "Voluntary and Community Sector Forum: 1 open action, no update yet"
    )


def clear_calendar_and_settle_funding(session: Session) -> None:
    """No meetings or deadlines on record, every contribution confirmed."""
    for table in (DeadlineOrganisation, Deadline, Meeting):
        session.execute(delete(table))
    session.execute(update(FundingDecision).values(status=FundingStatus.CONFIRMED))


async def test_summary_with_nothing_to_report(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    db.call(clear_calendar_and_settle_funding)
    for ref in OPEN_ACTIONS:
        log(db, clock, people["chair"], ref, Status.GREEN, "On track")
    assert (await first_screen(bot)).text == (
        "<b>Highlight summary</b>\n"
        "North Northamptonshire Community Safety Partnership Plan 2021-22\n"
        "Figures at Thu 10 Jun 2021, 10:00.\n"
        "\n"
        "🔴 0 off track · 🟠 0 at risk · ⚠️ 0 overdue · 💤 0 quiet\n"
        "📭 0 organisations with no update in the last 28 days\n"
        "💷 No funding decisions open\n"
        "📅 No board meeting in the next six months\n"
        "⏳ No deadlines in the next six months\n"
        "\n"
        "<b>Off track or overdue: 0</b>\n"
        "Nothing is off track or overdue."
    )
    rag = await summary_section(bot, "📊 By priority")
    assert (
        "Direction of travel is since Thu 13 May 2021: there is no board meeting on record yet,"
        " so the last 28 days." in rag
    )
    assert "🟢 <b>SOC</b> Serious and organised crime: on track, ↑ improving (was off track)" in rag
    exceptions = await summary_section(bot, "🔴 Exceptions")
    assert "<b>🔴 Off track: 0</b>\nNo actions are off track." in exceptions
    assert "<b>🟠 At risk: 0</b>\nNo actions are at risk." in exceptions
    assert "<b>⚠️ Overdue: 0</b>\nNo actions are overdue." in exceptions
    assert exceptions.endswith(
        "<b>💤 No update for 28+ days: 0</b>\n"
        "Every open action has an update from the last 28 days."
    )
    assert (await summary_section(bot, "💷 Funding")).endswith(
        "<b>2021/22</b> (this financial year): none open\n"
        "\n"
        "<b>2022/23</b> (next financial year): none open\n"
        "\n"
        "No deadlines ahead."
    )
    assert (await summary_section(bot, "📅 Meetings")).endswith(
        "<b>📅 Board meetings in the next six months: 0</b>\n"
        "None scheduled.\n"
        "\n"
        "<b>⏳ Deadlines in the next six months: 0</b>\n"
        "None."
    )
    assert (await summary_section(bot, "📭 Returns")).endswith(
        "<b>📭 No update in the last 28 days: 0 organisations</b>\n"
        "Every organisation leading open actions has sent an update."
    )


async def test_a_meeting_beyond_six_months_is_still_named(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    at(clock, "2022-01-21")  # after the last meeting in the plan
    db.call(
        lambda s: s.add(
            Meeting(
                title="North Northants CSP Board",
                starts_at=datetime.fromisoformat("2022-09-15T09:00:00+00:00"),
            )
        )
    )
    text = (await first_screen(bot)).text
    assert "📅 No board meeting in the next six months\n" in text
    assert section(await summary_section(bot, "📅 Meetings"), "<b>📅") == (
        "<b>📅 Board meetings in the next six months: 0</b>\n"
        "None; the next is North Northants CSP Board, Thu 15 Sep 2022, 10:00 (in 237 days).\n"
    )


def record_probation_agreeing(session: Session, *, at: datetime) -> None:
    """Probation agrees its 2022/23 MAPPA contribution (proposed in the plan)."""
    decision = session.exec(
        select(FundingDecision)
        .join(Organisation, col(Organisation.id) == FundingDecision.organisation_id)
        .where(Organisation.name == "Probation Service", FundingDecision.financial_year == 2022)
    ).one()
    decision.status, decision.decided_at = FundingStatus.AGREED, at


async def test_summary_of_one_priority(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    seed_exceptions(db, clock, people)
    message = await first_screen(bot, command="/summary soc")
    assert message.text == (
        "<b>Highlight summary</b>: <b>SOC</b> Serious and organised crime\n"
        "North Northamptonshire Community Safety Partnership Plan 2021-22\n"
        "Figures at Fri 8 Oct 2021, 10:00.\n"
        "\n"
        "🔴 1 off track · 🟠 2 at risk · ⚠️ 2 overdue · 💤 4 quiet\n"
        "📭 2 organisations with no update since the last board meeting\n"
        "💷 3 funding decisions open, £34,500.00 (SOC's partners)\n"
        "📅 1 board meeting in the next six months, the next Thu 20 Jan 2022 (in 104 days)\n"
        "⏳ 3 deadlines in the next six months, the next Mon 31 Jan 2022 (in 115 days)\n"
        "\n"
        "<b>Off track or overdue: 3</b>\n"
        "🔴 <b>SOC-1</b> Run the #Citadel pilot in William Knibb ward, Kettering: off track\n"
        "🟠 <b>SOC-2</b> Bring homelessness services into #Citadel: at risk, due 8 days ago\n"
        "🟢 <b>SOC-4</b> Bring probation services into #Citadel: on track, due 8 days ago"
    )
    assert bot.emulator.buttons(message) == [
        ("🔴 Exceptions", "sm:exc:SOC:0"),
        ("📊 By priority", "sm:pri:SOC:0"),
        ("💷 Funding", "sm:fun:SOC:0"),
        ("📅 Meetings", "sm:mtg:SOC:0"),
        ("📭 Returns", "sm:ret:SOC:0"),
    ]
    exceptions = await tap(bot, message, "🔴 Exceptions")
    assert exceptions.text.startswith("<b>Exceptions</b>: <b>SOC</b> Serious and organised crime\n")
    assert "<b>🔴 Off track: 1</b>" in exceptions.text and "DASV-2" not in exceptions.text
    assert "<b>🟠 At risk: 2</b>" in exceptions.text and "DASV-1" not in exceptions.text
    assert "<b>💤 No update for 28+ days: 4</b>" in exceptions.text
    assert bot.emulator.buttons(exceptions) == [("‹ Back", "sm:top:SOC:0")]
    back = await tap(bot, exceptions, "‹ Back")
    assert back.text == message.text
    rag = await tap(bot, back, "📊 By priority")
    assert "<b>SOC</b>" in rag.text and "<b>DASV</b>" not in rag.text
    returns = (await tap(bot, await tap(bot, rag, "‹ Back"), "📭 Returns")).text
    assert "Homelessness Outreach Service" in returns and "Police, Fire and Crime" not in returns
    assert (
        await bot.reply(BOARD, "/summary XYZ")
        == "No priority XYZ. The priorities are SOC, DASV, HATE, ASB."
    )


async def test_one_prioritys_funding_is_its_partners_under_one_date_each(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    """SOC's actions are led by Northants Police, the Homelessness Outreach Service and the
    Probation Service: its funding section has their contributions only."""
    seed_exceptions(db, clock, people)
    db.call(record_probation_agreeing, at=datetime.fromisoformat("2021-10-01T11:00:00+00:00"))
    assert await summary_section(bot, "💷 Funding", command="/summary SOC") == (
        "<b>Funding decisions still open</b>: <b>SOC</b> Serious and organised crime\n"
        "Figures at Fri 8 Oct 2021, 10:00.\n"
        "Only the contributions of the organisations leading SOC's actions.\n"
        "\n"
        "<b>2021/22</b> (this financial year): none open\n"
        "\n"
        "<b>2022/23</b> (next financial year): 3 open, £34,500.00\n"
        "Recorded Thu 10 Jun 2021 (120 days ago):\n"
        "    MAPPA · Northants Police: £12,750.00 agreed\n"
        "    ECINS · Northants Police: £9,000.00 agreed\n"
        "Recorded Fri 1 Oct 2021 (7 days ago):\n"
        "    MAPPA · Probation Service: £12,750.00 agreed\n"
        "\n"
        "Next deadline: <b>Partner contributions confirmed</b>, Mon 31 Jan 2022 (in 115 days)"
    )


async def test_the_chair_asks_in_the_boards_group(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    seed_exceptions(db, clock, people)
    link(db, clock, -4242)
    group = {"chat_id": -4242, "chat_type": "group"}
    message = await first_screen(bot, CHAIR, **group)
    assert message.chat_id == -4242
    assert message.text.startswith("<b>Highlight summary</b>\n")
    assert bot.emulator.buttons(message) == SECTION_BUTTONS
    # A board member in the group opens a section: the group's message changes.
    funding = await tap(bot, message, "💷 Funding", BOARD)
    assert funding.text.startswith("<b>Funding decisions still open</b>\n")
    assert bot.emulator.buttons(funding) == BACK
    # An observer may not read the summary, in the group or by its buttons.
    observer = PEOPLE["observer"].user
    refused = await bot.press(observer, funding, "sm:top:0")
    assert [m.text for m in refused] == [
        "Sorry, /summary isn't available to an observer. Send /help for the commands you can use."
    ]
    assert bot.emulator.callback_answers[-1]["text"] == "Not available to your role."
    assert shown(bot, funding).text == funding.text


async def test_a_partnership_group_is_not_shown_the_summary(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    link(db, clock, -4343, "partnership")
    [reply] = await bot.send(CHAIR, "/summary", chat_id=-4343, chat_type="group")
    assert reply.text == "/summary is not shown in this group. Ask me in a private chat."
    update = emulator.build_callback_update(CHAIR, reply.message_id, "sm:fun:0", chat_id=-4343)
    assert await bot.process(update) == []
    assert emulator.callback_answers[-1]["text"] == (
        "/summary is not shown in this group. Ask me in a private chat."
    )


@pytest.mark.parametrize("person", ["police", "observer"])
@pytest.mark.parametrize("chat", ["private", "group"])
async def test_partners_and_observers_may_not_ask(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    people: dict[str, MemberView],
    person: str,
    chat: str,
) -> None:
    link(db, clock, -4242)
    group = {"chat_id": -4242, "chat_type": "group"} if chat == "group" else {}
    text = await bot.reply(PEOPLE[person].user, "/summary", **group)
    assert text.startswith("Sorry, /summary isn't available to a")


async def test_a_button_for_a_priority_no_longer_in_the_plan_has_expired(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    message = await first_screen(bot, command="/summary HATE")
    with db.engine.begin() as connection:
        connection.execute(update(Priority).where(Priority.code == "HATE").values(code="HC"))
    assert await bot.press(CHAIR, message, "sm:fun:HATE:0") == []
    assert emulator.callback_answers[-1]["text"].startswith("That button has expired")
    assert shown(bot, message).text == message.text


async def test_a_long_section_is_paged_between_items(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    for ref in OPEN_ACTIONS:
        log(
            db,
            clock,
            people["chair"],
            ref,
            Status.RED,
            f"{ref} " + "blocked " * 100,
            mitigation="escalated " * 90,
        )
    message = await first_screen(bot)
    assert len(message.text) < 1000
    page = await tap(bot, message, "🔴 Exceptions")
    pages = [page]
    while ("Next ›", f"sm:exc:{len(pages)}") in bot.emulator.buttons(page):
        page = await tap(bot, page, "Next ›")
        pages.append(page)
    assert len(pages) > 3
    for number, page in enumerate(pages, start=1):
        assert len(page.text) <= 4096
        assert page.text.endswith(f"\n\n<i>Page {number} of {len(pages)}</i>")
        first = page.text.splitlines()[0]
        assert not first.startswith(" "), "no page starts inside an item"
    assert bot.emulator.buttons(pages[1]) == [
        ("‹ Previous", "sm:exc:0"),
        ("Next ›", "sm:exc:2"),
        ("‹ Back", "sm:top:0"),
    ]
    assert bot.emulator.buttons(pages[-1]) == [
        ("‹ Previous", f"sm:exc:{len(pages) - 2}"),
        ("‹ Back", "sm:top:0"),
    ]
    text = "\n\n".join(page.text for page in pages)
    red = section(text, "<b>🔴 Off track: 15</b>")
    assert text.count("    Mitigation: escalated") == 10
    assert "…and 5 more off track." in text
    assert red.startswith("<b>🔴 Off track: 15</b>\n🔴 <b>SOC-1</b>")
    # Back from the last page is the first screen again.
    assert (await tap(bot, pages[-1], "‹ Back")).text == message.text


def count_statements(db: Database, op: Callable[[Session], object]) -> int:
    statements = []

    def record(*args: object) -> None:
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        db.call(op)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return len(statements)


def grow_plan(session: Session, *, actions: int, updates_each: int, at: datetime) -> None:
    """Add `actions` actions to each priority, each with `updates_each` updates."""
    priorities = session.exec(select(Priority)).all()
    for priority in priorities:
        for number in range(100, 100 + actions):
            action = Action(
                ref=f"{priority.code}-{number}",
                priority_id=priority.id,
                title=f"Extra action {number}",
                lead_organisation_id=priority.lead_organisation_id,
                status=Status.AMBER,
                status_at=at,
                due_on=(at - timedelta(days=number % 3)).date(),
            )
            session.add(action)
            session.flush()
            for step in range(updates_each):
                when = at - timedelta(days=updates_each - step)
                session.add(
                    ProgressUpdate(
                        action_id=action.id,
                        status=Status.RED if step % 2 else Status.AMBER,
                        note=f"note {step}",
                        created_at=when,
                        previous_status=Status.AMBER,
                        previous_status_at=when,
                    )
                )


async def test_statements_per_summary_do_not_grow_with_the_plan(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    seed_exceptions(db, clock, people)

    def summary(session: Session) -> object:
        return board_summary(session, at=clock(), quiet_after=QUIET)

    def one_priority(session: Session) -> object:
        return board_summary(session, at=clock(), quiet_after=QUIET, code="SOC")

    small = count_statements(db, summary), count_statements(db, one_priority)
    db.call(grow_plan, actions=60, updates_each=12, at=clock())
    assert db.call(lambda s: s.exec(select(func.count()).select_from(Action)).one()) == 257
    assert (count_statements(db, summary), count_statements(db, one_priority)) == small
