"""Dates outside the years 2000 to 2100 are refused wherever they are typed, nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from csp_bot.bot.cli import main
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from csp_bot.models.plan_checks import PlanError
from csp_bot.models.plan_import import import_plan_file
from csp_bot.models.tables import Deadline, Meeting
from tests.harness import PEOPLE, Harness
from tests.test_cli import env, run_cli  # noqa: F401  (the command-line test setup)
from tests.test_plan_import import (
    AT,
    LATER,
    MINIMAL,
    edit,
    line_of,
    row_counts,
    write,
)

CHAIR = PEOPLE["chair"].user


def titles(db: Database) -> list[str]:
    return sorted(db.call(lambda s: s.exec(select(Deadline.title)).all()))


def meeting_count(db: Database) -> int:
    return len(db.call(lambda s: s.exec(select(Meeting.id)).all()))


@pytest.mark.parametrize(
    ("date", "problem"),
    [
        (
            "9999-12-31",
            "csp-bot: 9999-12-31 is outside the years 2000 to 2100: please check the date.",
        ),
        (
            "1999-12-31",
            "csp-bot: 1999-12-31 is outside the years 2000 to 2100: please check the date.",
        ),
        (
            "31/12/2101",
            "csp-bot: 31/12/2101 is outside the years 2000 to 2100: please check the date.",
        ),
    ],
)
@pytest.mark.usefixtures("env", "plan")
def test_the_command_line_refuses_a_deadline_out_of_range(
    db: Database, capsys: pytest.CaptureFixture[str], date: str, problem: str
) -> None:
    before = titles(db)
    code, _, err = run_cli(
        capsys, "deadline", "add", "--title", "X", "--date", date, "--org", "all"
    )
    assert (code, err.strip()) == (2, problem)
    assert titles(db) == before


@pytest.mark.usefixtures("env", "plan")
def test_the_command_line_accepts_the_last_day_of_2100(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["deadline", "add", "--title", "X", "--date", "2100-12-31", "--org", "all"])
    assert code == 0 and "added deadline" in capsys.readouterr().out
    assert "X" in titles(db)


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        (
            "9999-12-31T10:00",
            "csp-bot: 9999-12-31T10:00 is outside the years 2000 to 2100: please check the date.",
        ),
        (
            "31/12/2101 10:00",
            "csp-bot: 31/12/2101 is outside the years 2000 to 2100: please check the date.",
        ),
    ],
)
@pytest.mark.usefixtures("env", "plan")
def test_the_command_line_refuses_a_meeting_out_of_range(
    db: Database, capsys: pytest.CaptureFixture[str], when: str, problem: str
) -> None:
    before = meeting_count(db)
    code, _, err = run_cli(capsys, "meeting", "add", "--title", "Board", "--at", when)
    assert (code, err.strip()) == (2, problem)
    assert meeting_count(db) == before


PLAN_DATES = {
    "action due": (
        "        due: 2021-09-30",
        "        due: 2101-01-01",
        "priorities[0].actions[0].due: 2101-01-01 is outside the years 2000 to 2100",
    ),
    "meeting": (
        "    at: 2021-05-20T10:00",
        "    at: 2101-05-20T10:00",
        "meetings[0].at: 2101-05-20T10:00 is outside the years 2000 to 2100",
    ),
    "deadline": (
        "    date: 2022-01-31",
        "    date: 1999-01-31",
        "deadlines[0].date: 1999-01-31 is outside the years 2000 to 2100",
    ),
    "financial year": (
        "        year: 2021/22",
        "        year: 2101/02",
        "funding_streams[0].contributions[0].year: 2101/02 is outside the years 2000 to 2100",
    ),
}


@pytest.mark.parametrize(("old", "new", "reason"), PLAN_DATES.values(), ids=PLAN_DATES.keys())
def test_a_plan_file_with_a_date_out_of_range_is_refused_whole(
    db: Database, tmp_path: Path, old: str, new: str, reason: str
) -> None:
    db.call(import_plan_file, path=MINIMAL, at=AT)
    counts = row_counts(db)
    content = edit(MINIMAL.read_text(), (old, new))
    path = write(tmp_path, content, "bad.yaml")
    with pytest.raises(PlanError) as caught:
        db.call(import_plan_file, path=path, at=LATER)
    assert caught.value.errors == [f"{path}:{line_of(content, new)}: {reason}"]
    assert row_counts(db) == counts


async def test_the_meeting_form_refuses_a_date_in_2101_and_asks_again(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    before = meeting_count(db)
    await bot.send(CHAIR, "/meeting")
    await bot.send(CHAIR, "Extra board")
    [again] = await bot.send(CHAIR, "01/06/2101 10:00")
    assert "01/06/2101 is outside the years 2000 to 2100: please check the date." in again.text
    assert "(2 of 4)" not in again.text  # only what was wrong, not the question again
    [where] = await bot.send(CHAIR, "9/12/2021 14:00")
    assert "(3 of 4)" in where.text
    assert meeting_count(db) == before


async def test_funding_refuses_a_year_out_of_range(
    bot: Harness, people: dict[str, MemberView]
) -> None:
    [reply] = await bot.send(CHAIR, "/funding 2101")
    assert (
        "2101/02 is not a year the partnership can have funding for (from 2000/01 to 2031/32)."
        in reply.plain_text
    )
