"""The board paper printed to A4 by a real browser (headless Chromium): no table wider than
the page's content box, references on one line, long notes whole, and the sample plan's
paper on at most five pages."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import update

from benchmarks.support.large_plan import NOW, PlanSize, build_large_plan
from csp_bot.handlers.report import render_format
from csp_bot.handlers.templating import Templates
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database, make_engine
from csp_bot.models.enums import Status
from csp_bot.models.membership import MemberView
from csp_bot.models.migrate import upgrade
from csp_bot.models.summary import board_paper
from csp_bot.models.tables import ProgressUpdate
from tests.chromium import CONTENT_WIDTH_PX, Browser, chromium_path
from tests.test_summary import log, seed_exceptions

CHROMIUM = chromium_path()
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium is not installed (Debian: apt-get install chromium): the paper's "
        "print layout is checked in a real browser",
    ),
    # The layout is the browser's work on the same HTML from either database:
    # tests/test_report.py reads the paper on both.
    pytest.mark.sqlite_only,
]
QUIET = timedelta(days=28)
LONG_NOTE = (
    "Accommodation pathway proposals drafted with the three district housing teams and "
    "Northamptonshire Women's Aid; the county allocation panel meets on 14 October to sign "
    "off the refuge spaces, after which the pathway goes to the partnership for agreement. "
    "Until then referrals continue through the interim arrangement agreed in July, reviewed "
    "fortnightly by the domestic abuse coordinator with the police and probation leads."
)
# What the page reports about its layout under print media: tables wider than the content
# box, and reference cells that wrap onto a second line.
MEASURE = """(() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('table')]
    .filter(t => t.getBoundingClientRect().width > width + 0.5)
    .map(t => `${t.id}: ${Math.round(t.getBoundingClientRect().width)}px`);
  const wrapped = [...document.querySelectorAll('td.ref')].filter(td => {
    const range = document.createRange(); range.selectNodeContents(td);
    return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1;
  }).map(td => td.textContent);
  return {width, wide, wrapped};
})()"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    assert CHROMIUM is not None
    started = Browser(CHROMIUM, tmp_path / "profile")
    yield started
    started.close()


def print_paper(browser: Browser, html: bytes, folder: Path) -> tuple[dict[str, object], PdfReader]:
    path = folder / "paper.html"
    path.write_bytes(html)
    browser.open_for_print(path)
    layout = browser.evaluate(MEASURE)
    printed = browser.pdf()
    (folder / "paper.pdf").write_bytes(printed)  # to look at when a check fails
    return layout, PdfReader(io.BytesIO(printed))


def words(text: str) -> str:
    return " ".join(text.split())


def pdf_text(pdf: PdfReader) -> str:
    return words(" ".join(page.extract_text() for page in pdf.pages))


def test_the_sample_plans_paper_prints_whole_on_five_pages(
    browser: Browser,
    db: Database,
    clock: FakeClock,
    people: dict[str, MemberView],
    templates: Templates,
    tmp_path: Path,
) -> None:
    seed_exceptions(db, clock, people)
    log(db, clock, people["chair"], "DASV-1", Status.AMBER, LONG_NOTE, forecast="By March")
    paper = db.call(board_paper, at=clock(), quiet_after=QUIET)
    layout, pdf = print_paper(browser, render_format(paper, templates, "html"), tmp_path)
    assert abs(layout["width"] - int(CONTENT_WIDTH_PX)) <= 1  # type: ignore[operator]
    assert layout["wide"] == [] and layout["wrapped"] == [], layout
    text = pdf_text(pdf)
    assert LONG_NOTE in text  # in "At risk"; "Actions by priority" points there
    assert "DASV-1" in text and "DASV- 1" not in text
    pages = [words(page.extract_text())[:80] for page in pdf.pages]
    assert len(pdf.pages) <= 5, pages


def test_a_large_plans_paper_keeps_every_table_in_the_page(
    browser: Browser, templates: Templates, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'large.db'}")
    upgrade(engine)
    # Small enough to print in seconds; the generator's organisations and streams need 30.
    size = PlanSize(priorities=4, actions=40, updates=200, members=40, organisations=30)
    build_large_plan(engine, size)
    with engine.begin() as connection:  # every note of the first action is a long one
        connection.execute(
            update(ProgressUpdate).where(ProgressUpdate.action_id == 1).values(note=LONG_NOTE)
        )
    database = Database(engine)
    try:
        paper = database.call(board_paper, at=NOW, quiet_after=QUIET)
    finally:
        database.close()
    layout, pdf = print_paper(browser, render_format(paper, templates, "html"), tmp_path)
    assert layout["wide"] == [] and layout["wrapped"] == [], layout
    assert LONG_NOTE in pdf_text(pdf)
