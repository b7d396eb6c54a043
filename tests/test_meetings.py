"""Scheduling board meetings (the /meeting form and the command line), /meetings, .ics files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlmodel import col, select

from csp_bot.bot.emulator import BotApiEmulator, SentMessage
from csp_bot.bot.settings import Settings
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.meetings import meetings_ics
from csp_bot.models.membership import MemberView
from csp_bot.models.tables import AuditEntry, Meeting
from tests.conftest import link
from tests.harness import PEOPLE, Harness
from tests.reminder_helpers import restarted, schedule
from tests.test_cli import env, run_cli  # noqa: F401  (the command-line test setup)

CHAIR = PEOPLE["chair"].user
BOARD = PEOPLE["board"].user


def meetings(db: Database) -> list[Meeting]:
    return list(db.call(lambda s: s.exec(select(Meeting).order_by(col(Meeting.id))).all()))


def labels(emulator: BotApiEmulator, message: SentMessage) -> list[str]:
    return [label for label, _ in emulator.buttons(message)]


def data_of(emulator: BotApiEmulator, message: SentMessage, label: str) -> str:
    return dict(emulator.buttons(message))[label]


async def plain_reply(bot: Harness, text: str) -> str:
    """The chair types `text`: the one reply, as the chair reads it."""
    [reply] = await bot.send(CHAIR, text)
    return reply.plain_text


async def latest(bot: Harness) -> SentMessage:
    """The chair's latest message as it looks now (after edits)."""
    return bot.emulator.messages(CHAIR.id)[-1]


