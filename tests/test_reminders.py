"""Reminders end to end: the dispatcher, the outbox and what members see, on a moved clock."""

from __future__ import annotations

from sqlmodel import select

from bot.context import CspApplication
from bot.emulator import BotApiEmulator
from models.clock import FakeClock
from models.db import Database
from models.membership import MemberView
from models.reminder_types import OutboxState, ReminderKind
from models.tables import MeetingReply
from tests.harness import PEOPLE, Harness
from tests.reminder_helpers import chat, outbox, schedule, set_clock, texts, tick

CHAIR = PEOPLE["chair"].user


async def test_board_members_get_meeting_reminders_at_each_offset(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    schedule(db, clock, "2021-06-24T10:00")
    await tick(app)
    assert not any("Board meeting" in text for text in texts(emulator, "chair"))
    set_clock(clock, "2021-06-17T09:59")
    await tick(app)
    assert not any("Board meeting" in text for text in texts(emulator, "chair"))
    set_clock(clock, "2021-06-17T10:00")
    await tick(app)
    reminder = chat(emulator, "chair")[-1]
    assert "Board meeting in 7 days" in reminder.text
    assert "Thu 24 Jun 2021, 10:00" in reminder.text
    assert [label for label, _ in emulator.buttons(reminder)] == [
        "✅ Attending",
        "🙏 Apologies",
        "👤 Substitute",
        "📅 Add to calendar",
    ]
    for person in ("board", "coordinator"):
        assert "Board meeting in 7 days" in chat(emulator, person)[-1].text
    assert not any("Board meeting" in text for text in texts(emulator, "police"))
    await tick(app)  # the next run sends nothing again
    assert sum("Board meeting in 7 days" in t for t in texts(emulator, "chair")) == 1


async def test_rsvp_buttons_record_the_reply_and_the_chair_sees_quorum(
    app: CspApplication,
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    meeting = schedule(db, clock, "2021-06-24T10:00")
    set_clock(clock, "2021-06-23T10:00")
    await tick(app)
    reminder = chat(emulator, "board")[-1]
    assert "Board meeting tomorrow at 10:00" in reminder.text
    await bot.press(PEOPLE["board"].user, reminder, f"mt:r:{meeting.id}:s")
    edited = chat(emulator, "board")[-1]
    assert "☑️ 👤 Substitute" in [label for label, _ in emulator.buttons(edited)]
    await bot.press(PEOPLE["chair"].user, chat(emulator, "chair")[-1], f"mt:r:{meeting.id}:a")
    replies = db.call(lambda s: s.exec(select(MeetingReply)).all())
    assert {(r.member_id, r.reply.value) for r in replies} == {
        (people["board"].id, "substitute"),
        (people["chair"].id, "attending"),
    }
    listing = await bot.send(CHAIR, "/meetings")
    assert "Replies: 2 coming, 0 apologies, 1 not replied · ✅ quorate (needs 2)" in listing[0].text
    who = await bot.press(CHAIR, listing[0], f"mt:w:{meeting.id}")
    assert "✅ Quorate: 2 of 3 coming, 2 needed." in who[0].text
    assert "<b>Not replied</b> (1)\n• Mike" in who[0].text


async def test_quiet_hours_hold_a_reminder_to_the_working_morning(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    # Monday 21 June, 08:30: the 1-day reminder falls on Sunday and the 2-hour one at 06:30;
    # both wait for 08:00, and only the later goes.
    schedule(db, clock, "2021-06-21T08:30")
    set_clock(clock, "2021-06-14T08:30")
    await tick(app)
    set_clock(clock, "2021-06-20T08:30")
    await tick(app)
    set_clock(clock, "2021-06-21T07:59")
    await tick(app)
    assert meeting_reminders(emulator) == ["Board meeting in 7 days"]
    set_clock(clock, "2021-06-21T08:00")
    await tick(app)
    assert meeting_reminders(emulator) == ["Board meeting in 7 days", "Board meeting in 30 minutes"]


def meeting_reminders(emulator: BotApiEmulator, person: str = "chair") -> list[str]:
    """The headlines of the meeting reminders a person has had."""
    return [
        text.split("</b>")[0].removeprefix("📅 <b>")
        for text in texts(emulator, person)
        if text.startswith("📅 <b>Board meeting")
    ]


async def test_downtime_sends_what_still_makes_sense_and_expires_the_rest(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    soon = schedule(db, clock, "2021-06-24T10:00")
    gone = schedule(db, clock, "2021-06-15T10:00", title="Extraordinary board meeting")
    # The bot was down from 10 June until the evening of 23 June.
    set_clock(clock, "2021-06-23T18:00")
    await tick(app)
    meeting_texts = [text for text in texts(emulator, "chair") if "Board meeting" in text]
    assert meeting_texts == [meeting_texts[0]]  # one message, not one per missed reminder
    assert "Board meeting tomorrow at 10:00" in meeting_texts[0]
    by_meeting = {}
    for entry in outbox(db, ReminderKind.MEETING):
        if entry.member_id == people["chair"].id and entry.subject_id in (soon.id, gone.id):
            by_meeting[(entry.subject_id, entry.occurrence.split("/")[-1])] = entry.state
    assert by_meeting == {
        (soon.id, "7d"): OutboxState.SUPERSEDED,
        (soon.id, "1d"): OutboxState.SENT,
        (gone.id, "7d"): OutboxState.EXPIRED,
        (gone.id, "1d"): OutboxState.EXPIRED,
        (gone.id, "2h"): OutboxState.EXPIRED,
    }
