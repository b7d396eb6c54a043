"""The one dialogue engine: a crash between reading an answer and replying, and what happens
to an open dialogue when another one or another command comes (end to end)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlmodel import select

from csp_bot.bot.emulator import BotApiEmulator, SentMessage
from csp_bot.bot.settings import Settings
from csp_bot.handlers import dialogue
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.dialogue import load_draft
from csp_bot.models.membership import MemberView
from csp_bot.models.tables import Meeting, ProgressUpdate
from tests.harness import PEOPLE, Harness, build_test_application
from tests.test_progress import current, data_for, labels

POLICE = PEOPLE["police"].user
CHAIR = PEOPLE["chair"].user
EXPIRED = "That button has expired. Send the command again."
NOTE = "Citadel pilot delayed by staff shortage"


class Died(BaseException):
    """The process dying: not an error the bot could catch and report."""


@contextmanager
def dies_before_replying(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The bot dies after the step's transaction has committed and before anything of its
    reply reaches Telegram; the inbox then hands the same update over again."""

    async def die(*args: object, **kwargs: object) -> None:
        raise Died

    with monkeypatch.context() as patch:
        patch.setattr(dialogue, "show", die)
        with pytest.raises(Died):
            yield


def updates(db: Database) -> list[ProgressUpdate]:
    return list(db.call(lambda s: s.exec(select(ProgressUpdate)).all()))


def meetings(db: Database) -> list[Meeting]:
    return list(db.call(lambda s: s.exec(select(Meeting)).all()))


def last(emulator: BotApiEmulator, user: object) -> SentMessage:
    return emulator.messages(user.id)[-1]  # type: ignore[attr-defined]


# --- a crash between the answer and the reply ---------------------------------------------


