"""Annual deadlines: /deadlines, adding one from the command line, reminders before each."""

from __future__ import annotations

import pytest
from sqlmodel import select

from csp_bot.bot.cli import main
from csp_bot.bot.emulator import BotApiEmulator
from csp_bot.handlers.context import CspApplication
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from csp_bot.models.tables import Deadline
from tests.harness import PEOPLE, Harness
from tests.reminder_helpers import set_clock, texts, tick
from tests.test_cli import env, run_cli  # noqa: F401  (the command-line test setup)


async def test_deadlines_lists_the_coming_year_marking_the_members_own(
    bot: Harness, people: dict[str, MemberView]
) -> None:
    [shown] = await bot.send(PEOPLE["observer"].user, "/deadlines")
    text = shown.plain_text
    assert text.startswith("Deadlines in the coming year\n\nPartner contributions confirmed\n")
    assert "Mon 31 Jan 2022 (in 235 days), every year" in text
    assert "⭐" not in text.split("\n\n")[1]  # EMAS is not a responsible partner
    [police] = await bot.send(PEOPLE["police"].user, "/deadlines")
    assert "⭐ Partner contributions confirmed" in police.plain_text
    assert "⭐ concerns Northants Police." in police.plain_text


async def test_members_of_the_organisations_concerned_are_reminded(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    # 1 January 2022 is a Saturday and 3 January the New Year bank holiday in lieu.
    set_clock(clock, "2022-01-04T07:59")
    await tick(app)
    set_clock(clock, "2022-01-04T08:00")
    await tick(app)
    for person in ("coordinator", "chair", "board", "police"):
        deadline = [t for t in texts(emulator, person) if t.startswith("⏰")]
        assert deadline == [
            "⏰ <b>Deadline in 27 days: Partner contributions confirmed</b>\n"
            "Due Mon 31 Jan 2022 (every year)\n"
            "Each partner confirms its contributions to MAPPA, the IPV pooled fund, E-Cins and "
            "DHRs for the next financial year.\n"
            "For: NHS Northamptonshire Clinical Commissioning Group, North Northamptonshire "
            "Council, Northamptonshire Fire and Rescue Service, Northants Police, Police, Fire "
            "and Crime Commissioner for Northamptonshire, Probation Service\n\n"
            "/deadlines lists what is coming."
        ]
    assert not any(t.startswith("⏰") for t in texts(emulator, "observer"))


def titles(db: Database) -> list[str]:
    return sorted(db.call(lambda s: s.exec(select(Deadline.title)).all()))


@pytest.mark.usefixtures("env", "plan")
def test_a_yearly_deadline_added_from_the_command_line(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    adding = ["deadline", "add", "--title", "Strategic assessment", "--date", "2022-11-30"]
    code = main([*adding, "--yearly", "--org", "Police", "--org", "nnc"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Strategic assessment, 30 Nov 2022, every year" in out
    assert "for: North Northamptonshire Council, Northants Police" in out
    assert "Strategic assessment" in titles(db)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ([], "A deadline needs a date (e.g. 2027-01-31)."),
        (["--date", "31st"], "I can't read “31st” as a date"),
        (["--date", "2022-11-30", "--org", "Acme"], "unknown organisation 'Acme'"),
        (["--date", "2022-11-30", "--title", "Financial year starts"], "already a deadline called"),
    ],
)
@pytest.mark.usefixtures("env", "plan")
def test_a_bad_deadline_is_refused_and_nothing_stored(
    db: Database, capsys: pytest.CaptureFixture[str], args: list[str], problem: str
) -> None:
    before = titles(db)
    title = [] if "--title" in args else ["--title", "Strategic assessment"]
    code = main(["deadline", "add", *title, *args])
    err = capsys.readouterr().err
    assert code == 2 and problem in err
    assert titles(db) == before
