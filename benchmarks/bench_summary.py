"""Benchmark: the board's and partners' reads on a large plan.

Builds a plan of 40 priorities, 10,000 actions, 250,000 progress updates and 2,000
members across 60 organisations (or `--actions N`, with updates and members in the same
proportion), then measures, in one run, end to end through the Application (the Bot API
emulator in-process):

- `/summary` when the data changed since the last one (a write before each, untimed) and
  when nothing changed (served from the cache), with the SQL statements each runs;
- `/status`, a partner's `/my` and `/action REF`;
- the board paper (HTML with its chart) and the actions CSV, as `csp-bot report` makes them,
  and `/report` end to end;
- the peak memory of this process.

The plan is built by a child process, so the peak memory is the bot's work alone. It prints
each figure beside its target, with the load average, and exits 1 if a target is missed.

    .venv/bin/python benchmarks/bench_summary.py [--runs 25] [--database-url URL] [--actions N]
        [--measures N]

`--measures 400` adds 400 quarterly measures with 8 quarters of figures each (the
measures' own benchmark, `bench_measures.py`, runs them on the small sample plan).

SQLite in a temporary file by default; a PostgreSQL URL gets a fresh schema, dropped after.
Arguments it does not know are ignored (`./dev bench` passes its own to every benchmark).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, text, update
from sqlalchemy.engine import make_url
from sqlmodel import Session
from telegram import Update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.support.bytecode import run_compiled
from benchmarks.support.large_plan import NOW, build_large_plan, plan_size
from benchmarks.support.measures import add_measures, quarters_before
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
from csp_bot.models.tables import Action
from csp_bot.scheduler.pacing import InstantPacer

T = TypeVar("T")
CHAIR = EmulatedUser(500_001, "Member 1")  # the large plan's chair
PARTNER = EmulatedUser(500_031, "Member 31")  # a partner: /my lists their organisation's
TARGETS = {
    "summary_ms": 50.0,
    "summary_kept_ms": 10.0,
    "status_ms": 20.0,
    "my_ms": 10.0,
    "action_ms": 10.0,
    "report_s": 2.0,
    "peak_mb": 200.0,
}


@dataclass
class StatementCounter:
    """Counts the SQL statements an engine runs (a `before_cursor_execute` listener)."""

    count: int = 0

    def __call__(self, *args: Any) -> None:
        self.count += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25, help="timed runs of each command")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite, temporary)")
    parser.add_argument("--actions", type=int, default=10_000, help="actions in the plan")
    parser.add_argument("--no-report", action="store_true", help="skip /report and its files")
    parser.add_argument(
        "--measures", type=int, default=0, help="measures with 8 quarters of figures each"
    )
    parser.add_argument("--build-only", help=argparse.SUPPRESS)
    parser.add_argument("--organisations", type=int, help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    if args.build_only:
        return build(args.build_only, args.actions, args.organisations, args.measures)
    run_compiled()
    with database(args.database_url) as url:
        started = time.perf_counter()
        child = [sys.executable, __file__, "--build-only", url, "--actions", str(args.actions)]
        child += ["--measures", str(args.measures)]
        subprocess.run(child, check=True)
        print(f"built the plan in {time.perf_counter() - started:.1f} s ({_backend(url)})")
        return asyncio.run(measure(url, args.runs, report=not args.no_report))


def build(url: str, actions: int, organisations: int | None = None, measures: int = 0) -> int:
    """The child process: migrate and fill the database."""
    engine = make_engine(url)
    upgrade(engine)
    size = plan_size(actions)
    if organisations is not None:
        size = replace(size, organisations=organisations)
    build_large_plan(engine, size)
    with Session(engine) as session:
        add_measures(session, count=measures, quarters=quarters_before(NOW), now=NOW)
        session.commit()
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


async def measure(url: str, runs: int, *, report: bool = True) -> int:
    settings = Settings(database_url=url, telegram_token=None)
    engine = make_engine(url)
    db = Database(engine)
    counter = StatementCounter()
    event.listen(db.engine, "before_cursor_execute", counter)
    emulator = BotApiEmulator(clock=FakeClock(NOW))
    # Each command is timed for the bot's work, asked again and again from one chat: its
    # messages are paced on a virtual clock, not a second apart as Telegram would want.
    services = services_for(settings, db=db, clock=FakeClock(NOW), pacer=InstantPacer())
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
        timings = await timed_commands(app, emulator, counter, db, runs)
        chat_mb = report_mb = peak_mb()
        if report:
            # The emulator stands in for Telegram, which keeps the files sent on its own
            # servers: their bytes are dropped after each run, not counted as the bot's.
            timings["/report"] = await timed_command(
                app, emulator, counter, "/report", 3, after=emulator.forget_file_contents
            )
            report_mb = peak_mb()
    finally:
        await app.shutdown()
    quiet = settings.quiet_days
    counter.count = 0
    db.call(board_summary, at=NOW, quiet_after=timedelta(days=quiet))
    timings["/summary"].domain_statements = counter.count
    files = None
    if report:
        files = (
            best_of(3, lambda: html_report(db, templates, quiet)),
            best_of(3, lambda: csv_export(db, templates, quiet)),
        )
    db.close()
    return report_figures(timings, files, (chat_mb, report_mb))


async def timed_commands(
    app: CspApplication,
    emulator: BotApiEmulator,
    counter: StatementCounter,
    db: Database,
    runs: int,
) -> dict[str, Timing]:
    """Each command timed in turn; `/summary` first with a write before each run."""

    def write() -> None:
        # A real change (plain SQL counts like any write), made before the run, untimed.
        with db.engine.begin() as connection:
            connection.execute(update(Action).where(Action.id == 1).values(owner=uuid.uuid4().hex))

    return {
        "/summary": await timed_command(app, emulator, counter, "/summary", runs, before=write),
        "/summary kept": await timed_command(app, emulator, counter, "/summary", runs),
        "/summary P07": await timed_command(app, emulator, counter, "/summary P07", runs // 5 + 3),
        "/status": await timed_command(app, emulator, counter, "/status", runs),
        "/my": await timed_command(app, emulator, counter, "/my", runs, user=PARTNER),
        "/action": await timed_command(app, emulator, counter, "/action P07-12", runs),
    }


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
    app: CspApplication,
    emulator: BotApiEmulator,
    counter: StatementCounter,
    text: str,
    runs: int,
    *,
    user: EmulatedUser = CHAIR,
    before: Callable[[], None] | None = None,
    after: Callable[[], None] | None = None,
) -> Timing:
    """Send `text` as `user` `runs` times (after two untimed warm-ups), `before` and
    `after` each (untimed)."""
    times, statements, messages = [], set(), 0
    for run in range(runs + 2):
        if before is not None:
            before()
        update = Update.de_json(emulator.build_message_update(user, text), app.bot)
        seen, counter.count = emulator.sent_count, 0
        started = time.perf_counter()
        await app.process_update(update)
        elapsed = time.perf_counter() - started
        if run >= 2:
            times.append(elapsed)
            statements.add(counter.count)
            messages = emulator.sent_count - seen
        if after is not None:
            after()
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


def peak_mb() -> float:
    """The peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