async def test_update_note_read_then_crash_replayed_shows_the_stored_step_once(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [ask_note] = await bot.send(POLICE, "/update SOC-1 amber")
    note = emulator.build_message_update(POLICE, NOTE)
    with dies_before_replying(monkeypatch):
        await bot.process(note)
    # The step was committed with the answer, before anything was sent.
    stored = db.call(load_draft, user_id=POLICE.id, at=clock()).draft
    assert stored is not None and (stored.step, stored.values["note"]) == ("forecast", NOTE)
    assert labels(emulator, current(emulator, ask_note)) == ["Cancel"]  # nothing was shown
    [ask_forecast] = await bot.process(note)  # the inbox replays it: the stored reply
    assert "will it recover by the due date" in ask_forecast.text
    assert emulator.buttons(current(emulator, ask_note)) == []
    assert await bot.process(note) == []  # replayed once more: shown already, nothing new
    [done] = await bot.press(POLICE, ask_forecast, data_for(emulator, ask_forecast, "Yes"))
    assert done.text.startswith("Stored:\n<b>SOC-1</b>") and f"Note: {NOTE}" in done.text
    assert [(u.note, u.forecast) for u in updates(db)] == [
        (NOTE, "Expected to recover by the due date")
    ]


async def test_update_last_press_then_crash_stores_once_and_confirms_on_replay(
    bot: Harness,
    db: Database,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [ask] = await bot.send(POLICE, f"/update SOC-1 amber {NOTE}")
    press = emulator.build_callback_update(POLICE, ask.message_id, data_for(emulator, ask, "No"))
    with dies_before_replying(monkeypatch):
        await bot.process(press)
    assert len(updates(db)) == 1  # stored by the transaction that read the press
    [confirmation] = await bot.process(press)
    assert confirmation.text.startswith("Stored:\n<b>SOC-1</b>")
    assert current(emulator, ask).text == "Forecast: No, it will be late"
    assert await bot.process(press) == []
    assert len(updates(db)) == 1
    assert await bot.press(POLICE, ask, data_for(emulator, ask, "No")) == []
    assert emulator.callback_answers[-1]["text"] == EXPIRED


async def test_update_press_then_crash_the_next_button_is_valid(
    bot: Harness,
    db: Database,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [picker] = await bot.send(POLICE, "/update")
    press = emulator.build_callback_update(
        POLICE, picker.message_id, data_for(emulator, picker, "🟢 SOC-1")
    )
    with dies_before_replying(monkeypatch):
        await bot.process(press)
    await bot.process(press)  # replayed: the status question replaces the picker
    assert "<b>What is its status?</b>" in current(emulator, picker).text
    await bot.press(POLICE, picker, data_for(emulator, current(emulator, picker), "✅"))
    assert (await bot.reply(POLICE, "All done")).startswith("Stored:")
    assert [u.note for u in updates(db)] == ["All done"]


async def test_meeting_answer_then_crash_is_taken_once(
    bot: Harness,
    db: Database,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = len(meetings(db))
    await bot.send(CHAIR, "/meeting")
    await bot.send(CHAIR, "Extraordinary board")
    when = emulator.build_message_update(CHAIR, "9/12/2021 14:00")
    with dies_before_replying(monkeypatch):
        await bot.process(when)
    [where] = await bot.process(when)  # replayed: the next question, from the stored state
    assert "(3 of 4)" in where.text
    assert await bot.process(when) == []  # not taken again as the location
    agenda = await bot.send(CHAIR, "Kettering")
    assert "(4 of 4)" in agenda[0].text
    await bot.press(CHAIR, agenda[0], data_for(emulator, agenda[0], "Skip"))
    summary = current(emulator, agenda[0])
    assert "<b>Schedule this meeting?</b>" in summary.text
    save = emulator.build_callback_update(
        CHAIR, summary.message_id, data_for(emulator, summary, "💾 Save")
    )
    with dies_before_replying(monkeypatch):
        await bot.process(save)
    assert len(meetings(db)) == before + 1  # scheduled by the transaction that read the press
    [done] = await bot.process(save)
    assert done.text.startswith("📅 Scheduled: <b>Extraordinary board</b>, Thu 9 Dec 2021, 14:00")
    assert await bot.process(save) == []
    [meeting] = meetings(db)[before:]
    assert (meeting.title, meeting.location) == ("Extraordinary board", "Kettering")


async def test_a_reply_telegram_refused_is_sent_when_the_update_comes_again(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    from tests.test_honest_replies import FailingSends

    sends = FailingSends(emulator)
    app = build_test_application(settings, db, clock, emulator, request=sends)
    await app.initialize()
    bot = Harness(app, emulator)
    await bot.send(CHAIR, "/decide")
    for typed in ("ipv", "police", "2023/24"):
        await bot.send(CHAIR, typed)
    amount = emulator.build_message_update(CHAIR, "10000")
    sends.failures = 12  # the question and the "saved" notice both fail, every try
    await bot.process(amount)
    [status] = await bot.process(amount)  # handled again: the question, taken once
    assert "agreed" in labels(emulator, status)
    await bot.press(CHAIR, status, data_for(emulator, status, "agreed"))
    [summary] = await bot.send(CHAIR, "Subject to the precept")
    assert "IPV, Northants Police, 2023/24\n£10,000.00, agreed" in summary.plain_text
    await app.shutdown()


# --- replacing or interrupting an open dialogue ----------------------------------------------


async def held_by_another_update(bot: Harness) -> tuple[SentMessage, SentMessage]:
    [ask_forecast] = await bot.send(CHAIR, f"/update soc-1 amber {NOTE}")
    [offer] = await bot.send(CHAIR, "/update HATE-1 done")
    return ask_forecast, offer


async def test_a_typed_note_is_not_dropped_by_another_update(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    ask_forecast, offer = await held_by_another_update(bot)
    assert offer.plain_text == (
        "✋ Your update on SOC-1 isn't stored yet.\n"
        "Still to answer: the forecast.\n"
        f"Your note: “{NOTE}”\n\n"
        "Finish it first, or discard it and go on with /update HATE-1 done?"
    )
    assert labels(emulator, offer) == ["↩️ Finish it first", "🗑 Discard it, go on with /update"]
    assert updates(db) == []
    [again] = await bot.press(CHAIR, offer, data_for(emulator, offer, "↩️"))
    assert current(emulator, offer).text == (
        "↩️ Finishing your update on SOC-1 first. Send /update HATE-1 done again when it is done."
    )
    assert (
        again.text == ask_forecast.text and emulator.buttons(current(emulator, ask_forecast)) == []
    )
    [done] = await bot.press(CHAIR, again, data_for(emulator, again, "Yes"))
    assert done.text.startswith("Stored:\n<b>SOC-1</b>")
    assert [(u.note, u.status.value) for u in updates(db)] == [(NOTE, "amber")]


async def test_discarding_the_open_update_goes_on_with_the_new_one(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    ask_forecast, offer = await held_by_another_update(bot)
    await bot.press(CHAIR, offer, data_for(emulator, offer, "🗑"))
    assert current(emulator, offer).text == (
        "<b>HATE-1</b>: ✅ complete\n\nType a short note on progress (up to 1,000 characters)."
    )
    assert current(emulator, ask_forecast).text == (
        "🗑 Discarded your update on SOC-1. Nothing was stored."
    )
    assert await bot.press(CHAIR, ask_forecast, "u:f:yes") == []
    assert emulator.callback_answers[-1]["text"] == EXPIRED
    assert (await bot.reply(CHAIR, "Reporting centre open")).startswith("Stored:\n<b>HATE-1</b>")
    assert [u.note for u in updates(db)] == ["Reporting centre open"]


async def test_typing_while_the_choice_is_open_asks_for_a_tap(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    await held_by_another_update(bot)
    assert await bot.reply(CHAIR, "yes") == (
        "Please tap one of the buttons above first: finish your update on SOC-1,"
        " or discard it and go on."
    )


async def test_a_meeting_during_an_update_and_an_update_during_a_meeting(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    await bot.send(CHAIR, "/update SOC-1 green")
    await bot.send(CHAIR, "Provider on site")  # stored at once: nothing open
    [ask_forecast] = await bot.send(CHAIR, f"/update SOC-3 red {NOTE}")
    [offer] = await bot.send(CHAIR, "/meeting")
    assert offer.plain_text.startswith("✋ Your update on SOC-3 isn't stored yet.")
    assert "Still to answer: what is being done about it." in offer.plain_text
    await bot.press(CHAIR, offer, data_for(emulator, offer, "🗑"))
    assert "<b>New board meeting</b> (1 of 4)" in current(emulator, offer).text
    await bot.send(CHAIR, "Extraordinary board")
    [offer] = await bot.send(CHAIR, "/update")
    assert offer.plain_text.startswith(
        "✋ Your new board meeting isn't stored yet.\nAnswered so far: 1 of 4 questions."
    )
    assert [u.note for u in updates(db)] == ["Provider on site"]
    assert emulator.buttons(current(emulator, ask_forecast)) == []


async def test_replacing_a_dialogue_with_nothing_typed_says_it_was_closed(
    bot: Harness, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [picker] = await bot.send(CHAIR, "/update")
    [first] = await bot.send(CHAIR, "/meeting")
    assert "<b>New board meeting</b> (1 of 4)" in first.text
    assert current(emulator, picker).text == (
        "⏹ Your update was closed when you sent /meeting. Nothing was stored."
    )
    assert await bot.press(CHAIR, picker, data_for(emulator, picker, "🟢 SOC-1")) == []
    assert emulator.callback_answers[-1]["text"] == EXPIRED


async def test_another_command_puts_a_typed_note_on_hold(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [ask_mitigation] = await bot.send(POLICE, f"/update SOC-1 red {NOTE}")
    my = await bot.reply(POLICE, "/my")
    assert my.startswith("<b>Northants Police: your actions</b>")
    held = current(emulator, ask_mitigation)
    assert held.plain_text.startswith(
        "⏸ Your update on SOC-1 is on hold while you use /my. It isn't stored yet."
    )
    assert labels(emulator, held) == ["▶️ Carry on", "🗑 Discard"]
    assert (await bot.reply(POLICE, "Re-procuring")).startswith("Your update on SOC-1 is on hold.")
    await bot.press(POLICE, held, data_for(emulator, held, "▶️"))
    assert "Type the mitigation" in current(emulator, ask_mitigation).text
    [ask_forecast] = await bot.send(POLICE, "Re-procuring through the PFCC framework")
    await bot.press(POLICE, ask_forecast, data_for(emulator, ask_forecast, "Not sure"))
    [stored] = updates(db)
    assert (stored.note, stored.mitigation) == (NOTE, "Re-procuring through the PFCC framework")


async def test_a_dialogue_on_hold_can_be_discarded(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [ask_mitigation] = await bot.send(POLICE, f"/update SOC-1 red {NOTE}")
    await bot.send(POLICE, "/status")
    held = current(emulator, ask_mitigation)
    await bot.press(POLICE, held, data_for(emulator, held, "🗑"))
    assert current(emulator, ask_mitigation).text == (
        "🗑 Discarded your update on SOC-1. Nothing was stored."
    )
    assert (
        await bot.reply(POLICE, "anything")
        == "I didn't understand that. Send /help for the commands you can use."
    )
    assert updates(db) == []


async def test_a_new_dialogue_says_the_one_before_ran_out_of_time(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    [ask_mitigation] = await bot.send(POLICE, f"/update SOC-1 red {NOTE}")
    clock.advance(minutes=16)
    expired, stored = await bot.send(POLICE, "/update SOC-1 green fine now")
    assert expired.text == (
        "Your update on SOC-1 expired after 15 minutes without a reply, so nothing was"
        " stored. Send /update to start again."
    )
    assert stored.text.startswith("Stored:\n<b>SOC-1</b>")
    assert emulator.buttons(current(emulator, ask_mitigation)) == []
    assert [update.note for update in updates(db)] == ["fine now"]


async def test_the_expiry_is_one_setting_for_every_dialogue(
    settings: Settings,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    longer = settings.model_copy(update={"dialogue_minutes": 30})
    app = build_test_application(longer, db, clock, emulator)
    await app.initialize()
    bot = Harness(app, emulator)
    await bot.send(CHAIR, "/meeting")
    clock.advance(minutes=29)
    assert "(2 of 4)" in await bot.reply(CHAIR, "Board")
    clock.advance(minutes=31)
    assert await bot.reply(CHAIR, "9/12/2021 14:00") == (
        "Your new board meeting expired after 30 minutes without a reply, so nothing was"
        " stored. Send /meeting to start again."
    )
    await app.shutdown()


async def test_discard_and_go_on_handled_again_after_a_crash_is_taken_once(
    bot: Harness,
    db: Database,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ask_forecast, offer = await held_by_another_update(bot)
    go_on = emulator.build_callback_update(CHAIR, offer.message_id, data_for(emulator, offer, "🗑"))
    with dies_before_replying(monkeypatch):
        await bot.process(go_on)
    assert await bot.process(go_on) == []  # replayed: the offer turns into the next question
    assert "<b>HATE-1</b>: ✅ complete" in current(emulator, offer).text
    assert current(emulator, ask_forecast).text.startswith("🗑 Discarded your update on SOC-1.")
    await bot.process(go_on)
    assert (await bot.reply(CHAIR, "Reporting centre open")).startswith("Stored:\n<b>HATE-1</b>")
    assert [u.note for u in updates(db)] == ["Reporting centre open"]


async def test_the_engines_own_buttons_are_checked_on_press(
    bot: Harness, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    _, offer = await held_by_another_update(bot)
    await bot.press(CHAIR, offer, "dg:zz")
    assert (
        emulator.callback_answers[-1]["text"] == "That button has expired. Send the command again."
    )
    await bot.press(CHAIR, offer, data_for(emulator, offer, "↩️"))
    assert await bot.press(CHAIR, offer, "dg:go") == []  # the choice was made already
    assert emulator.callback_answers[-1]["text"] == EXPIRED


async def test_cancel_pressed_then_crash_is_answered_once_on_replay(
    bot: Harness,
    db: Database,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [ask] = await bot.send(POLICE, f"/update SOC-1 amber {NOTE}")
    cancel = emulator.build_callback_update(POLICE, ask.message_id, "u:x")
    with dies_before_replying(monkeypatch):
        await bot.process(cancel)
    [cancelled] = await bot.process(cancel)
    assert cancelled.text == "Cancelled your update on SOC-1. Nothing was stored."
    assert await bot.process(cancel) == []
    assert emulator.buttons(current(emulator, ask)) == []
    assert updates(db) == []
