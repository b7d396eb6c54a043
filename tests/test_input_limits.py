"""The one table of input limits (`models/limits.py`), applied by the chat forms and the
command line: a value over a limit, or with a control character, is refused with the limit
named; the form stays at its question, the command line exits 2, and nothing is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from csp_bot.bot.emulator import EmulatedUser
from csp_bot.models.audit import CLI
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView, create_invite
from csp_bot.models.plan_checks import PlanError
from csp_bot.models.plan_import import import_plan_file
from csp_bot.models.tables import DialogueDraft, Member, ProgressUpdate
from tests.harness import PEOPLE, Harness
from tests.test_cli import env, run_cli  # noqa: F401  (the command-line test setup)
from tests.test_forged_buttons import database_rows
from tests.test_plan_import import AT, LATER, MINIMAL, edit, line_of, write

pytestmark = pytest.mark.sqlite_only
CHAIR = PEOPLE["chair"].user
POLICE = PEOPLE["police"].user
TRY_AGAIN = "Please type it again, or send /cancel."


def stored(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row but the open form's own: what a refused answer must leave as it was."""
    rows = database_rows(db)
    del rows["dialogue_draft"]
    return rows


def step_of(db: Database, user: EmulatedUser) -> tuple[str, str]:
    """The dialogue the user has open and the step it waits at."""
    draft = db.call(lambda s: s.get(DialogueDraft, user.id))
    assert draft is not None
    return draft.dialogue, draft.step


async def refused(bot: Harness, db: Database, user: EmulatedUser, typed: str) -> str:
    """`user` types `typed` into the open form: the one reply, once it is clear that the
    form is at the same step and nothing was stored."""
    before, step = stored(db), step_of(db, user)
    [reply] = await bot.send(user, typed)
    assert stored(db) == before
    assert step_of(db, user) == step
    return reply.plain_text


async def meeting_at_step(bot: Harness, step: int) -> None:
    """The chair's /meeting form, answered up to question `step` of 4."""
    answers = ["Extra board", "9/12/2021 14:00", "Council Offices, Corby"][: step - 1]
    for typed in ["/meeting", *answers]:
        await bot.send(CHAIR, typed)


# --- /meeting -------------------------------------------------------------------------------


async def test_a_meeting_title_over_200_characters_is_refused_and_asked_again(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    await meeting_at_step(bot, 1)
    reply = await refused(bot, db, CHAIR, "T" * 201)
    assert reply == f"⚠️ A title can be at most 200 characters; yours has 201.\n{TRY_AGAIN}"
    assert "(2 of 4)" in await bot.reply(CHAIR, "T" * 200)


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("Board\x07", "A title can't contain control characters; yours has U+0007 at character 6."),
        ("\x1bBoard", "A title can't contain control characters; yours has U+001B at character 1."),
        # Python counts U+001F as a space: it is refused, not quietly made one.
        ("Bo\x1fard", "A title can't contain control characters; yours has U+001F at character 3."),
        ("Board\x85", "A title can't contain control characters; yours has U+0085 at character 6."),
    ],
)
async def test_a_meeting_title_with_a_control_character_is_refused(
    bot: Harness, db: Database, people: dict[str, MemberView], typed: str, problem: str
) -> None:
    await meeting_at_step(bot, 1)
    assert await refused(bot, db, CHAIR, typed) == f"⚠️ {problem}\n{TRY_AGAIN}"


