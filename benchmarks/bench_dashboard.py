"""Benchmark: the dashboard (the Mini App) on the large plan.

Builds the large benchmark plan (`benchmarks/bench_summary.py`'s: 40 priorities, 10,000
actions, 250,000 updates; `--actions N` for another size), then measures:

- the overview's server time: `GET /app/api/overview` through the bot's web app in-process
  (launch data checked, member looked up, summary read, page rendered), after a write each
  time (so the summary is read afresh) and with nothing changed (the chat's summary cache);
- a priority's action list: `GET /app/api/priority/P01` (250 actions on the default plan);
- the board's exceptions view (no target: its lists hold 50 of each kind);
- the page's first render in headless Chromium (Debian's, through chromedriver): from the
  start of navigation to `/app/` until the overview is on screen (the page's own
  `cspbot-view` mark), the bot's web server on loopback, the browser warm.

Each figure is printed beside its target, with the load average; exit 1 if one is missed.

    .venv/bin/python benchmarks/bench_dashboard.py [--runs 25] [--database-url URL] [--actions N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import uvicorn
from sqlalchemy import update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_summary import _backend, database
from benchmarks.support.large_plan import NOW, _telegram_id
from csp_bot.bot.app import build_application, services_for
from csp_bot.bot.emulator import BotApiEmulator, EmulatorRequest
from csp_bot.bot.intake import Intake
from csp_bot.bot.settings import Settings
from csp_bot.bot.webhook import web_app
from csp_bot.handlers.miniapp_auth import sign_init_data
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database, make_engine
from csp_bot.models.tables import Action
from tests.chromium import chromium_path

TARGETS = {"overview_ms": 100.0, "priority_ms": 150.0, "first_render_s": 1.5}
CHAIR = _telegram_id(1)
PARTNER = _telegram_id(31)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25, help="timed runs of each request")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite, temporary)")
    parser.add_argument("--actions", type=int, default=10_000, help="actions in the plan")
    args, _ = parser.parse_known_args()
    with database(args.database_url) as url:
        started = time.perf_counter()
        builder = Path(__file__).resolve().parent / "bench_summary.py"
        child = [sys.executable, str(builder), "--build-only", url, "--actions", str(args.actions)]
        subprocess.run(child, check=True)
        print(f"built the plan in {time.perf_counter() - started:.1f} s ({_backend(url)})")
        return asyncio.run(measure(url, args.runs))


async def measure(url: str, runs: int) -> int:
    db = Database(make_engine(url))
    emulator = BotApiEmulator(clock=FakeClock(NOW))
    services = services_for(Settings(database_url=url), db=db, clock=FakeClock(NOW))
    app = build_application(
        services,
        token=emulator.token,
        request=EmulatorRequest(emulator),
        updates_request=EmulatorRequest(emulator),
    )
    await app.initialize()
    web = web_app(Intake(app), webhook_path=None, secret=None)
    launch = sign_init_data(bot_token=emulator.token, telegram_id=CHAIR, first_name="C", at=NOW)
    partner = sign_init_data(bot_token=emulator.token, telegram_id=PARTNER, first_name="P", at=NOW)

    def write() -> None:
        with db.engine.begin() as connection:
            connection.execute(update(Action).where(Action.id == 1).values(owner=uuid.uuid4().hex))

    transport = httpx.ASGITransport(app=web)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            figures = {
                "overview, data changed": await timed(
                    http, "/app/api/overview", launch, runs, before=write
                ),
                "overview, unchanged": await timed(http, "/app/api/overview", launch, runs),
                "overview, a partner": await timed(http, "/app/api/overview", partner, runs),
                "priority P01's actions": await timed(http, "/app/api/priority/P01", launch, runs),
                "P01 overdue, by due date": await timed(
                    http, "/app/api/priority/P01?overdue=1&sort=due", launch, runs
                ),
                "exceptions (board), data changed": await timed(
                    http, "/app/api/board/exceptions", launch, runs // 5 + 3, before=write
                ),
            }
        render = first_render(web, launch, max(5, runs // 5))
    finally:
        await app.shutdown()
        db.close()
    return report(figures, render)


async def timed(
    http: httpx.AsyncClient,
    path: str,
    launch: str,
    runs: int,
    *,
    before: Callable[[], None] | None = None,
) -> list[float]:
    """Milliseconds each request took, the first (warm-up) left out."""
    headers = {"Authorization": f"tma {launch}"}
    times = []
    for _ in range(runs + 1):
        if before is not None:
            before()
        started = time.perf_counter()
        answer = await http.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
    return times[1:]


def first_render(web: Any, launch: str, runs: int) -> list[float] | str:
    """Seconds from navigation to the overview on screen, in headless Chromium."""
    chromium, driver = chromium_path(), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        return "selenium not installed"
    if chromium is None or driver is None:
        return "Chromium or chromedriver not installed"
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(web, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[listening])))
    thread.start()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=360,800"):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(driver))
    theme = quote(json.dumps({"bg_color": "#ffffff"}), safe="")
    fragment = (
        f"tgWebAppData={quote(launch, safe='')}&tgWebAppVersion=8.0&tgWebAppThemeParams={theme}"
    )
    seconds = []
    try:
        for run in range(runs + 1):
            browser.get(f"http://127.0.0.1:{port}/app/?run={run}#{fragment}")
            mark = WebDriverWait(browser, 60).until(
                lambda page: page.execute_script(
                    "const m = performance.getEntriesByName('cspbot-view');"
                    "return m.length ? m[0].startTime : null;"
                )
            )
            seconds.append(mark / 1000)
    finally:
        browser.quit()
        server.should_exit = True
        thread.join(timeout=30)
        listening.close()
    return seconds[1:]


def report(figures: dict[str, list[float]], render: list[float] | str) -> int:
    targets = {
        "overview, data changed": "overview_ms",
        "overview, unchanged": "overview_ms",
        "overview, a partner": "overview_ms",
        "priority P01's actions": "priority_ms",
        "P01 overdue, by due date": "priority_ms",
    }
    missed = 0
    for label, times in figures.items():
        median, target = statistics.median(times), TARGETS.get(targets.get(label, ""))
        p95 = sorted(times)[int(0.95 * (len(times) - 1))]
        verdict = ""
        if target is not None:
            met = median < target
            missed += not met
            verdict = f"target < {target:g} ms: {'met' if met else 'MISSED'}"
        print(f"{label + ', median':36s} {median:8.1f} ms (p95 {p95:.1f})   {verdict}")
    if isinstance(render, str):
        print(f"{'first render in Chromium':36s} not measured: {render}")
    else:
        median = statistics.median(render)
        met = median < TARGETS["first_render_s"]
        missed += not met
        verdict = f"target < {TARGETS['first_render_s']:g} s: {'met' if met else 'MISSED'}"
        print(f"{'first render in Chromium, median':36s} {median:8.2f} s    {verdict}")
    load = ", ".join(f"{figure:.2f}" for figure in os.getloadavg())
    print(f"load average (1, 5, 15 min) at the end: {load}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
