"""The small things a partner or the chair meets in daily use, each as they see it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import col, select

from csp_bot.bot.emulator import BotApiEmulator
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.enums import Status
from csp_bot.models.membership import MemberView
from csp_bot.models.tables import Meeting, ProgressUpdate
from tests.harness import PEOPLE, Harness
from tests.test_cli import env, run_cli  # noqa: F401  (the command-line test setup)
from tests.test_meetings import data_of, labels
from tests.test_progress import current, pick
from tests.test_summary import log

CHAIR = PEOPLE["chair"].user
BOARD = PEOPLE["board"].user
POLICE = PEOPLE["police"].user
OBSERVER = PEOPLE["observer"].user


def stored_updates(db: Database) -> list[ProgressUpdate]:
    return list(db.call(lambda s: s.exec(select(ProgressUpdate)).all()))


async def test_refusals_name_the_role_with_the_right_article(
    bot: Harness, people: dict[str, MemberView]
) -> None:
    text = await bot.reply(OBSERVER, "/decide")
    assert text.startswith("Sorry, /decide isn't available to an observer.")
    assert "to a partner." in await bot.reply(POLICE, "/decide")


async def test_my_offers_update_only_to_those_who_may(
    bot: Harness, people: dict[str, MemberView]
) -> None:
    assert (await bot.reply(POLICE, "/my")).endswith("Send /update to report progress.")
    board = await bot.reply(BOARD, "/my")
    assert "Probation Service" in board and "/update" not in board


async def test_deadlines_legend_only_with_a_star(
    bot: Harness, people: dict[str, MemberView]
) -> None:
    for user in (OBSERVER, CHAIR, POLICE):
        text = await bot.reply(user, "/deadlines")
        assert ("⭐ concerns" in text) == ("⭐ <b>" in text), text
        assert text.endswith("Members of the organisations concerned are reminded before each.")


async def test_reminder_toggles_fit_the_role(
    bot: Harness, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    def toggles(message: object) -> list[str]:
        return [label[2:] for label in labels(emulator, message) if label[:1] in "🔔🔕"]  # type: ignore[arg-type]

    [board] = await bot.send(BOARD, "/reminders")
    assert toggles(board) == ["Board meetings", "Annual deadlines"]
    assert "Requests for updates" not in board.text
    [observer] = await bot.send(OBSERVER, "/reminders")
    assert toggles(observer) == ["Annual deadlines"]
    [police] = await bot.send(POLICE, "/reminders")
    assert "Requests for updates" in toggles(police)


async def test_a_reference_typed_at_the_action_picker_is_taken(
    bot: Harness, people: dict[str, MemberView]
) -> None:
    [picker] = await bot.send(POLICE, "/update")
    assert "SOC-1" in str(picker.reply_markup)
    asked = await bot.reply(POLICE, "soc-1")
    assert "<b>SOC-1</b>" in asked and "Now:" in asked
    assert "Please choose with the buttons" not in asked


async def test_meeting_time_errors_say_what_is_missing_and_stay_short(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    [first] = await bot.send(CHAIR, "/meeting")
    await bot.press(CHAIR, first, data_of(bot.emulator, first, "North Northants CSP Board"))
    [no_time] = await bot.send(CHAIR, "20/10/2021")
    assert no_time.plain_text == (
        "⚠️ “20/10/2021” has no time: type the time too, e.g. 20/10/2021 14:00.\n"
        "Please type it again, or send /cancel."
    )
    [gap] = await bot.send(CHAIR, "27/03/2022  01:30")
    assert gap.plain_text.startswith(
        "⚠️ “27/03/2022 01:30” does not exist in Europe/London (clocks go forward):"
        " pick another time."
    )
    [unread] = await bot.send(CHAIR, "next Thursday")
    assert "(2 of 4)" not in unread.text and "“next Thursday”" in unread.text
    assert "(3 of 4)" in await bot.reply(CHAIR, "20/10/2021 14:00")


async def test_decide_errors_do_not_repeat_the_question(
    bot: Harness, people: dict[str, MemberView]
) -> None:
    [first] = await bot.send(CHAIR, "/decide")
    await bot.press(CHAIR, first, data_of(bot.emulator, first, "MAPPA"))
    partner = bot.emulator.messages(CHAIR.id)[-1]
    await bot.press(CHAIR, partner, data_of(bot.emulator, partner, "NNC"))
    year = bot.emulator.messages(CHAIR.id)[-1]
    await bot.press(CHAIR, year, data_of(bot.emulator, year, "2022/23"))
    [problem] = await bot.send(CHAIR, "lots")
    assert problem.plain_text.count("\n") == 1 and "“lots” is not an amount of money" in (
        problem.plain_text
    )


async def test_a_steady_update_reads_as_still(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    log(db, clock, people["police"], "SOC-1", Status.GREEN, "Provider on site")
    stored = await bot.reply(POLICE, "/update SOC-1 on track Second week going well")
    assert "🟢 still on track\n" in stored and "(was on track)" not in stored


async def test_history_pages_fit_telegrams_limit_and_lose_no_note(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    notes = [f"Note {number}: " + "partnership working " * 44 for number in range(1, 7)]
    for note in notes:
        clock.advance(days=1)
        log(db, clock, people["police"], "SOC-1", Status.GREEN, note.strip())
    [page] = await bot.send(BOARD, "/history SOC-1")
    seen = [page.plain_text]
    while "Next ›" in labels(emulator, current(emulator, page)):
        await pick(bot, BOARD, current(emulator, page), "Next ›")
        seen.append(current(emulator, page).plain_text)
    assert all(len(text) <= 4096 for text in seen) and len(seen) > 1
    assert all(any(note.strip() in text for text in seen) for note in notes)


async def test_an_edited_message_is_answered_and_stores_nothing(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    await bot.send(POLICE, "/update SOC-1 on track Provider on site")
    assert len(stored_updates(db)) == 1
    update = emulator.build_message_update(POLICE, "/update SOC-1 on track Provider on site!")
    message = update.pop("message")
    update["edited_message"] = message | {"edit_date": message["date"]}  # type: ignore[operator]
    [reply] = await bot.process(update)
    assert reply.text == (
        "Edits are not taken: the message as first sent is what counts."
        " To change a stored update, send /undo and update again."
    )
    assert len(stored_updates(db)) == 1


async def test_a_note_of_invisible_characters_is_refused(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    reply = await bot.reply(POLICE, "/update SOC-1 on track \u200b \u2060\ufeff")
    assert "The note is empty." in reply
    assert stored_updates(db) == []


def test_report_without_a_plan_says_how_to_load_one(
    env: str,  # noqa: F811
    db: Database,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, err = run_cli(capsys, "report")
    assert code == 2 and out == ""
    assert "no plan is loaded" in err and "csp-bot plan import" in err
    assert list(tmp_path.glob("board-paper-*")) == []
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    monkeypatch.setenv("CSPBOT_DATABASE_URL", f"sqlite:///{fresh / 'csp-bot.db'}")
    code, _, err = run_cli(capsys, "report", "--out", str(fresh / "paper.html"))
    assert code == 2 and "no plan is loaded" in err
    assert list(fresh.iterdir()) == []  # no new empty database, no paper


@pytest.mark.usefixtures("env", "plan")
def test_meeting_add_takes_several_agenda_items(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["meeting", "add", "--title", "Board", "--at", "2099-12-10T14:00"]
    code, _, _ = run_cli(capsys, *args, "--agenda", "Item one", "Item two", "--agenda", "AOB")
    assert code == 0
    [meeting] = db.call(lambda s: s.exec(select(Meeting).order_by(col(Meeting.id))).all())[-1:]
    assert meeting.agenda.splitlines() == ["Item one", "Item two", "AOB"]
