"""Benchmark: measures on a large performance framework.

Builds the sample plan with 400 measures (100 under each priority, quarterly, four targets
each) and 8 quarters of figures for every one, in a temporary SQLite file, then measures
end to end through the Application (the Bot API emulator in-process):

- `/measure CODE` with its chart (text and picture), median of `--runs`;
- the board paper's HTML with its Performance section (400 small charts), best of 3;
- `/summary` with the data changed before each run (a figure written, untimed).

It prints each figure beside its target, with the load average, and exits 1 if a target is
missed. Arguments it does not know are ignored (`./dev bench` passes its own).

    .venv/bin/python benchmarks/bench_measures.py [--runs 15] [--measures 400]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from telegram import Update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.support.measures import add_measures
from csp_bot.bot.app import build_application, services_for
from csp_bot.bot.demo import EXAMPLE_PLAN
from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser, EmulatorRequest
from csp_bot.bot.settings import Settings
from csp_bot.handlers.context import CspApplication
from csp_bot.handlers.report import paper_html, rag_chart
from csp_bot.models.audit import CLI
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database, make_engine
from csp_bot.models.enums import Role
from csp_bot.models.membership import add_member
from csp_bot.models.migrate import upgrade
from csp_bot.models.plan_import import import_plan_file
from csp_bot.models.summary import board_paper
from csp_bot.models.tables import MeasureFigure
from csp_bot.models.values import Period
from csp_bot.scheduler.pacing import InstantPacer

NOW = datetime(2022, 4, 20, 9, 0, tzinfo=UTC)
CHAIR = EmulatedUser(700_001, "Chair")
TARGETS = {"measure_ms": 150.0, "paper_s": 5.0, "summary_ms": 50.0}
QUARTERS = [Period.quarter(2020, 1).shifted(step) for step in range(8)]  # 2020/21 to 2021/22


def build(db: Database, measures: int) -> None:
    db.call(import_plan_file, path=EXAMPLE_PLAN, at=NOW - timedelta(days=400))
    db.call(
        add_member,
        telegram_id=CHAIR.id,
        name="Chair",
        organisation="North Northamptonshire Council",
        role=Role.CHAIR,
        at=NOW,
        actor=CLI,
    )

    db.call(add_measures, count=measures, quarters=QUARTERS, now=NOW)


async def timed(
    app: CspApplication, emulator: BotApiEmulator, text: str, runs: int, before: object = None
) -> list[float]:
    times = []
    for run in range(runs + 2):
        if callable(before):
            before()
        update = Update.de_json(emulator.build_message_update(CHAIR, text), app.bot)
        started = time.perf_counter()
        await app.process_update(update)
        if run >= 2:
            times.append(time.perf_counter() - started)
    return times


async def run(url: str, runs: int, measures: int) -> int:
    settings = Settings(database_url=url, telegram_token=None)
    db = Database(make_engine(url))
    upgrade(db.engine)
    build(db, measures)
    emulator = BotApiEmulator(clock=FakeClock(NOW))
    # Each command is timed for the bot's work, asked again and again from one chat: its
    # messages are paced on a virtual clock, not a second apart as Telegram would want.
    services = services_for(settings, db=db, clock=FakeClock(NOW), pacer=InstantPacer())
    app = build_application(
        services,
        token=emulator.token,
        request=EmulatorRequest(emulator),
        updates_request=EmulatorRequest(emulator),
    )
    await app.initialize()
    code = "ASB-M103"

    def write() -> None:
        def touch(session: object) -> None:
            session.execute(  # type: ignore[attr-defined]
                MeasureFigure.__table__.update()  # type: ignore[attr-defined]
                .where(MeasureFigure.id == 1)
                .values(note=str(time.perf_counter()))
            )

        db.call(touch)

    try:
        measure = await timed(app, emulator, f"/measure {code}", runs)
        summary = await timed(app, emulator, "/summary", runs, before=write)
    finally:
        await app.shutdown()
    quiet = timedelta(days=settings.quiet_days)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        paper = db.call(board_paper, at=NOW, quiet_after=quiet)
        html = paper_html(
            paper, services.templates, chart=rag_chart(paper.summary, services.templates)
        )
        best = min(best, time.perf_counter() - started)
    db.close()
    assert html.count(b"<figure>") >= measures
    figures = {
        "measure_ms": statistics.median(measure) * 1000,
        "paper_s": best,
        "summary_ms": statistics.median(summary) * 1000,
    }
    load = os.getloadavg()[0]
    print(f"{measures} measures, {len(QUARTERS)} quarters of figures each; load {load:.1f}")
    print(f"/measure with its chart, median: {figures['measure_ms']:.1f} ms (target < 150 ms)")
    print(f"board paper HTML with {measures} charts: {best:.2f} s (target < 5 s)")
    print(f"/summary, data changed, median: {figures['summary_ms']:.1f} ms (target < 50 ms)")
    missed = [name for name, value in figures.items() if value >= TARGETS[name]]
    if missed:
        print("missed:", ", ".join(missed))
    return 1 if missed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--measures", type=int, default=400)
    args, _ = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        return asyncio.run(run(url, args.runs, args.measures))


if __name__ == "__main__":
    sys.exit(main())
