"""Benchmark: the board's /summary and /report on a large plan.

Builds a plan of 40 priorities, 10,000 actions, 250,000 progress updates and 2,000
members across 60 organisations, then measures, in one run:

- `/summary` end to end through the Application (the Bot API emulator in-process): the
  median and 95th percentile, and the SQL statements each one runs;
- the board paper (HTML with its chart) and the actions CSV, as `csp-bot report` makes them;
- `/report` end to end (the three files sent through the Application);
- the peak memory of this process.

The plan is built by a child process, so the peak memory is the bot's work alone. It
prints each figure against its target; the README records them.

    .venv/bin/python benchmarks/bench_summary.py [--runs 25] [--database-url URL]

SQLite in a temporary file by default; a PostgreSQL URL gets a fresh schema, dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from telegram import Update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.support.large_plan import NOW, build_large_plan
from csp_bot.bot.app import build_application, services_for
from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser, EmulatorRequest
from csp_bot.bot.settings import Settings
from csp_bot.handlers.context import CspApplication
from csp_bot.handlers.report import actions_csv, paper_html, rag_chart
from csp_bot.handlers.templating import Templates
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database, make_engine
from csp_bot.models.migrate import upgrade
from csp_bot.models.summary import board_paper, board_summary

T = TypeVar("T")
CHAIR = EmulatedUser(500_001, "Member 1")  # the large plan's chair
TARGETS = {"summary_ms": 150.0, "report_s": 2.0, "peak_mb": 300.0}


@dataclass
class StatementCounter:
    """Counts the SQL statements an engine runs (a `before_cursor_execute` listener)."""

    count: int = 0

    def __call__(self, *args: Any) -> None:
        self.count += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25, help="timed /summary runs")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite, temporary)")
    parser.add_argument("--build-only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        return build(args.build_only)
    with database(args.database_url) as url:
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--build-only", url], check=True)
        print(f"built the plan in {time.perf_counter() - started:.1f} s ({_backend(url)})")
        return asyncio.run(measure(url, args.runs))


def build(url: str) -> int:
    """The child process: migrate and fill the database."""
    engine = make_engine(url)
    upgrade(engine)
    build_large_plan(engine)
    # Planner statistics, as PostgreSQL's autovacuum would gather them after a bulk load.
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    engine.dispose()
    return 0


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """A URL to an empty database: a temporary SQLite file or a fresh PostgreSQL schema."""
    if url is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _backend(url: str) -> str:
    return make_url(url).get_backend_name()


async def measure(url: str, runs: int) -> int:
    settings = Settings(database_url=url, telegram_token=None)
    engine = make_engine(url)
    db = Database(engine)
    counter = StatementCounter()
    event.listen(db.engine, "before_cursor_execute", counter)
    emulator = BotApiEmulator(clock=FakeClock(NOW))
    services = services_for(settings, db=db, clock=FakeClock(NOW))
    templates = services.templates
    app = build_application(
        services,
        token=emulator.token,
        request=EmulatorRequest(emulator),
        updates_request=EmulatorRequest(emulator),
    )
    await app.initialize()
    assert app.post_init is not None
    await app.post_init(app)  # as `csp-bot run` starts it (initialize() does not run it)
    try:
        summary = await timed_command(app, emulator, counter, "/summary", runs)
        scoped = await timed_command(app, emulator, counter, "/summary P07", max(3, runs // 5))
        report = await timed_command(app, emulator, counter, "/report", 3)
    finally:
        await app.shutdown()
    quiet = settings.quiet_days
    counter.count = 0
    db.call(board_summary, at=NOW, quiet_after=timedelta(days=quiet))
    summary.domain_statements = counter.count
    paper = best_of(3, lambda: html_report(db, templates, quiet))
    table = best_of(3, lambda: csv_export(db, templates, quiet))
    db.close()
    return report_figures(summary, scoped, report, paper, table)


@dataclass
class Timing:
    """What one command cost: wall times, statements per run and messages sent."""

    times: list[float]
    statements: set[int]
    messages: int
    domain_statements: int = 0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1000

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000


async def timed_command(
    app: CspApplication, emulator: BotApiEmulator, counter: StatementCounter, text: str, runs: int
) -> Timing:
    """Send `text` as the chair `runs` times (after two untimed warm-ups)."""
    times, statements, messages = [], set(), 0
    for run in range(runs + 2):
        update = Update.de_json(emulator.build_message_update(CHAIR, text), app.bot)
        seen, counter.count = len(emulator.messages()), 0
        started = time.perf_counter()
        await app.process_update(update)
        elapsed = time.perf_counter() - started
        if run >= 2:
            times.append(elapsed)
            statements.add(counter.count)
            messages = len(emulator.messages()) - seen
    return Timing(times, statements, messages)


def best_of(runs: int, job: Callable[[], T]) -> tuple[float, T]:
    """The fastest of `runs` runs of `job`, and its result."""
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = job()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def html_report(db: Database, templates: Templates, quiet_days: int) -> int:
    """`csp-bot report --format html`: the query, the chart and the page; its size."""
    paper = db.call(board_paper, at=NOW, quiet_after=timedelta(days=quiet_days))
    return len(paper_html(paper, templates, chart=rag_chart(paper.summary, templates)))


def csv_export(db: Database, templates: Templates, quiet_days: int) -> int:
    """`csp-bot report --format csv`: the query and the CSV; its size."""
    paper = db.call(board_paper, at=NOW, quiet_after=timedelta(days=quiet_days))
    return len(actions_csv(paper, templates.timezone))


def report_figures(
    summary: Timing,
    scoped: Timing,
    report: Timing,
    paper: tuple[float, int],
    table: tuple[float, int],
) -> int:
    """Print the figures against the targets (a benchmark reports; it does not fail)."""
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        ("/summary median", f"{summary.median_ms:.0f} ms", summary.median_ms, "summary_ms"),
        ("/summary 95th percentile", f"{summary.p95_ms:.0f} ms", None, None),
        ("/summary SQL statements", _counts(summary), None, None),
        ("  of which the summary's query", str(summary.domain_statements), None, None),
        ("/summary messages sent", str(summary.messages), None, None),
        ("/summary P07 median", f"{scoped.median_ms:.0f} ms", None, None),
        ("/summary P07 SQL statements", _counts(scoped), None, None),
        ("HTML report (query, chart, page)", f"{paper[0]:.2f} s", paper[0], "report_s"),
        ("HTML report size", f"{paper[1] / 1e6:.1f} MB", None, None),
        ("CSV export (query, file)", f"{table[0]:.2f} s", table[0], "report_s"),
        (
            "/report end to end",
            f"{report.median_ms / 1000:.2f} s",
            report.median_ms / 1000,
            "report_s",
        ),
        ("peak memory of this process", f"{peak_mb:.0f} MB", peak_mb, "peak_mb"),
    ]
    for label, shown, value, target in rows:
        verdict = ""
        if target is not None and value is not None:
            met = "met" if value < TARGETS[target] else "MISSED"
            verdict = f"target < {TARGETS[target]:g}: {met}"
        print(f"{label:34s} {shown:>12s}   {verdict}")
    return 0


def _counts(timing: Timing) -> str:
    return " / ".join(str(count) for count in sorted(timing.statements))


if __name__ == "__main__":
    sys.exit(main())
