"""The board's exception summary: /summary and /summary CODE, end to end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, event, func, update
from sqlmodel import Session, select

from csp_bot.bot.emulator import EmulatedUser
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


async def summary_text(bot: Harness, user: EmulatedUser = CHAIR, command: str = "/summary") -> str:
    sent = await bot.send(user, command)
    assert all(len(message.text) <= 4096 for message in sent)
    return "\n\n".join(message.text for message in sent)


def section(text: str, heading: str) -> str:
    """The part of the summary from `heading` to the next bold heading."""
    start = text.index(heading)
    end = text.find("\n<b>", start + len(heading))
    return text[start : end if end != -1 else len(text)]


async def test_summary_in_highlight_report_order(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    seed_exceptions(db, clock, people)
    text = await summary_text(bot)
    headings = [
        "<b>Overall RAG by priority</b>",
        "<b>🔴 Off track: 2</b>",
        "<b>🟠 At risk: 5</b>",
        "<b>⚠️ Overdue: 2</b>",
        "<b>💤 No update for 28+ days: 13</b>",
        "<b>💷 Funding decisions still open</b>",
        "<b>📅 Next board meeting</b>",
        "<b>📭 No update since the last board meeting: 4 organisations</b>",
    ]
    assert [text.index(heading) for heading in headings] == sorted(
        text.index(heading) for heading in headings
    )
    assert "Figures at Fri 8 Oct 2021, 10:00." in text
    assert "since the board meeting on Thu 16 Sep 2021 (22 days ago)" in text

    rag = section(text, "<b>Overall RAG by priority</b>")
    # SOC was at risk at the meeting (SOC-3 had recovered to amber); SOC-1 is now off track.
    assert "🔴 <b>SOC</b> Serious and organised crime: off track, ↓ worsening (was at risk)" in rag
    assert "🔴 1 · 🟠 2 · 🟢 1 · ✅ 0 · ⚪ 1 · latest update Mon 20 Sep 2021 (18 days ago)" in rag
    assert "🟢 <b>HATE</b> Hate crime: on track, → steady\n" in rag

    red = section(text, "<b>🔴 Off track")
    assert (
        "🔴 <b>SOC-1</b> Run the #Citadel pilot in William Knibb ward, Kettering\n"
        "    Northants Police · off track since Mon 20 Sep 2021 (18 days ago) · ↓ worsening\n"
        "    Note, Mon 20 Sep 2021 (18 days ago), Dan: Provider pulled out\n"
        "    Mitigation: Re-procuring through the PFCC framework"
    ) in red
    assert "<b>DASV-2</b>" in red and "No update yet: this is the status the plan set." in red

    amber = section(text, "<b>🟠 At risk")
    assert (
        "    Note, Mon 20 Sep 2021 (18 days ago), Sarah: Waiting for the housing allocation\n"
        "    Forecast: Expected to recover by the due date"
    ) in amber
    assert "EMAS signed; KGH still to sign\n    Forecast: none given" in amber

    overdue = section(text, "<b>⚠️ Overdue")
    assert (
        "🟠 <b>SOC-2</b> Bring homelessness services into #Citadel\n"
        "    due Thu 30 Sep 2021 (8 days ago) · at risk · Homelessness Outreach Service"
    ) in overdue
    assert "<b>SOC-4</b>" in overdue and "SOC-1" not in overdue

    quiet = section(text, "<b>💤 No update")
    # The stalest first; past ten, a count (SOC-3, last updated 1 Sep, is among the rest).
    assert quiet.startswith(
        "<b>💤 No update for 28+ days: 13</b>\n"
        "🟠 <b>SOC-2</b> Bring homelessness services into #Citadel\n"
        "    no update since the plan set its status, Thu 10 Jun 2021 (120 days ago)"
        " · Homelessness Outreach Service\n"
    )
    assert quiet.count("</b>") == 1 + 10
    assert "…and 3 more with no recent update." in quiet
    assert "SOC-3" not in quiet and "SOC-1" not in quiet

    funding = section(text, "<b>💷 Funding")
    assert "2021/22 (this financial year): 2 open, £21,000.00" in funding
    assert (
        "    IPV · NHS Northamptonshire Clinical Commissioning Group: £15,000.00 agreed, "
        "Thu 10 Jun 2021 (120 days ago)"
    ) in funding
    assert "2022/23 (next financial year): 10 open, £157,000.00" in funding
    assert (
        "Next deadline: <b>Partner contributions confirmed</b>, Mon 31 Jan 2022 (in 115 days)"
    ) in text

    assert (
        "North Northants CSP Board: Thu 20 Jan 2022, 10:00 (in 104 days), Online (Microsoft Teams)"
    ) in section(text, "<b>📅 Next board meeting")
    silent = section(text, "<b>📭")
    assert "Probation Service: 1 open action, no update yet" in silent
    assert "Northants Police" not in silent  # updated SOC-1 after the meeting
    assert "North Northamptonshire Council" not in silent  # DASV-1, by the chair


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
    text = await summary_text(bot)
    assert (
        "Direction of travel is since Thu 13 May 2021: there is no board meeting on record yet,"
        " so the last 28 days." in text
    )
    assert (
        "🟢 <b>SOC</b> Serious and organised crime: on track, ↑ improving (was off track)" in text
    )
    assert "<b>🔴 Off track: 0</b>\nNo actions are off track." in text
    assert "<b>🟠 At risk: 0</b>\nNo actions are at risk." in text
    assert "<b>⚠️ Overdue: 0</b>\nNo actions are overdue." in text
    assert (
        "<b>💤 No update for 28+ days: 0</b>\n"
        "Every open action has an update from the last 28 days." in text
    )
    assert "2021/22 (this financial year): none open\n2022/23 (next financial year): none open" in (
        text
    )
    assert "No deadlines ahead." in text
    assert "<b>📅 Next board meeting</b>\nNone scheduled." in text
    assert (
        "<b>📭 No update in the last 28 days: 0 organisations</b>\n"
        "Every organisation leading open actions has sent an update." in text
    )


async def test_summary_of_one_priority(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    seed_exceptions(db, clock, people)
    text = await summary_text(bot, command="/summary soc")
    assert text.startswith("<b>Highlight summary</b>: <b>SOC</b> Serious and organised crime\n")
    rag = section(text, "<b>Overall RAG by priority</b>")
    assert "<b>SOC</b>" in rag and "<b>DASV</b>" not in rag
    assert "<b>🔴 Off track: 1</b>" in text and "DASV-2" not in text
    assert "<b>🟠 At risk: 2</b>" in text and "DASV-1" not in text
    assert "<b>💤 No update for 28+ days: 4</b>" in text
    silent = section(text, "<b>📭")
    assert "Homelessness Outreach Service" in silent and "Police, Fire and Crime" not in silent
    assert (
        await bot.reply(BOARD, "/summary XYZ")
        == "No priority XYZ. The priorities are SOC, DASV, HATE, ASB."
    )


async def test_the_chair_asks_in_the_boards_group(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    link(db, clock, -4242)
    sent = await bot.send(CHAIR, "/summary", chat_id=-4242, chat_type="group")
    assert sent and all(message.chat_id == -4242 for message in sent)
    assert sent[0].text.startswith("<b>Highlight summary</b>")


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


async def test_a_long_summary_is_split_between_items(
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
    sent = await bot.send(CHAIR, "/summary")
    assert len(sent) > 3
    for message in sent:
        assert len(message.text) <= 4096
        first = message.text.splitlines()[0]
        assert not first.startswith(" "), "no message starts inside an item"
    text = "\n\n".join(message.text for message in sent)
    red = section(text, "<b>🔴 Off track: 15</b>")
    assert red.count("    Mitigation: escalated") == 10
    assert "…and 5 more off track." in red


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
