""" "Since" is when the status last changed, not when the action was last reported on:
/action, /summary, the board paper and the CSV all say so."""

from __future__ import annotations

import csv
import io

from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.enums import Status
from csp_bot.models.membership import MemberView
from csp_bot.models.progress import undo_last_update
from tests.harness import PEOPLE, Harness
from tests.test_summary import at, log, section, summary_section

CHAIR = PEOPLE["chair"].user
POLICE = PEOPLE["police"].user


def seed(db: Database, clock: FakeClock, people: dict[str, MemberView]) -> None:
    """SOC-3 moves from the plan's off track to at risk on 1 Sep, then stays at risk."""
    police = people["police"]
    at(clock, "2021-09-01")
    log(db, clock, police, "SOC-3", Status.AMBER, "EMAS signed; KGH still to sign")
    at(clock, "2021-09-15")
    log(db, clock, police, "SOC-3", Status.AMBER, "KGH meeting booked")
    at(clock, "2021-10-08")


async def test_action_says_since_the_status_changed(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    seed(db, clock, people)
    text = await bot.reply(POLICE, "/action soc-3")
    assert "Status: at risk since Wed 1 Sep 2021" in text
    # A plan status never updated stands since the plan set it.
    assert "Status: off track since Thu 10 Jun 2021" in await bot.reply(POLICE, "/action dasv-2")


async def test_summary_paper_and_csv_say_since_the_status_changed(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    seed(db, clock, people)
    amber = section(await summary_section(bot, "🔴 Exceptions"), "<b>🟠 At risk")
    assert "Northants Police · at risk since Wed 1 Sep 2021 (37 days ago)" in amber
    files = {message.filename: message for message in await bot.send(CHAIR, "/report")}
    paper = files["board-paper-2021-10-08.html"].content
    assert paper is not None and "Wed 1 Sep 2021" in paper.decode()
    assert "Wed 15 Sep 2021 (23 days ago)</td><td>" not in paper.decode()
    content = files["actions-2021-10-08.csv"].content
    assert content is not None
    rows = {row["ref"]: row for row in csv.DictReader(io.StringIO(content.decode("utf-8-sig")))}
    assert rows["SOC-3"]["status since"] == "2021-09-01 10:00"
    assert rows["SOC-3"]["last update"] == "2021-09-15 10:00"


async def test_undoing_the_change_puts_back_the_older_since(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    seed(db, clock, people)
    log(db, clock, people["police"], "SOC-3", Status.RED, "KGH pulled out")
    assert "Status: off track since Fri 8 Oct 2021" in await bot.reply(POLICE, "/action soc-3")
    db.call(undo_last_update, member_id=people["police"].id, at=clock())
    assert "Status: at risk since Wed 1 Sep 2021" in await bot.reply(POLICE, "/action soc-3")
