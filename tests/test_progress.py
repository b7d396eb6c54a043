"""Partners log progress; everyone asks where things stand (end to end)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlmodel import col, select

from csp_bot.bot.emulator import BotApiEmulator, SentMessage
from csp_bot.bot.settings import Settings
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.enums import Status
from csp_bot.models.membership import MemberView
from csp_bot.models.progress import log_progress
from csp_bot.models.tables import Action, AuditEntry, ProgressUpdate
from tests.conftest import link as link_group
from tests.harness import PEOPLE, Harness, build_test_application

POLICE = PEOPLE["police"].user
CHAIR = PEOPLE["chair"].user
BOARD = PEOPLE["board"].user
OBSERVER = PEOPLE["observer"].user


def stored_updates(db: Database) -> list[ProgressUpdate]:
    return list(
        db.call(lambda s: s.exec(select(ProgressUpdate).order_by(col(ProgressUpdate.id))).all())
    )


def action_status(db: Database, ref: str) -> Status:
    return db.call(lambda s: s.exec(select(Action).where(Action.ref == ref)).one().status)


def labels(emulator: BotApiEmulator, message: SentMessage) -> list[str]:
    return [label for label, _ in emulator.buttons(message)]


def data_for(emulator: BotApiEmulator, message: SentMessage, label_start: str) -> str:
    return next(data for label, data in emulator.buttons(message) if label.startswith(label_start))


async def pick(bot: Harness, user: object, message: SentMessage, label_start: str) -> None:
    await bot.press(user, message, data_for(bot.emulator, message, label_start))  # type: ignore[arg-type]


def current(emulator: BotApiEmulator, message: SentMessage) -> SentMessage:
    """The message as it is now, after any edits."""
    return next(m for m in emulator.messages(message.chat_id) if m.message_id == message.message_id)


# --- /my ------------------------------------------------------------------------------------


async def test_my_lists_the_organisations_actions_with_flags(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    clock.advance(days=30)
    db.call(
        log_progress,
        ref="SOC-1",
        member_id=people["police"].id,
        status=Status.GREEN,
        note="Provider on site",
        at=clock(),
    )
    clock.advance(days=150)  # 7 Jan 2022: SOC-3 (due 31 Oct 2021) is overdue
    text = await bot.reply(POLICE, "/my")
    assert text.startswith("<b>Northants Police: your actions</b>")
    assert "🟢 <b>SOC-1</b> Run the #Citadel pilot in William Knibb ward, Kettering" in text
    assert "on track · due Thu 31 Mar 2022 · last update Sat 10 Jul 2021" in text
    soc3 = text[text.index("<b>SOC-3</b>") :]
    flags = "\n    ⚠️ overdue\n    💤 no update for 28+ days"
    assert "off track · due Sun 31 Oct 2021 · no update yet" + flags in soc3
    assert "SOC-2" not in text  # led by the homelessness service


# --- the guided update ----------------------------------------------------------------------


async def test_guided_update_on_track(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [picker] = await bot.send(POLICE, "/update")
    assert picker.text == "<b>Which action are you updating?</b>"
    assert labels(emulator, picker)[0] == "🟢 SOC-1 Run the #Citadel pilot in William Knibb…"
    assert labels(emulator, picker)[-1] == "Cancel"
    await pick(bot, POLICE, picker, "🟢 SOC-1")
    status_step = current(emulator, picker)
    assert "<b>What is its status?</b>" in status_step.text
    assert labels(emulator, status_step) == [
        "🟢 on track",
        "🟠 at risk",
        "🔴 off track",
        "✅ complete",
        "Cancel",
    ]
    await pick(bot, POLICE, status_step, "🟢")
    assert "Type a short note on progress" in current(emulator, picker).text
    [confirmation] = await bot.send(POLICE, "Provider on site two days a week")
    assert confirmation.text.startswith("Stored:\n<b>SOC-1</b> Run the #Citadel pilot")
    assert "🟢 still on track\n" in confirmation.text
    assert "Note: Provider on site two days a week" in confirmation.text
    assert "Thu 10 Jun 2021, 10:00, Dan" in confirmation.text
    assert emulator.buttons(current(emulator, picker)) == []  # old buttons are gone
    [update] = stored_updates(db)
    assert (update.status, update.note, update.member_id) == (
        Status.GREEN,
        "Provider on site two days a week",
        people["police"].id,
    )


async def test_off_track_asks_for_mitigation_and_forecast(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [picker] = await bot.send(POLICE, "/update")
    await pick(bot, POLICE, picker, "🟢 SOC-1")
    await pick(bot, POLICE, current(emulator, picker), "🔴")
    [ask_mitigation] = await bot.send(POLICE, "Provider pulled out")
    assert "is off track." in ask_mitigation.text and "Type the mitigation" in ask_mitigation.text
    [ask_forecast] = await bot.send(POLICE, "Re-procuring through the PFCC framework")
    assert ask_forecast.text == "<b>SOC-1</b>: will it recover by the due date (Thu 31 Mar 2022)?"
    assert labels(emulator, ask_forecast) == [
        "Yes, by the due date",
        "No, it will be late",
        "Not sure yet",
        "Cancel",
    ]
    assert emulator.buttons(current(emulator, ask_mitigation)) == []
    [confirmation] = await bot.press(POLICE, ask_forecast, data_for(emulator, ask_forecast, "No"))
    assert "🔴 off track (was on track) – worsening" in confirmation.text
    assert "Mitigation: Re-procuring through the PFCC framework" in confirmation.text
    assert "Forecast: Not expected to recover by the due date" in confirmation.text
    assert current(emulator, ask_forecast).text == "Forecast: No, it will be late"
    [update] = stored_updates(db)
    assert (update.mitigation, update.forecast) == (
        "Re-procuring through the PFCC framework",
        "Not expected to recover by the due date",
    )
    assert action_status(db, "SOC-1") == Status.RED


async def test_at_risk_asks_for_a_forecast_only(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [picker] = await bot.send(POLICE, "/update")
    await pick(bot, POLICE, picker, "🔴 SOC-3")
    await pick(bot, POLICE, current(emulator, picker), "🟠")
    [ask_forecast] = await bot.send(POLICE, "EMAS signed; KGH still to sign")
    [confirmation] = await bot.press(POLICE, ask_forecast, data_for(emulator, ask_forecast, "Yes"))
    assert "🟠 at risk (was off track) – improving" in confirmation.text
    assert stored_updates(db)[0].mitigation is None


async def test_pressing_an_old_button_twice_does_nothing(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [picker] = await bot.send(POLICE, "/update")
    await pick(bot, POLICE, picker, "🟢 SOC-1")
    await pick(bot, POLICE, current(emulator, picker), "✅")
    await bot.send(POLICE, "Done and dusted")
    sent = await bot.press(POLICE, picker, "u:s:complete")
    assert sent == []
    assert (
        emulator.callback_answers[-1]["text"] == "That button has expired. Send the command again."
    )
    assert len(stored_updates(db)) == 1


async def test_action_picker_pages_past_eight(
    bot: Harness, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [picker] = await bot.send(CHAIR, "/update")  # the chair may update all 17 actions
    assert picker.text == "<b>Which action are you updating?</b> (page 1 of 3)"
    assert len([label for label in labels(emulator, picker) if "-" in label]) == 8
    await pick(bot, CHAIR, picker, "Next ›")
    page_two = current(emulator, picker)
    assert "(page 2 of 3)" in page_two.text
    assert labels(emulator, page_two)[-3:] == ["‹ Previous", "Next ›", "Cancel"]


@pytest.mark.parametrize("step", ["action", "status", "note"])
async def test_cancel_button_at_any_step_stores_nothing(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView], step: str
) -> None:
    [picker] = await bot.send(POLICE, "/update")
    if step != "action":
        await pick(bot, POLICE, picker, "🟢 SOC-1")
    if step == "note":
        await pick(bot, POLICE, current(emulator, picker), "🟠")
    [reply] = await bot.press(POLICE, current(emulator, picker), "u:x")
    assert reply.text.startswith("Cancelled") and reply.text.endswith("Nothing was stored.")
    assert emulator.buttons(current(emulator, picker)) == []
    assert stored_updates(db) == []
    assert (
        await bot.reply(POLICE, "some text")
        == "I didn't understand that. Send /help for the commands you can use."
    )


async def test_cancel_command_stores_nothing(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [picker] = await bot.send(POLICE, "/update")
    await pick(bot, POLICE, picker, "🟢 SOC-1")
    await pick(bot, POLICE, current(emulator, picker), "🔴")
    await bot.send(POLICE, "Provider pulled out")
    assert (
        await bot.reply(POLICE, "/cancel") == "Cancelled your update on SOC-1. Nothing was stored."
    )
    assert stored_updates(db) == []
    assert await bot.reply(POLICE, "/cancel") == "There's nothing to cancel."


async def test_a_conversation_left_for_15_minutes_expires(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    [picker] = await bot.send(POLICE, "/update")
    await pick(bot, POLICE, picker, "🟢 SOC-1")
    await pick(bot, POLICE, current(emulator, picker), "🟢")
    clock.advance(minutes=15, seconds=1)
    text = await bot.reply(POLICE, "All good")
    assert text == (
        "Your update on SOC-1 expired after 15 minutes without a reply, so nothing was stored."
        " Send /update to start again."
    )
    assert stored_updates(db) == []


async def test_restart_mid_update_carries_on(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    first = build_test_application(settings, db, clock, emulator)
    await first.initialize()
    bot = Harness(first, emulator)
    [picker] = await bot.send(POLICE, "/update")
    await pick(bot, POLICE, picker, "🟢 SOC-1")
    await pick(bot, POLICE, current(emulator, picker), "🟠")
    await first.shutdown()  # the bot restarts between the status and the note

    second = build_test_application(settings, db, clock, emulator)
    await second.initialize()
    bot = Harness(second, emulator)
    [ask_forecast] = await bot.send(POLICE, "Waiting for the provider's start date")
    [confirmation] = await bot.press(
        POLICE, ask_forecast, data_for(emulator, ask_forecast, "Not sure")
    )
    await second.shutdown()
    assert "🟠 at risk (was on track)" in confirmation.text
    assert stored_updates(db)[0].note == "Waiting for the provider's start date"


# --- the one-line form ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "status"),
    [
        ("soc-1 on track all good", Status.GREEN),
        ("SOC-1 green all good", Status.GREEN),
        ("Soc-1 complete all good", Status.COMPLETE),
        ("soc-1 DONE all good", Status.COMPLETE),
    ],
)
async def test_one_line_update(
    bot: Harness, db: Database, people: dict[str, MemberView], typed: str, status: Status
) -> None:
    text = await bot.reply(POLICE, f"/update {typed}")
    assert text.startswith("Stored:\n<b>SOC-1</b>")
    assert "Note: all good" in text
    assert stored_updates(db)[0].status == status


async def test_one_line_amber_asks_for_the_forecast(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [ask] = await bot.send(
        POLICE, "/update SOC-1 at risk waiting for the treatment provider's start date"
    )
    assert "will it recover by the due date" in ask.text
    [done] = await bot.press(POLICE, ask, data_for(emulator, ask, "Yes"))
    assert "Note: waiting for the treatment provider&#39;s start date" in done.text
    assert stored_updates(db)[0].note == "waiting for the treatment provider's start date"


async def test_one_line_red_asks_for_mitigation(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [ask] = await bot.send(POLICE, "/update soc-1 off track provider pulled out")
    assert "Type the mitigation" in ask.text
    [forecast] = await bot.send(POLICE, "Re-procuring")
    await bot.press(POLICE, forecast, data_for(emulator, forecast, "No"))
    assert stored_updates(db)[0].mitigation == "Re-procuring"


async def test_telegram_delivering_the_same_update_twice_stores_one(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    update = emulator.build_message_update(POLICE, "/update SOC-1 green on track")
    first = await bot.process(update)
    again = await bot.process(update)
    assert len(stored_updates(db)) == 1
    assert first[0].text.startswith("Stored:")
    assert again[0].text.startswith("That update was already stored:")


# --- undo -------------------------------------------------------------------------------------


async def test_undo_within_15_minutes(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    await bot.send(POLICE, "/update SOC-1 complete finished early")
    clock.advance(minutes=14)
    text = await bot.reply(POLICE, "/undo")
    assert text.startswith(
        "Taken back: your update on <b>SOC-1</b> (complete, Thu 10 Jun 2021, 10:00)."
    )
    assert "SOC-1 is now 🟢 on track." in text
    assert action_status(db, "SOC-1") == Status.GREEN
    [update] = stored_updates(db)
    assert update.withdrawn_at is not None
    trail = db.call(
        lambda s: s.exec(
            select(AuditEntry)
            .where(AuditEntry.entity == "progress_update")
            .order_by(col(AuditEntry.id))
        ).all()
    )
    assert [entry.change for entry in trail] == ["created", "updated"]
    assert (
        await bot.reply(POLICE, "/undo") == "You have no update from the last 15 minutes to undo."
    )


async def test_undo_after_15_minutes_is_refused(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    await bot.send(POLICE, "/update SOC-1 complete finished early")
    clock.advance(minutes=16)
    assert (
        await bot.reply(POLICE, "/undo") == "You have no update from the last 15 minutes to undo."
    )
    assert action_status(db, "SOC-1") == Status.COMPLETE


# --- reading ----------------------------------------------------------------------------------


async def log_many(db: Database, clock: FakeClock, member: MemberView, count: int) -> None:
    for number in range(1, count + 1):
        clock.advance(days=1)
        status = Status.AMBER if number % 2 else Status.GREEN
        db.call(
            log_progress,
            ref="SOC-1",
            member_id=member.id,
            status=status,
            note=f"Update {number}",
            at=clock(),
        )


async def test_action_shows_the_last_five_updates(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    await log_many(db, clock, people["police"], 7)
    [sent] = await bot.send(OBSERVER, "/action soc-1")
    text = sent.text
    assert text.startswith("🟠 <b>SOC-1</b> Run the #Citadel pilot")
    assert "Lead organisation: Northants Police" in text
    assert "Owner: Inspector, Kettering Neighbourhood Policing" in text
    assert "Due: Thu 31 Mar 2022" in text
    assert "Status: at risk since Thu 17 Jun 2021" in text
    assert "<b>Latest updates</b> (5 of 7)" in text
    assert "🟠 Thu 17 Jun 2021, 10:00, Dan: at risk (worsening)\nUpdate 7" in text
    assert "Update 3" in text and "Update 2" not in text
    assert labels(emulator, sent) == ["Full history"]


async def test_history_pages_through_every_update(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    await log_many(db, clock, people["police"], 7)
    [page] = await bot.send(BOARD, "/history SOC-1")
    assert page.text.startswith("<b>SOC-1: history</b> (7 updates, page 1 of 2)")
    assert "Update 7" in page.text and "Update 2" not in page.text
    await pick(bot, BOARD, page, "Next ›")
    second = current(emulator, page)
    assert "page 2 of 2" in second.text
    assert "Update 2" in second.text and "Update 1" in second.text and "Update 3" not in second.text


async def test_status_counts_each_priority(
    bot: Harness, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    clock.advance(days=150)
    text = await bot.reply(OBSERVER, "/status")
    assert text.startswith("<b>Plan status</b> at Sun 7 Nov 2021, 09:00")
    soc = text[text.index("<b>SOC</b>") : text.index("<b>DASV</b>")]
    assert "🔴 1 · 🟠 1 · 🟢 2 · ✅ 0 · ⚪ 1" in soc
    assert "⚠️ 3 overdue · 💤 5 with no update for 28+ days" in soc


async def test_priority_lists_its_actions(bot: Harness, people: dict[str, MemberView]) -> None:
    text = await bot.reply(BOARD, "/priority hate")
    assert text.startswith("<b>HATE: Hate crime</b>")
    assert "<b>HATE-1</b>" in text and "<b>HATE-2</b>" in text and "SOC-1" not in text
    assert (
        await bot.reply(BOARD, "/priority XYZ")
        == "No priority XYZ. The priorities are SOC, DASV, HATE, ASB."
    )


# --- rules --------------------------------------------------------------------------------------


async def test_partner_may_not_update_another_organisations_action(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    text = await bot.reply(POLICE, "/update SOC-2 green fine")
    assert text.startswith("Sorry, you can't update that action. SOC-2 is led by")
    assert (
        "Partners can update only their own organisation's actions (Northants Police)."
        in text.replace("&#39;", "'")
    )
    assert stored_updates(db) == []


async def test_chair_may_update_any_action(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    assert (await bot.reply(CHAIR, "/update SOC-2 complete housed")).startswith("Stored:")


@pytest.mark.parametrize("user", [BOARD, OBSERVER], ids=["board", "observer"])
async def test_board_and_observers_read_only(
    bot: Harness, db: Database, people: dict[str, MemberView], user: object
) -> None:
    text = await bot.reply(user, "/update SOC-1 green fine")  # type: ignore[arg-type]
    assert "isn't available to" in text
    assert stored_updates(db) == []


async def test_group_gets_read_commands_and_a_link_for_updates(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    link_group(db, clock, -500)
    status = await bot.send(CHAIR, "/status", chat_id=-500, chat_type="group")
    assert status[0].text.startswith("<b>Plan status</b>")
    assert (await bot.send(CHAIR, "/action SOC-1", chat_id=-500, chat_type="group"))[
        0
    ].text.startswith("🟢 <b>SOC-1</b>")
    assert (await bot.send(CHAIR, "/priority SOC", chat_id=-500, chat_type="group"))[
        0
    ].text.startswith("<b>SOC:")
    [link] = await bot.send(POLICE, "/update", chat_id=-500, chat_type="group")
    assert "private chat" in link.text
    assert emulator.buttons(link) == [
        ("Update in a private chat", "https://t.me/csp_demo_bot?start=update")
    ]
    [picker] = await bot.send(POLICE, "/start update")
    assert picker.text == "<b>Which action are you updating?</b>"


async def test_every_update_writes_the_audit_trail(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    await bot.send(POLICE, "/update SOC-1 complete finished")
    trail = db.call(
        lambda s: s.exec(
            select(AuditEntry)
            .where(col(AuditEntry.member_id) == people["police"].id)
            .order_by(col(AuditEntry.id))
        ).all()
    )
    action_change = next(entry for entry in trail if entry.entity == "action")
    assert action_change.before is not None and action_change.after is not None
    assert (action_change.before["status"], action_change.after["status"]) == ("green", "complete")


async def test_two_partners_updating_at_once_both_land_in_order(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    first = emulator.build_message_update(CHAIR, "/update SOC-1 complete from the chair")
    second = emulator.build_message_update(POLICE, "/update SOC-1 green from the police")
    await asyncio.gather(bot.process(first), bot.process(second))
    updates = stored_updates(db)
    assert sorted(update.note for update in updates) == ["from the chair", "from the police"]
    # Each update saw the status the one before it left: nothing lost, nothing interleaved.
    assert updates[1].previous_status == updates[0].status
    assert action_status(db, "SOC-1") == updates[1].status


async def test_forged_callback_data_is_refused_and_logged(
    bot: Harness,
    db: Database,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    caplog: pytest.LogCaptureFixture,
) -> None:
    [picker] = await bot.send(POLICE, "/update")
    with caplog.at_level(logging.WARNING):
        await bot.press(POLICE, picker, "u:a:SOC-2")  # not Northants Police's action
        await bot.press(POLICE, picker, "u:zz:1")
    answers = [answer["text"] for answer in emulator.callback_answers[-2:]]
    assert answers[0].startswith("SOC-2 is led by")
    assert answers[1] == "That button has expired. Send the command again."
    assert "refused update button for SOC-2" in caplog.text
    assert "refused callback data 'u:zz:1'" in caplog.text
    assert stored_updates(db) == []


async def test_callback_data_stays_within_64_bytes(
    bot: Harness, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [picker] = await bot.send(CHAIR, "/update")
    assert all(len(data.encode()) <= 64 for _, data in emulator.buttons(picker))


async def test_long_replies_are_split_on_line_boundaries(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    for number in range(6):
        clock.advance(hours=1)
        db.call(
            log_progress,
            ref="SOC-1",
            member_id=people["police"].id,
            status=Status.GREEN,
            note=f"{number} " + "x" * 990,
            at=clock(),
        )
    sent = await bot.send(BOARD, "/action SOC-1")
    assert len(sent) == 2
    assert all(len(message.text) <= 4096 for message in sent)
    assert not sent[1].text.startswith("x")
    # Every part as the bot sends all it writes: HTML, and no link previews.
    assert [(message.parse_mode, message.link_previews) for message in sent] == [
        ("HTML", False),
        ("HTML", False),
    ]
    assert sent[0].plain_text.startswith("🟢 SOC-1")


# --- bad input ----------------------------------------------------------------------------------


async def test_unknown_reference_offers_the_closest(
    bot: Harness, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [reply] = await bot.send(BOARD, "/action SOC-9")
    assert reply.text == "No action SOC-9. Did you mean one of these?"
    offered = labels(emulator, reply)
    assert offered and all(label.startswith("SOC-") for label in offered)
    [shown] = await bot.press(BOARD, reply, emulator.buttons(reply)[0][1])
    assert shown.text.startswith(f"{shown.text[0]} <b>{offered[0]}</b>")


async def test_unknown_reference_in_an_update_offers_buttons_that_continue(
    bot: Harness, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [reply] = await bot.send(POLICE, "/update SOC-9 green fine")
    assert reply.text.startswith("No action SOC-9.")
    await pick(bot, POLICE, reply, "SOC-5")
    assert "<b>What is its status?</b>" in current(emulator, reply).text


async def test_unknown_status_word_lists_the_valid_ones(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    text = await bot.reply(POLICE, "/update SOC-1 purple fine")
    assert (
        "I don't know the status “purple”. Use one of: on track, at risk, off track, complete"
        in text
    )
    assert stored_updates(db) == []


async def test_empty_note_is_asked_again(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [ask] = await bot.send(POLICE, "/update SOC-1 green")
    assert "Type a short note on progress" in ask.text and "empty" not in ask.text
    [again] = await bot.send(POLICE, "   ")
    assert "The note is empty." in again.text
    assert (await bot.reply(POLICE, "fine now")).startswith("Stored:")


async def test_note_over_1000_characters_is_refused(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    await bot.send(POLICE, "/update SOC-1 green")
    text = await bot.reply(POLICE, "y" * 1001)
    assert "A note can be at most 1,000 characters; yours has 1,001." in text
    assert stored_updates(db) == []


async def test_html_in_a_note_shows_exactly_as_typed(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    typed = "<b>not bold</b> & <script>x</script> 5 > 3"
    [sent] = await bot.send(POLICE, f"/update SOC-1 green {typed}")
    assert f"Note: {typed}" in sent.plain_text
    assert stored_updates(db)[0].note == typed


async def test_files_during_the_flow_are_refused(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    await bot.send(POLICE, "/update SOC-1 green")
    photo = emulator.build_photo_update(POLICE, content=b"\x89PNG")
    [reply] = await bot.process(photo)
    assert reply.text.startswith("I only take text, never photos or files")
    document = emulator.build_document_update(POLICE, "case.pdf", b"%PDF")
    [reply] = await bot.process(document)
    assert "E-Cins" in reply.text
    assert stored_updates(db) == []


async def test_undo_in_either_order_leaves_the_status_of_the_live_updates(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    from csp_bot.models.progress import undo_last_update

    police, chair = people["police"].id, people["chair"].id
    db.call(log_progress, ref="SOC-1", member_id=police, status=Status.AMBER, note="a", at=clock())
    first = clock()
    clock.advance(minutes=1)
    db.call(log_progress, ref="SOC-1", member_id=police, status=Status.RED, note="b", at=clock())
    clock.advance(minutes=1)
    db.call(
        log_progress, ref="SOC-1", member_id=chair, status=Status.COMPLETE, note="c", at=clock()
    )
    db.call(undo_last_update, member_id=police, at=clock())  # not the latest: complete stands
    assert action_status(db, "SOC-1") == Status.COMPLETE
    db.call(undo_last_update, member_id=chair, at=clock())  # the red one is withdrawn already
    action = db.call(lambda s: s.exec(select(Action).where(Action.ref == "SOC-1")).one())
    assert (action.status, action.status_at) == (Status.AMBER, first)
    db.call(undo_last_update, member_id=police, at=clock())  # no live update: the plan's status
    assert action_status(db, "SOC-1") == Status.GREEN


async def test_overdue_turns_at_midnight_in_the_uk_not_in_utc(
    bot: Harness, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    from datetime import UTC, datetime

    clock.now = datetime(2021, 9, 30, 22, 30, tzinfo=UTC)  # 23:30 BST on the due date
    assert "overdue" not in await bot.reply(OBSERVER, "/action SOC-2")
    clock.now = datetime(2021, 9, 30, 23, 30, tzinfo=UTC)  # 00:30 BST the day after
    assert "Due: Thu 30 Sep 2021 ⚠️ overdue" in await bot.reply(OBSERVER, "/action SOC-2")


async def test_starting_a_form_closes_an_open_update(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [picker] = await bot.send(CHAIR, "/update")
    await bot.send(CHAIR, "/meeting")
    assert emulator.buttons(current(emulator, picker)) == []
    assert await bot.press(CHAIR, picker, data_for(emulator, picker, "🟢 SOC-1")) == []
    assert (
        emulator.callback_answers[-1]["text"] == "That button has expired. Send the command again."
    )