async def test_the_chair_schedules_a_meeting_step_by_step(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    before = len(meetings(db))
    first = (await bot.send(CHAIR, "/meeting"))[0]
    assert "<b>New board meeting</b> (1 of 4)" in first.text
    assert labels(bot.emulator, first) == ["North Northants CSP Board", "Cancel"]
    await bot.press(CHAIR, first, data_of(bot.emulator, first, "North Northants CSP Board"))
    asked = await latest(bot)
    assert "<b>North Northants CSP Board</b> (2 of 4)" in asked.text
    again = await plain_reply(bot, "next Thursday")
    assert "I can't read “next Thursday” as a date and time" in again
    again = await plain_reply(bot, "01/06/2021 10:00")
    assert "01/06/2021 10:00 is in the past: a meeting must be scheduled ahead." in again
    where = await bot.reply(CHAIR, "9/12/2021 14:00")
    assert "(3 of 4)" in where
    agenda = await bot.send(CHAIR, "https://teams.example.org/meet/42")
    assert "(4 of 4)" in agenda[0].text and labels(bot.emulator, agenda[0]) == ["Skip", "Cancel"]
    summary = await bot.send(CHAIR, "Exception report\n- #Citadel update\n\nFunding, 2022/23")
    assert "<b>Schedule this meeting?</b>" in summary[0].text
    assert "🕑 Thu 9 Dec 2021, 14:00" in summary[0].text
    assert "• #Citadel update\n• Funding, 2022/23" in summary[0].text
    done = await bot.press(CHAIR, summary[0], data_of(bot.emulator, summary[0], "💾 Save"))
    assert done[-1].text.startswith(
        "📅 Scheduled: <b>North Northants CSP Board</b>, Thu 9 Dec 2021, 14:00"
    )
    assert "reminded before it (7d, 1d, 2h)" in done[-1].text
    [meeting] = meetings(db)[before:]
    assert (meeting.location, meeting.agenda) == (
        "https://teams.example.org/meet/42",
        "Exception report\n#Citadel update\nFunding, 2022/23",
    )
    audit = db.call(
        lambda s: s.exec(
            select(AuditEntry).where(AuditEntry.entity == "meeting").order_by(col(AuditEntry.id))
        ).all()
    )
    assert audit[-1].member_id == people["chair"].id and audit[-1].change == "created"


async def test_a_form_survives_a_restart_of_the_bot(
    bot: Harness,
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    await bot.send(CHAIR, "/meeting")
    await bot.send(CHAIR, "Extraordinary board meeting")
    async with restarted(settings, db, clock, emulator) as again:
        after = Harness(again, emulator)
        assert "(3 of 4)" in await after.reply(CHAIR, "2021-07-01 10:00")


async def test_cancel_and_other_commands_close_the_form_with_nothing_stored(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    before = len(meetings(db))
    await bot.send(CHAIR, "/meeting")
    assert await bot.reply(CHAIR, "/cancel") == "Cancelled. Nothing was stored."
    assert await bot.reply(CHAIR, "/cancel") != "Cancelled. Nothing was stored."
    await bot.send(CHAIR, "/meeting")
    await bot.send(CHAIR, "Board")
    whoami = await bot.reply(CHAIR, "/whoami")  # another command: the form closes quietly
    assert whoami.startswith("<b>Sarah</b>")
    after = await bot.reply(CHAIR, "2021-07-01 10:00")
    assert "(3 of 4)" not in after  # no form is waiting for the answer any more
    assert len(meetings(db)) == before


async def test_form_buttons_are_checked_on_press(
    bot: Harness, people: dict[str, MemberView], caplog: pytest.LogCaptureFixture
) -> None:
    first = (await bot.send(CHAIR, "/meeting"))[0]
    caplog.set_level(logging.WARNING)
    forged = bot.emulator.build_callback_update(CHAIR, first.message_id, "fm:meeting:0:other")
    await bot.process(forged)
    assert (
        bot.emulator.callback_answers[-1]["text"]
        == "That button has expired. Send the command again."
    )
    assert "refused callback data 'fm:meeting:0:other'" in caplog.text
    board_name = data_of(bot.emulator, first, "North Northants CSP Board")
    await bot.press(CHAIR, first, board_name)
    stale = bot.emulator.build_callback_update(CHAIR, first.message_id, board_name)
    await bot.process(stale)  # the same tap again: that question has been answered
    assert (
        bot.emulator.callback_answers[-1]["text"]
        == "That button has expired. Send the command again."
    )


async def test_only_the_chair_and_coordinator_schedule_meetings(
    bot: Harness, people: dict[str, MemberView]
) -> None:
    assert "Sorry, /meeting isn't available to a board member" in await bot.reply(BOARD, "/meeting")


async def test_the_form_is_not_run_in_a_group(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    link(db, clock, -100555)
    reply = await bot.reply(CHAIR, "/meeting", chat_id=-100555, chat_type="group")
    assert reply.startswith("Please send /meeting in a private chat")


async def test_meetings_lists_what_is_coming_and_sends_a_calendar_file(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    meeting = schedule(db, clock, "2021-06-24T10:00")
    listing = (await bot.send(BOARD, "/meetings"))[0]
    assert "<b>North Northants CSP Board</b>\n🕑 Thu 24 Jun 2021, 10:00" in listing.text
    assert "Your reply: not yet" in listing.text
    assert "Replies:" not in listing.text  # only the organisers see who is coming
    assert labels(bot.emulator, listing)[0] == "📅 24 Jun"
    [document] = await bot.press(BOARD, listing, f"mt:i:{meeting.id}")
    assert document.kind == "document" and document.filename == "board-meeting-2021-06-24.ics"
    assert document.content is not None
    calendar = document.content.decode()
    assert "DTSTART:20210624T090000Z\r\n" in calendar  # 10:00 BST
    assert "LOCATION:Municipal Offices\\, Kettering\r\n" in calendar
    assert f"UID:meeting-{meeting.id}@csp-bot\r\n" in calendar


async def test_meetings_offers_the_reply_buttons_of_each_meeting(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    first = schedule(db, clock, "2021-06-24T10:00")
    second = schedule(db, clock, "2021-07-22T10:00", title="Extra board")
    listing = (await bot.send(BOARD, "/meetings"))[0]
    assert labels(bot.emulator, listing)[:8] == [
        "📅 24 Jun",
        *("✅ Attending", "🙏 Apologies", "👤 Substitute"),
        "📅 22 Jul",
        *("✅ Attending", "🙏 Apologies", "👤 Substitute"),
    ]
    assert "reply with the buttons under each date" in listing.text
    await bot.press(BOARD, listing, f"mt:r:{second.id}:p")
    assert bot.emulator.callback_answers[-1]["text"] == "Thank you: apologies."
    now = await latest_of(bot, BOARD)
    # Only the pressed meeting's row is ticked; the other meeting's row stays as it was.
    assert labels(bot.emulator, now)[1:4] == ["✅ Attending", "🙏 Apologies", "👤 Substitute"]
    assert labels(bot.emulator, now)[5:8] == ["✅ Attending", "☑️ 🙏 Apologies", "👤 Substitute"]
    again = (await bot.send(BOARD, "/meetings"))[0]
    assert "Your reply: apologies" in again.text
    assert "☑️ 🙏 Apologies" in labels(bot.emulator, again)
    # Checked like the reminder's: an observer is not invited, so has no buttons, and a
    # forged press is refused and stores nothing.
    observer = (await bot.send(PEOPLE["observer"].user, "/meetings"))[0]
    assert labels(bot.emulator, observer)[:2] == ["📅 24 Jun", "📅 22 Jul"]
    await bot.press(PEOPLE["observer"].user, observer, f"mt:r:{first.id}:a")
    assert bot.emulator.callback_answers[-1]["show_alert"] is True


async def latest_of(bot: Harness, user: object) -> SentMessage:
    """`user`'s latest message as it looks now (after edits)."""
    return bot.emulator.messages(user.id)[-1]  # type: ignore[attr-defined]


def test_calendar_lines_are_folded_and_escaped(db: Database, clock: FakeClock, plan: None) -> None:
    meeting = schedule(db, clock, "2021-06-24T10:00", title="Board; " + "é" * 60)
    text = meetings_ics([meeting], now=clock())
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    assert "SUMMARY:Board\\; éé" in text
    unfolded = text.replace("\r\n ", "")
    assert "SUMMARY:Board\\; " + "é" * 60 + "\r\n" in unfolded


# --- the command line ---------------------------------------------------------------------


@pytest.mark.usefixtures("env", "plan")
def test_meeting_add_list_ics_and_cancel_from_the_command_line(
    db: Database, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run_cli(
        capsys,
        "meeting",
        "add",
        "--title",
        "CSP Board",
        "--at",
        "2099-12-10T14:00",
        "--location",
        "Kettering",
    )
    assert code == 0 and "CSP Board, Thu 10 Dec 2099 14:00, Kettering" in out
    meeting_id = out.split("scheduled meeting ")[1].split(":")[0]
    code, out, _ = run_cli(capsys, "meeting", "list")
    assert f"{meeting_id:>4}  CSP Board, Thu 10 Dec 2099 14:00, Kettering" in out
    code, out, _ = run_cli(capsys, "meeting", "ics", meeting_id, "--out", str(tmp_path / "one.ics"))
    assert code == 0 and "DTSTART:20991210T140000Z" in (tmp_path / "one.ics").read_text()
    code, out, _ = run_cli(capsys, "meeting", "cancel", meeting_id)
    assert code == 0 and f"cancelled meeting {meeting_id}" in out


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        ("2020-01-01T10:00", "is in the past"),
        ("10th of never", "I can't read “10th of never” as a date and time"),
        ("2099-03-29T01:30", "does not exist in Europe/London (clocks go forward)"),
    ],
)
@pytest.mark.usefixtures("env", "plan")
def test_meeting_add_refuses_bad_times_and_stores_nothing(
    db: Database, capsys: pytest.CaptureFixture[str], when: str, problem: str
) -> None:
    before = len(meetings(db))
    code, _, err = run_cli(capsys, "meeting", "add", "--title", "Board", "--at", when)
    assert code == 2 and problem in err and err.startswith("csp-bot: ")
    assert len(meetings(db)) == before