async def test_a_tab_in_a_title_is_a_space(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    await meeting_at_step(bot, 1)
    assert "<b>Extra board</b> (2 of 4)" in await bot.reply(CHAIR, "Extra\tboard")


async def test_a_place_over_300_characters_is_refused(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    await meeting_at_step(bot, 3)
    reply = await refused(bot, db, CHAIR, "https://teams.example.org/" + "x" * 275)
    assert reply == f"⚠️ A place or link can be at most 300 characters; yours has 301.\n{TRY_AGAIN}"
    assert "(4 of 4)" in await bot.reply(CHAIR, "https://teams.example.org/" + "x" * 274)


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        (
            "Minutes\n" + "A" * 301,
            "An agenda item can be at most 300 characters; yours has 301.",
        ),
        (
            "\n".join(f"Item {number}" for number in range(1, 32)),
            "An agenda can have at most 30 items; yours has 31.",
        ),
        # U+000B ends a line to Python's splitlines(): it is refused, not made a new item.
        (
            "Minutes\nFunding\x0b2022/23",
            "An agenda item can't contain control characters; yours has U+000B at character 8.",
        ),
    ],
)
async def test_an_agenda_over_its_limits_is_refused(
    bot: Harness, db: Database, people: dict[str, MemberView], typed: str, problem: str
) -> None:
    await meeting_at_step(bot, 4)
    assert await refused(bot, db, CHAIR, typed) == f"⚠️ {problem}\n{TRY_AGAIN}"
    summary = await bot.reply(CHAIR, "- " + "A" * 300)  # the bullet is not the item's
    assert "Schedule this meeting?" in summary


# --- /update --------------------------------------------------------------------------------


