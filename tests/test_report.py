"""The board paper: /report's files and `csp-bot report`, read back and checked against the data."""

from __future__ import annotations

import base64
import csv
import io
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import Session, col, select

from csp_bot.bot.cli import main
from csp_bot.bot.emulator import SentMessage
from csp_bot.handlers.report import CSV_COLUMNS, render_paper_files
from csp_bot.handlers.templating import Templates
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.enums import FundingStatus, Status
from csp_bot.models.membership import MemberView
from csp_bot.models.summary import board_paper
from csp_bot.models.tables import Action, FundingDecision, ProgressUpdate
from tests.harness import PEOPLE, Harness
from tests.test_summary import log, seed_exceptions

CHAIR = PEOPLE["chair"].user
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Tables(HTMLParser):
    """Every <table id=...> in a page as rows of cell texts; also the image sources."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and found.get("id"):
            self._table = self.tables.setdefault(str(found["id"]), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(str(found.get("src")))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def body(table: list[list[str]]) -> list[list[str]]:
    """The rows under the header row."""
    return table[1:]


async def board_paper_files(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> dict[str, SentMessage]:
    seed_exceptions(db, clock, people)
    # User text is escaped in the paper, as everywhere.
    log(db, clock, people["police"], "HATE-1", Status.GREEN, "<b>Reporting</b> & <i>support</i>")
    sent = await bot.send(CHAIR, "/report")
    return {message.kind + ":" + (message.filename or ""): message for message in sent}


async def test_report_sends_the_paper_the_csv_and_the_chart(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    files = await board_paper_files(bot, db, clock, people)
    assert list(files) == [
        "document:board-paper-2021-10-08.html",
        "document:actions-2021-10-08.csv",
        "photo:rag-chart-2021-10-08.png",
    ]
    html = files["document:board-paper-2021-10-08.html"]
    assert html.text.startswith("<b>Board paper</b>: highlight report at Fri 8 Oct 2021, 10:00.")
    assert files["document:actions-2021-10-08.csv"].text == (
        "All 17 actions with their latest status, for a spreadsheet."
    )
    chart = files["photo:rag-chart-2021-10-08.png"].content
    assert chart is not None and chart.startswith(PNG_MAGIC)
    picture = Image.open(io.BytesIO(chart))
    assert picture.format == "PNG" and picture.width > picture.height / 2


async def test_the_paper_is_self_contained_and_prints_on_a4(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    files = await board_paper_files(bot, db, clock, people)
    content = files["document:board-paper-2021-10-08.html"].content
    assert content is not None
    page = content.decode()
    assert "@page { size: A4;" in page
    assert not re.search(r"<(script|link|iframe)\b|@import|url\(|href=", page)
    parsed = Tables(page)
    [source] = parsed.images
    assert source.startswith("data:image/png;base64,")
    chart = base64.b64decode(source.removeprefix("data:image/png;base64,"))
    assert chart == files["photo:rag-chart-2021-10-08.png"].content
    assert "&lt;b&gt;Reporting&lt;/b&gt; &amp; &lt;i&gt;support&lt;/i&gt;" in page
    assert "<b>Reporting</b>" not in page


async def test_the_papers_tables_match_the_data(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    files = await board_paper_files(bot, db, clock, people)
    content = files["document:board-paper-2021-10-08.html"].content
    assert content is not None
    tables = Tables(content.decode()).tables

    priorities = {row[0].split()[0]: row for row in body(tables["priorities"])}
    assert list(priorities) == ["SOC", "DASV", "HATE", "ASB"]
    counts = db.call(status_counts)
    for code, row in priorities.items():
        assert [int(cell) for cell in row[3:8]] == [
            counts.get((code, status), 0)
            for status in (Status.RED, Status.AMBER, Status.GREEN, Status.COMPLETE)
        ] + [counts.get((code, Status.NOT_STARTED), 0)]
    assert priorities["SOC"][1:3] == ["off track", "↓ worsening (was at risk)"]
    assert priorities["SOC"][8:] == ["2", "4", "Mon 20 Sep 2021 (18 days ago)"]
    assert priorities["HATE"][10] == "Fri 8 Oct 2021 (today)"

    assert [row[0] for row in body(tables["red"])] == refs_with(db, Status.RED)
    soc1 = body(tables["red"])[0]
    assert soc1[3:] == [
        "Mon 20 Sep 2021 (18 days ago)",
        "↓ worsening",
        "Provider pulled out – Dan, Mon 20 Sep 2021 (18 days ago)",
        "Re-procuring through the PFCC framework",
    ]
    assert [row[0] for row in body(tables["amber"])] == refs_with(db, Status.AMBER)
    assert [row[0] for row in body(tables["overdue"])] == ["SOC-2", "SOC-4"]
    assert len(body(tables["quiet"])) == 12  # HATE-1 has just been updated
    assert "SOC-3" in [row[0] for row in body(tables["quiet"])]

    every = [row for code in priorities for row in body(tables[f"actions-{code}"])]
    stored = db.call(statuses_by_ref)
    assert [(row[0], row[5]) for row in every] == [
        (ref, status.label) for ref, status in stored.items()
    ]

    returns = {row[0]: row for row in body(tables["returns-table"])}
    assert (
        returns["Probation Service"][1:3] == ["1", "0"] and returns["Probation Service"][4] == "no"
    )
    assert returns["Northants Police"][4] == "yes"

    open_funding = body(tables["open-funding"])
    assert len(open_funding) == db.call(open_decisions)
    totals = body(tables["funding-2021"])[-1]
    assert totals[0] == "All streams"
    confirmed = db.call(confirmed_pence, year=2021)
    assert totals[3] == f"£{confirmed // 100:,}.{confirmed % 100:02d}"


def status_counts(session: Session) -> dict[tuple[str, Status], int]:
    counts: dict[tuple[str, Status], int] = {}
    for action in session.exec(select(Action)).all():
        key = (action.ref.split("-")[0], action.status)
        counts[key] = counts.get(key, 0) + 1
    return counts


def refs_with(db: Database, status: Status) -> list[str]:
    return [ref for ref, stored in db.call(statuses_by_ref).items() if stored == status]


def statuses_by_ref(session: Session) -> dict[str, Status]:
    actions = session.exec(select(Action).order_by(col(Action.priority_id), col(Action.id))).all()
    return {action.ref: action.status for action in actions}


def open_decisions(session: Session) -> int:
    statuses = (FundingStatus.PROPOSED, FundingStatus.AGREED)
    decisions = session.exec(
        select(FundingDecision).where(
            col(FundingDecision.status).in_(statuses),
            col(FundingDecision.financial_year).in_((2021, 2022)),
        )
    ).all()
    return len(decisions)


def confirmed_pence(session: Session, *, year: int) -> int:
    decisions = session.exec(
        select(FundingDecision).where(
            FundingDecision.status == FundingStatus.CONFIRMED,
            FundingDecision.financial_year == year,
        )
    ).all()
    return sum(decision.amount_pence for decision in decisions)


async def test_the_csv_holds_every_action_with_its_latest_status(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    files = await board_paper_files(bot, db, clock, people)
    content = files["document:actions-2021-10-08.csv"].content
    assert content is not None and content.startswith(b"\xef\xbb\xbf")  # UTF-8 for Excel
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    stored = db.call(statuses_by_ref)
    assert [(row["ref"], row["status"]) for row in rows] == [
        (ref, status.label) for ref, status in stored.items()
    ]
    latest = db.call(latest_notes)
    assert {row["ref"]: row["latest note"] for row in rows if row["latest note"]} == latest
    soc1 = next(row for row in rows if row["ref"] == "SOC-1")
    assert soc1 == soc1 | {
        "priority": "SOC",
        "lead organisation": "Northants Police",
        "due": "2022-03-31",
        "status since": "2021-09-20 10:00",
        "direction since baseline": "worsening",
        "overdue": "no",
        "no recent update": "no",
        "last update": "2021-09-20 10:00",
        "mitigation": "Re-procuring through the PFCC framework",
        "forecast": "Not expected to recover by the due date",
    }
    assert next(row for row in rows if row["ref"] == "SOC-2")["overdue"] == "yes"


def latest_notes(session: Session) -> dict[str, str]:
    updates = session.exec(
        select(ProgressUpdate, Action.ref)
        .join(Action, col(Action.id) == ProgressUpdate.action_id)
        .where(col(ProgressUpdate.withdrawn_at).is_(None))
        .order_by(col(ProgressUpdate.created_at), col(ProgressUpdate.id))
    ).all()
    return {ref: update.note for update, ref in updates}


def test_a_paper_with_no_plan_yet(db: Database, clock: FakeClock, templates: Templates) -> None:
    paper = db.call(board_paper, at=clock(), quiet_after=timedelta(days=28))
    files = render_paper_files(paper, templates)
    tables = Tables(files.html.decode()).tables
    assert body(tables["priorities"]) == [] and body(tables["returns-table"]) == []
    assert files.csv.decode("utf-8-sig").splitlines() == [",".join(CSV_COLUMNS)]
    assert files.png.startswith(PNG_MAGIC)


# --- csp-bot report ------------------------------------------------------------------------


async def test_the_command_line_writes_the_same_files(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    people: dict[str, MemberView],
    cli_at: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = await board_paper_files(bot, db, clock, people)
    for file_format, key in [
        ("html", "document:board-paper-2021-10-08.html"),
        ("csv", "document:actions-2021-10-08.csv"),
        ("png", "photo:rag-chart-2021-10-08.png"),
    ]:
        out = cli_at / f"paper.{file_format}"
        assert main(["report", "--format", file_format, "--out", str(out)]) == 0
        assert out.read_bytes() == files[key].content
    assert "wrote" in capsys.readouterr().out
    assert main(["report"]) == 0  # html by default, named by the date
    assert (cli_at / "board-paper-2021-10-08.html").exists()


def test_the_command_line_reports_a_file_it_cannot_write(
    db: Database, people: dict[str, MemberView], cli_at: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--format", "csv", "--out", str(cli_at / "no" / "such.csv")]) == 2
    assert capsys.readouterr().err.startswith("csp-bot: cannot write ")
