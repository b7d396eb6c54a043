"""Reminders end to end: the dispatcher, the outbox and what members see, on a moved clock."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select
from telegram.error import NetworkError, TimedOut

from csp_bot.bot.app import build_application, reminder_rules, services_for
from csp_bot.bot.emulator import BotApiEmulator, EmulatorRequest
from csp_bot.bot.settings import Settings
from csp_bot.handlers import delivery as dispatch
from csp_bot.handlers.context import CspApplication
from csp_bot.handlers.delivery import dispatch_due
from csp_bot.handlers.jobs import DISPATCH_JOB, run_dispatcher_now
from csp_bot.models.audit import CLI
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.enums import Status
from csp_bot.models.meetings import cancel_meeting
from csp_bot.models.membership import MemberView
from csp_bot.models.progress import log_progress
from csp_bot.models.reminder_types import OutboxState, ReminderKind, Topic
from csp_bot.models.reminders import get_preferences, set_topic
from csp_bot.models.tables import MeetingReply, ProgressUpdate
from csp_bot.scheduler.pacing import InstantPacer
from csp_bot.scheduler.rounds import plan_reminders
from tests.conftest import START
from tests.harness import PEOPLE, Harness, no_wait
from tests.reminder_helpers import (
    chat,
    outbox,
    restarted,
    schedule,
    set_clock,
    states,
    texts,
    tick,
    uk,
)
from tests.test_cli import env, run_cli  # noqa: F401  (the command-line test setup)

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


# --- exactly once: crashes, restarts, Telegram's refusals --------------------------------------


class Crash(BaseException):
    """The process dying at a chosen instant (not an Exception: nothing may catch it)."""


def only_the_chair_is_invited(db: Database, people: dict[str, MemberView]) -> None:
    """Turn meeting reminders off for the others (and the police partner's requests for
    updates), so the chair's is the one reminder in flight."""
    for person in ("coordinator", "board"):
        db.call(set_topic, member_id=people[person].id, topic=Topic.MEETINGS, on=False, at=START)
    db.call(set_topic, member_id=people["police"].id, topic=Topic.CHECKINS, on=False, at=START)