Files = tuple[tuple[float, int], tuple[float, int]]


def report_figures(
    timings: dict[str, Timing], files: Files | None, peaks: tuple[float, float]
) -> int:
    """Print the figures beside their targets; 1 if any target is missed."""
    summary = timings["/summary"]
    rows: list[tuple[str, str, float | None, str | None]] = [
        ("/summary, data changed, median", _ms(summary), summary.median_ms, "summary_ms"),
        ("/summary, data changed, 95th pct", f"{summary.p95_ms:.1f} ms", None, None),
        ("/summary SQL statements", _counts(summary), None, None),
        ("  of which the summary's own", str(summary.domain_statements), None, None),
        ("/summary messages sent", str(summary.messages), None, None),
    ]
    rows.append(
        _timed_row("/summary, unchanged, median", timings["/summary kept"], "summary_kept_ms")
    )
    rows.append(
        ("/summary, unchanged, SQL statements", _counts(timings["/summary kept"]), None, None)
    )
    rows.append(_timed_row("/summary P07 median", timings["/summary P07"], None))
    rows.append(_timed_row("/status median", timings["/status"], "status_ms"))
    rows.append(_timed_row("/my median (a partner)", timings["/my"], "my_ms"))
    rows.append(_timed_row("/action median", timings["/action"], "action_ms"))
    chat_mb, report_mb = peaks
    rows.append(("peak memory, the chat commands", f"{chat_mb:.1f} MB", chat_mb, "peak_mb"))
    if files is not None:
        rows.append(("peak memory, with /report", f"{report_mb:.1f} MB", report_mb, "peak_mb"))
        rows += _file_rows(timings["/report"], *files)
    missed = 0
    for label, shown, value, target in rows:
        verdict = ""
        if target is not None and value is not None:
            met = value < TARGETS[target]
            missed += not met
            verdict = f"target < {TARGETS[target]:g}: {'met' if met else 'MISSED'}"
        print(f"{label:36s} {shown:>12s}   {verdict}")
    load = ", ".join(f"{figure:.2f}" for figure in os.getloadavg())
    print(f"load average (1, 5, 15 min) at the end: {load}")
    return 1 if missed else 0


def _file_rows(
    report: Timing, paper: tuple[float, int], table: tuple[float, int]
) -> list[tuple[str, str, float | None, str | None]]:
    peak = peak_mb()
    return [
        ("HTML report (query, chart, page)", f"{paper[0]:.2f} s", paper[0], "report_s"),
        ("HTML report size", f"{paper[1] / 1e6:.1f} MB", None, None),
        ("CSV export (query, file)", f"{table[0]:.2f} s", table[0], "report_s"),
        (
            "/report end to end",
            f"{report.median_ms / 1000:.2f} s",
            report.median_ms / 1000,
            "report_s",
        ),
        # `csp-bot report` runs in a process of its own; here it follows the bot's work
        # in the same process and on another thread, so this is more than either alone.
        ("  and the two files in this process", f"{peak:.0f} MB", None, None),
    ]


def _ms(timing: Timing) -> str:
    return f"{timing.median_ms:.1f} ms"


def _timed_row(
    label: str, timing: Timing, target: str | None
) -> tuple[str, str, float, str | None]:
    return (label, f"{_ms(timing)} ({_counts(timing)} SQL)", timing.median_ms, target)


def _counts(timing: Timing) -> str:
    return " / ".join(str(count) for count in sorted(timing.statements))


if __name__ == "__main__":
    sys.exit(main())