async def test_a_note_with_a_control_character_is_refused_and_asked_again(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    await bot.send(POLICE, "/update SOC-1 green")
    reply = await refused(bot, db, POLICE, "Raid done\x00 next week")
    assert reply == (
        "SOC-1: 🟢 on track\n\n"
        "A note can't contain control characters; yours has U+0000 at character 10.\n\n"
        "Type a short note on progress (up to 1,000 characters)."
    )


async def test_a_note_keeps_its_lines_and_tabs(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    await bot.send(POLICE, "/update SOC-1 green")
    assert (await bot.reply(POLICE, "Done:\n\tthe raid\n\tthe review")).startswith("Stored:")
    [note] = db.call(lambda s: s.exec(select(ProgressUpdate.note)).all())
    assert note == "Done:\n\tthe raid\n\tthe review"


async def test_the_one_line_update_refuses_a_long_note_and_asks_for_it(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    before = stored(db)
    reply = await bot.reply(POLICE, "/update SOC-1 amber " + "n" * 1001)
    assert "A note can be at most 1,000 characters; yours has 1,001." in reply
    assert stored(db) == before
    assert step_of(db, POLICE) == ("update", "note")


async def test_a_mitigation_over_1000_characters_is_refused(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    await bot.send(POLICE, "/update SOC-1 red Raid called off")
    reply = await refused(bot, db, POLICE, "m" * 1001)
    assert reply == (
        "SOC-1 is off track.\n\n"
        "A mitigation can be at most 1,000 characters; yours has 1,001.\n\n"
        "What is being done about it? Type the mitigation."
    )


# --- /decide --------------------------------------------------------------------------------


async def decide_at(bot: Harness, step: str) -> None:
    """The chair's /decide form, answered up to the amount or the note."""
    answers = ["MAPPA", "Police", "2022/23"] + (["£5,000", "agreed"] if step == "note" else [])
    for typed in ["/decide", *answers]:
        await bot.send(CHAIR, typed)


async def test_an_amount_over_one_billion_pounds_is_refused(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    await decide_at(bot, "amount")
    reply = await refused(bot, db, CHAIR, "£1,000,000,000.01")
    assert reply == (
        "⚠️ An amount can be at most £1,000,000,000.00; yours is £1,000,000,000.01. "
        f"Please check it.\n{TRY_AGAIN}"
    )
    assert "(5 of 6)" in await bot.reply(CHAIR, "£1,000,000,000")


async def test_a_financial_year_past_2100_is_refused(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    for typed in ["/decide", "MAPPA", "Police"]:
        await bot.send(CHAIR, typed)
    reply = await refused(bot, db, CHAIR, "2101/02")
    assert reply == (
        "⚠️ 2101/02 is not a year the partnership can have funding for "
        f"(from 2000/01 to 2031/32).\n{TRY_AGAIN}"
    )


async def test_a_funding_note_over_1000_characters_is_refused(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    await decide_at(bot, "note")
    reply = await refused(bot, db, CHAIR, "s" * 1001)
    assert reply == f"⚠️ A note can be at most 1,000 characters; yours has 1,001.\n{TRY_AGAIN}"
    assert "Record this decision?" in await bot.reply(CHAIR, "s" * 1000)


async def test_a_funding_note_with_a_control_character_is_refused(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    await decide_at(bot, "note")
    reply = await refused(bot, db, CHAIR, "Subject to\x7f budget")
    assert reply == (
        "⚠️ A note can't contain control characters; yours has U+007F at character 11.\n" + TRY_AGAIN
    )


# --- names Telegram gives -------------------------------------------------------------------


async def test_a_telegram_name_over_120_characters_joins_cut_to_fit(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    invite = db.call(
        create_invite,
        organisation="Northants Police",
        role="partner",
        at=clock(),
        days=7,
        actor=CLI,
    )
    long_named = EmulatedUser(4242, "F" * 64, "L" * 64)  # Telegram's longest: 129 with the space
    await bot.send(long_named, f"/start {invite.code}")
    name = db.call(lambda s: s.exec(select(Member.name).where(Member.telegram_id == 4242)).one())
    assert name == "F" * 64 + " " + "L" * 55


# --- the command line -----------------------------------------------------------------------


MEMBER_ADD = ["member", "add", "--org", "police", "--role", "partner"]
MEETING_ADD = ["meeting", "add", "--at", "2099-12-09T14:00"]
DEADLINE_ADD = ["deadline", "add", "--date", "2022-01-31", "--org", "all"]
INVITE_CREATE = ["invite", "create", "--org", "police", "--role", "partner"]
CLI_REFUSALS = {
    "member name": (
        [*MEMBER_ADD, "--telegram-id", "77", "--name", "N" * 121],
        "csp-bot: A name can be at most 120 characters; yours has 121.",
    ),
    "member name, control character": (
        [*MEMBER_ADD, "--telegram-id", "77", "--name", "Ann\x08Lee"],
        "csp-bot: A name can't contain control characters; yours has U+0008 at character 4.",
    ),
    "Telegram id": (
        [*MEMBER_ADD, "--telegram-id", str(2**63), "--name", "Ann Lee"],
        "csp-bot: 9223372036854775808 is out of range for a Telegram id "
        "(the largest is 9,223,372,036,854,775,807).",
    ),
    "meeting title": (
        [*MEETING_ADD, "--title", "T" * 201],
        "csp-bot: A title can be at most 200 characters; yours has 201.",
    ),
    "meeting place": (
        [*MEETING_ADD, "--title", "Board", "--location", "P" * 301],
        "csp-bot: A place or link can be at most 300 characters; yours has 301.",
    ),
    "agenda item": (
        [*MEETING_ADD, "--title", "Board", "--agenda", "Minutes", "A" * 301],
        "csp-bot: An agenda item can be at most 300 characters; yours has 301.",
    ),
    "agenda item, control character": (
        [*MEETING_ADD, "--title", "Board", "--agenda", "Minutes\x1b[31m"],
        "csp-bot: An agenda item can't contain control characters; yours has U+001B at "
        "character 8.",
    ),
    "deadline title": (
        [*DEADLINE_ADD, "--title", "D" * 201],
        "csp-bot: A title can be at most 200 characters; yours has 201.",
    ),
    "deadline description": (
        [*DEADLINE_ADD, "--title", "Returns", "--description", "d" * 1001],
        "csp-bot: A description can be at most 1,000 characters; yours has 1,001.",
    ),
    "group title": (
        ["group", "link", "-1001234", "--audience", "board", "--title", "G" * 201],
        "csp-bot: A title can be at most 200 characters; yours has 201.",
    ),
    "chat id": (
        ["group", "link", str(-(2**63) - 1), "--audience", "board"],
        "csp-bot: -9223372036854775809 is out of range for a chat id "
        "(the largest is 9,223,372,036,854,775,807).",
    ),
    "record id": (
        ["meeting", "cancel", str(2**31)],
        "csp-bot: 2147483648 is out of range for an id (the largest is 2,147,483,647).",
    ),
    "invite past 2100": (
        [*INVITE_CREATE, "--days", "40000"],
        "csp-bot: an invite valid for 40,000 days would expire after 2100: give fewer days",
    ),
    "invite past any date": (
        [*INVITE_CREATE, "--days", str(10**10)],
        "csp-bot: an invite valid for 10,000,000,000 days would expire after 2100: give fewer days",
    ),
}


@pytest.mark.parametrize(("args", "problem"), CLI_REFUSALS.values(), ids=CLI_REFUSALS.keys())
@pytest.mark.usefixtures("env", "plan")
def test_the_command_line_refuses_what_is_over_a_limit_and_writes_nothing(
    db: Database, capsys: pytest.CaptureFixture[str], args: list[str], problem: str
) -> None:
    before = database_rows(db)
    code, out, err = run_cli(capsys, *args)
    assert (code, out, err) == (2, "", problem + "\n")
    assert database_rows(db) == before


@pytest.mark.usefixtures("env", "plan")
def test_the_command_line_takes_what_is_at_the_limits(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys, *MEMBER_ADD, "--telegram-id", str(2**63 - 1), "--name", "N" * 120
    )
    assert (code, out) == (0, f"registered {'N' * 120} (partner, Northants Police)\n")
    code, out, _ = run_cli(
        capsys, *MEETING_ADD, "--title", "T" * 200, "--location", "P" * 300, "--agenda", "A" * 300
    )
    assert code == 0 and f": {'T' * 200}, Wed 09 Dec 2099 14:00, {'P' * 300}\n" in out


# --- the plan file --------------------------------------------------------------------------


PLAN_REFUSALS = {
    "place": (
        "    location: Town Hall",
        "    location: " + "P" * 301,
        "meetings[0].location: can be at most 300 characters; this has 301",
    ),
    "agenda item": (
        "    agenda: [Welcome, Plan progress]",
        "    agenda: [Welcome, " + "A" * 301 + "]",
        "meetings[0].agenda[1]: can be at most 300 characters; this has 301",
    ),
    "agenda": (
        "    agenda: [Welcome, Plan progress]",
        "    agenda: [" + ", ".join(f"Item {n}" for n in range(1, 32)) + "]",
        "meetings[0].agenda: can have at most 30 items; this has 31",
    ),
    "title over 200": (
        "  - title: CSP Board",
        "  - title: " + "T" * 201,
        "meetings[0].title: can be at most 200 characters; this has 201",
    ),
    # The file itself holds no control character: YAML's escape writes one into the value.
    "control character as an escape": (
        "  - title: CSP Board",
        '  - title: "CSP\\x07 Board"',
        "meetings[0].title: a control character (U+0007): plans are plain text",
    ),
}


@pytest.mark.parametrize(("old", "new", "reason"), PLAN_REFUSALS.values(), ids=PLAN_REFUSALS.keys())
def test_a_plan_file_over_a_limit_is_refused_whole(
    db: Database, tmp_path: Path, old: str, new: str, reason: str
) -> None:
    db.call(import_plan_file, path=MINIMAL, at=AT)
    before = database_rows(db)
    content = edit(MINIMAL.read_text(), (old, new))
    path = write(tmp_path, content, "bad.yaml")
    with pytest.raises(PlanError) as caught:
        db.call(import_plan_file, path=path, at=LATER)
    assert caught.value.errors == [f"{path}:{line_of(content, new)}: {reason}"]
    assert database_rows(db) == before