async def crash_at(app: CspApplication, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    """Run the dispatcher and kill it at `step` (a function in `handlers.delivery`)."""
    real = getattr(dispatch, step)

    def die(session: Session, **values: Any) -> None:
        raise Crash(f"killed at {step}")

    monkeypatch.setattr(dispatch, step, die)
    with pytest.raises(Crash):
        await tick(app)
    # Whatever else the dead bot had running stops with it.
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    monkeypatch.setattr(dispatch, step, real)


async def test_a_crash_after_telegram_accepted_does_not_resend(
    app: CspApplication,
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only_the_chair_is_invited(db, people)
    schedule(db, clock, "2021-06-24T10:00")
    set_clock(clock, "2021-06-17T10:00")
    await crash_at(app, monkeypatch, "record_sent")  # Telegram has the message; we don't know
    assert meeting_reminders(emulator) == ["Board meeting in 7 days"]
    async with restarted(settings, db, clock, emulator) as again:
        await tick(again)
        clock.advance(minutes=15)
        await tick(again)
        assert meeting_reminders(emulator) == ["Board meeting in 7 days"]  # not sent twice
        chair_7d = f"{people['chair'].id}:7d"
        assert states(db, ReminderKind.MEETING)[chair_7d] == OutboxState.UNCONFIRMED
        set_clock(clock, "2021-06-23T10:00")  # nothing lost: the next one comes as usual
        await tick(again)
    assert meeting_reminders(emulator) == [
        "Board meeting in 7 days",
        "Board meeting tomorrow at 10:00",
    ]


async def test_a_crash_mid_round_leaves_unknown_only_the_reminder_sent_last(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each claim records the reminders sent before it, in the claim's own transaction.
    db.call(set_topic, member_id=people["police"].id, topic=Topic.CHECKINS, on=False, at=START)
    monkeypatch.setattr(dispatch, "IN_FLIGHT", 1)  # one reminder after another: a known order
    schedule(db, clock, "2021-06-24T10:00")
    set_clock(clock, "2021-06-17T10:00")
    await crash_at(app, monkeypatch, "record_sent")  # the round's last send, not yet recorded
    for person in ("chair", "coordinator", "board"):
        assert meeting_reminders(emulator, person) == ["Board meeting in 7 days"]
    in_7_days = [
        state for key, state in states(db, ReminderKind.MEETING).items() if key.endswith(":7d")
    ]
    assert Counter(in_7_days) == {
        OutboxState.SENT: 2,
        OutboxState.SENDING: 1,
    }


async def test_a_crash_before_sending_loses_nothing(
    app: CspApplication,
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only_the_chair_is_invited(db, people)
    schedule(db, clock, "2021-06-24T10:00")
    set_clock(clock, "2021-06-17T10:00")
    await crash_at(app, monkeypatch, "claim")  # its turn has come, not yet claimed
    assert meeting_reminders(emulator) == []
    async with restarted(settings, db, clock, emulator) as again:
        clock.advance(minutes=3)
        await tick(again)
        await tick(again)
    assert meeting_reminders(emulator) == ["Board meeting in 7 days"]


class FailingRequest(EmulatorRequest):
    """The emulator, but the first messages fail on the way with the given errors."""

    def __init__(self, emulator: BotApiEmulator, failures: list[Exception]) -> None:
        super().__init__(emulator)
        self.failures = failures

    async def do_request(
        self, url: str, method: str, *args: Any, **kwargs: Any
    ) -> tuple[int, bytes]:
        if url.endswith("/sendMessage") and self.failures:
            raise self.failures.pop(0)
        return await super().do_request(url, method, *args, **kwargs)


async def started(
    settings: Settings, db: Database, clock: FakeClock, request: EmulatorRequest
) -> CspApplication:
    """The bot with its own request class in front of the emulator."""
    services = services_for(settings, db=db, clock=clock, pacer=InstantPacer())
    application = build_application(
        services,
        token=request.emulator.token,
        request=request,
        updates_request=EmulatorRequest(request.emulator),
        sleep=no_wait,
    )
    await application.initialize()
    return application


async def test_a_timeout_is_in_doubt_and_not_resent_but_a_refused_connection_is_retried(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    only_the_chair_is_invited(db, people)
    schedule(db, clock, "2021-06-24T10:00")
    refused = NetworkError("httpx.ConnectError: connection refused")
    refused.__cause__ = httpx.ConnectError("refused")
    app = await started(settings, db, clock, FailingRequest(emulator, [refused, TimedOut()]))
    set_clock(clock, "2021-06-17T10:00")
    report = await tick(app)
    assert report.retried == 1  # the request never left: it goes again a minute later
    clock.advance(minutes=1)
    report = await tick(app)
    assert report.outcomes == {OutboxState.UNCONFIRMED: 1}  # it may have arrived: not resent
    clock.advance(minutes=1)
    await tick(app)
    assert meeting_reminders(emulator) == []
    assert states(db, ReminderKind.MEETING)[f"{people['chair'].id}:7d"] == OutboxState.UNCONFIRMED
    await app.shutdown()


class FloodedRequest(EmulatorRequest):
    """The emulator, but Telegram's flood control refuses the first `refusals` messages."""

    def __init__(self, emulator: BotApiEmulator, refusals: int) -> None:
        super().__init__(emulator)
        self.refusals = refusals

    async def do_request(
        self, url: str, method: str, *args: Any, **kwargs: Any
    ) -> tuple[int, bytes]:
        if url.endswith("/sendMessage") and self.refusals:
            self.refusals -= 1
            body = {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 5",
                "parameters": {"retry_after": 5},
            }
            return 429, json.dumps(body).encode()
        return await super().do_request(url, method, *args, **kwargs)


async def test_retry_after_is_honoured_and_the_message_goes_once(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    only_the_chair_is_invited(db, people)
    schedule(db, clock, "2021-06-24T10:00")
    app = await started(settings, db, clock, FloodedRequest(emulator, refusals=1))
    set_clock(clock, "2021-06-17T10:00")
    pacer = InstantPacer()
    report = await dispatch_due(app, pacer=pacer)
    assert report.retried == 1 and report.sent == 0
    assert pacer.paused_until == 5  # all sending waits the 5 seconds Telegram asked for
    clock.advance(seconds=4)
    assert (await dispatch_due(app, pacer=pacer)).sent == 0
    clock.advance(seconds=1)
    assert (await dispatch_due(app, pacer=pacer)).sent == 1
    assert meeting_reminders(emulator) == ["Board meeting in 7 days"]
    await app.shutdown()


async def test_a_member_who_blocked_the_bot_is_marked_and_the_coordinator_told(
    app: CspApplication,
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    schedule(db, clock, "2021-06-24T10:00")
    emulator.block(PEOPLE["board"].user.id)
    set_clock(clock, "2021-06-17T10:00")
    report = await tick(app)
    assert report.outcomes.get(OutboxState.UNDELIVERABLE) == 1
    assert db.call(get_preferences, member_id=people["board"].id).unreachable_since == clock()
    set_clock(clock, "2021-06-21T09:00")  # Monday: the digest names them
    await tick(app)
    digest = chat(emulator, "coordinator")[-1].text
    assert "Weekly digest" in digest
    assert (
        "<b>Members the bot cannot reach</b> (they have blocked it)\n• Priya, Probation Service"
        in digest
    )
    set_clock(clock, "2021-06-23T10:00")  # not tried again while blocked
    await tick(app)
    assert states(db, ReminderKind.MEETING)[f"{people['board'].id}:1d"] == OutboxState.UNDELIVERABLE
    emulator.block(PEOPLE["board"].user.id, blocked=False)
    await bot.send(PEOPLE["board"].user, "/help")  # writing to the bot shows they are back
    set_clock(clock, "2021-06-24T08:00")
    await tick(app)
    assert meeting_reminders(emulator, "board") == ["Board meeting in 2 hours"]


# --- actions: due, overdue, quiet; one-tap check-ins ---------------------------------------------


async def test_action_reminders_before_due_and_weekly_overdue_across_the_clock_change(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    # SOC-3 (Police) is due on Sunday 31 October 2021, the night the clocks went back.
    seen = []
    for moment in (
        "2021-10-25T07:59",  # Sunday's 7-day reminder waits for Monday 08:00 (BST)
        "2021-10-25T08:00",
        "2021-10-29T19:58",  # Saturday's 1-day reminder would be after the due day:
        "2021-10-29T19:59",  # it goes at the last working minute before (Friday, BST)
        "2021-11-01T08:59",
        "2021-11-01T09:00",  # overdue from the next morning (now GMT)
        "2021-11-08T09:00",  # and weekly while overdue
    ):
        set_clock(clock, moment)
        await tick(app)
        seen.append([t.split("</b>")[0] for t in texts(emulator, "police") if "SOC-3 is" in t])
    assert [len(entry) for entry in seen] == [0, 1, 1, 2, 2, 3, 4]
    assert seen[-1] == [
        "⏳ <b>SOC-3 is due in 6 days",
        "⏳ <b>SOC-3 is due in 2 days",
        "⚠️ <b>SOC-3 is overdue",
        "⚠️ <b>SOC-3 is overdue",
    ]


async def quiet_prompts(
    app: CspApplication, clock: FakeClock, emulator: BotApiEmulator
) -> list[str]:
    await tick(app)
    return [
        t.split("</b>")[0].removeprefix("💤 <b>")
        for t in texts(emulator, "police")
        if t.startswith("💤")
    ]


async def test_a_quiet_action_prompts_its_owner_and_one_tap_records_the_update(
    app: CspApplication,
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    # Imported on 10 June: no update for 28 days by Thursday 8 July, 10:00.
    clock.advance(days=28, seconds=-1)
    assert await quiet_prompts(app, clock, emulator) == []
    clock.advance(seconds=1)
    prompts = await quiet_prompts(app, clock, emulator)
    assert "SOC-1 has had no update for 28 days" in prompts
    soc1 = next(m for m in chat(emulator, "police") if "SOC-1 has had no update" in m.text)
    labels = [label for label, _ in emulator.buttons(soc1)]
    assert labels == [
        "🟢 on track",
        "🟠 at risk",
        "🔴 off track",
        "✅ complete",
        "💤 Snooze a week",
    ]
    action_id = emulator.buttons(soc1)[0][1].split(":")[1]
    replies = await bot.press(PEOPLE["police"].user, soc1, f"ck:{action_id}:g")
    assert replies[-1].text.startswith("Stored: <b>SOC-1</b> 🟢 still on track")
    pressed = next(m for m in chat(emulator, "police") if m.message_id == soc1.message_id)
    assert emulator.buttons(pressed) == []  # the prompt's buttons are gone
    updates = db.call(lambda s: s.exec(select(ProgressUpdate)).all())
    assert [(u.status.value, u.note) for u in updates] == [("green", "One-tap check-in: on track.")]


async def test_snoozing_a_check_in_asks_again_a_week_later(
    app: CspApplication,
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    clock.advance(days=28)
    await quiet_prompts(app, clock, emulator)
    soc3 = next(m for m in chat(emulator, "police") if "SOC-3 has had no update" in m.text)
    action_id = emulator.buttons(soc3)[0][1].split(":")[1]
    replies = await bot.press(PEOPLE["police"].user, soc3, f"ck:{action_id}:z")
    assert replies[-1].text == "💤 I'll ask about <b>SOC-3</b> again on Thu 15 Jul 2021."
    clock.advance(days=7, seconds=-60)
    assert (await quiet_prompts(app, clock, emulator)).count(
        "SOC-3 has had no update for 28 days"
    ) == 1
    clock.advance(seconds=60)
    assert (await quiet_prompts(app, clock, emulator)).count(
        "SOC-3 has had no update for 28 days"
    ) == 2


async def test_check_in_buttons_are_checked_again_on_press(
    app: CspApplication,
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock.advance(days=28)
    await quiet_prompts(app, clock, emulator)
    soc1 = next(m for m in chat(emulator, "police") if "SOC-1 has had no update" in m.text)
    forged = bot.emulator.build_callback_update(
        PEOPLE["police"].user, soc1.message_id, "ck:99999:g"
    )
    await bot.process(forged)
    assert (
        emulator.callback_answers[-1]["text"] == "That button has expired. Send the command again."
    )
    assert "refused callback data 'ck:99999:g'" in caplog.text
    # The observer may not update actions: the domain refuses, nothing is stored.
    action_id = emulator.buttons(soc1)[0][1].split(":")[1]
    sneaky = bot.emulator.build_callback_update(
        PEOPLE["observer"].user, soc1.message_id, f"ck:{action_id}:c", chat_id=soc1.chat_id
    )
    await bot.process(sneaky)
    assert db.call(lambda s: s.exec(select(ProgressUpdate)).all()) == []


# --- before a board meeting: returns --------------------------------------------------------------


async def test_owners_are_asked_for_returns_and_the_chair_gets_the_missing_list(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    schedule(db, clock, "2021-06-24T10:00")
    set_clock(clock, "2021-06-14T10:00")
    await tick(app)
    request = chat(emulator, "police")[-1].text
    assert request.startswith("📝 <b>Updates wanted for the board meeting in 10 days</b>")
    assert "no update since Thu 20 May 2021" in request
    assert "<b>SOC-1</b>" in request and "<b>SOC-3</b>" in request
    db.call(
        log_progress,
        ref="SOC-1",
        member_id=people["police"].id,
        status=Status.GREEN,
        note="Pilot running",
        at=uk("2021-06-15T10:00"),
    )
    set_clock(clock, "2021-06-21T10:00")
    await tick(app)
    second = chat(emulator, "police")[-1].text
    assert "in 3 days" in second and "<b>SOC-1</b>" not in second and "<b>SOC-3</b>" in second
    set_clock(clock, "2021-06-23T10:00")
    await tick(app)
    chair = [t for t in texts(emulator, "chair") if t.startswith("📋")]
    assert len(chair) == 1
    assert "• Northants Police: SOC-3, SOC-5, HATE-1" in chair[0]


# --- what members choose to receive ---------------------------------------------------------


async def test_reminders_command_turns_kinds_off_and_snoozes(
    app: CspApplication,
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    board = PEOPLE["board"].user
    shown = await bot.send(board, "/reminders")
    assert "🔔 Board meetings: on" in shown[0].text
    assert "Chair's weekly digest" not in shown[0].text  # not a board member's kind
    await bot.press(board, shown[0], "rm:t:meetings")
    assert "🔕 Board meetings: off" in chat(emulator, "board")[-1].text
    schedule(db, clock, "2021-06-24T10:00")
    set_clock(clock, "2021-06-17T10:00")
    await tick(app)
    assert meeting_reminders(emulator, "board") == []
    assert meeting_reminders(emulator, "chair") == ["Board meeting in 7 days"]
    await bot.press(board, chat(emulator, "board")[-1], "rm:t:meetings")  # back on
    chair = PEOPLE["chair"].user
    settings_message = (await bot.send(chair, "/reminders"))[0]
    await bot.press(chair, settings_message, "rm:s:7")
    assert "💤 Snoozed until Thu 24 Jun 2021, 10:00" in chat(emulator, "chair")[-1].text
    set_clock(clock, "2021-06-23T10:00")
    await tick(app)
    assert meeting_reminders(emulator, "chair") == ["Board meeting in 7 days"]  # held
    assert meeting_reminders(emulator, "board") == ["Board meeting tomorrow at 10:00"]
    forged = await bot.process(
        bot.emulator.build_callback_update(chair, settings_message.message_id, "rm:s:365")
    )
    assert (
        forged == []
        and emulator.callback_answers[-1]["text"]
        == "That button has expired. Send the command again."
    )


# --- subjects that change ------------------------------------------------------------------


async def test_a_reminder_whose_meeting_was_cancelled_is_dropped(
    app: CspApplication,
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    meeting = schedule(db, clock, "2021-06-24T10:00")
    set_clock(clock, "2021-06-17T10:00")
    db.call(plan_reminders, rules=reminder_rules(settings), now=clock())  # recorded, not yet sent
    db.call(cancel_meeting, meeting_id=meeting.id, at=clock(), actor=CLI)
    await tick(app)
    assert meeting_reminders(emulator) == []
    assert set(states(db, ReminderKind.MEETING).values()) >= {OutboxState.DROPPED}
    assert {e.state for e in outbox(db, ReminderKind.MEETING) if e.subject_id == meeting.id} == {
        OutboxState.DROPPED
    }


async def test_the_job_runs_every_minute_and_a_meeting_added_meanwhile_is_noticed(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    assert app.job_queue is not None
    [job] = app.job_queue.get_jobs_by_name(DISPATCH_JOB)
    assert job.job.trigger.interval.total_seconds() == 60
    await tick(app)
    schedule(db, clock, "2021-06-12T10:00")  # as `csp-bot meeting add` does, from outside
    clock.advance(minutes=1)
    await tick(app)
    assert meeting_reminders(emulator) == ["Board meeting in 2 days"]


async def test_the_chair_gets_a_digest_on_monday_morning(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    db.call(
        log_progress,
        ref="SOC-3",
        member_id=people["police"].id,
        status=Status.RED,
        note="Hospital data-sharing agreement stalled",
        at=uk("2021-06-16T11:00"),
    )
    schedule(db, clock, "2021-06-24T10:00")
    set_clock(clock, "2021-06-21T08:59")
    await tick(app)
    assert not any("Weekly digest" in text for text in texts(emulator, "chair"))
    set_clock(clock, "2021-06-21T09:00")
    await tick(app)
    [digest] = [m.plain_text for m in chat(emulator, "chair") if "Weekly digest" in m.text]
    assert digest.startswith(
        "📰 Weekly digest, week of Mon 21 Jun 2021\n\nWhat changed last week\n"
    )
    assert (
        "🔴 SOC-3 off track – Hospital data-sharing agreement stalled (Dan, Wed 16 Jun 2021)"
        in digest
    )
    assert "Due this week\n📅 North Northants CSP Board, Thu 24 Jun 2021, 10:00" in digest
    assert [t for t in texts(emulator, "coordinator") if "Weekly digest" in t]
    assert not [t for t in texts(emulator, "board") if "Weekly digest" in t]


@pytest.mark.usefixtures("env")
async def test_an_action_owned_by_a_member_reminds_them_instead_of_the_partners(
    app: CspApplication,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    capsys: pytest.CaptureFixture[str],
) -> None:
    board, chair = (str(PEOPLE[person].user.id) for person in ("board", "chair"))
    code, _, err = run_cli(capsys, "action", "owner", "soc-3", "--telegram-id", board)
    assert code == 2 and "Priya may not update SOC-3" in err
    code, out, _ = run_cli(capsys, "action", "owner", "soc-3", "--telegram-id", chair)
    assert (code, out.strip()) == (0, "SOC-3: reminders go to Sarah")
    set_clock(clock, "2021-10-25T08:00")
    await tick(app)
    assert any("SOC-3 is due" in text for text in texts(emulator, "chair"))
    assert not any("SOC-3 is due" in text for text in texts(emulator, "police"))


async def test_each_round_logs_the_minute_it_began_when_it_ends(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    caplog: pytest.LogCaptureFixture,
) -> None:
    schedule(db, clock, "2021-06-24T10:00")
    set_clock(clock, "2021-06-17T10:00")  # 09:00 UTC
    with caplog.at_level(logging.INFO, logger="csp_bot.handlers.jobs"):
        await run_dispatcher_now(app)
    assert meeting_reminders(emulator) == ["Board meeting in 7 days"]
    assert "reminder round of 2021-06-17 09:00: " in caplog.text
