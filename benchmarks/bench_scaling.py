"""Benchmark: how the reads and the planning round grow with the plan.

At 1,000, 10,000 and 50,000 actions (25 updates an action, members in proportion), runs
`bench_summary.py --no-report` for `/summary` (data changed before each), `/status` and the
peak memory, and `bench_reminders.py --planning-only` for the planning rounds (every minute
with nothing changed, after a partner's update, and the first planning; on the SQLite
database it builds itself), each in a process of its own, and prints one table: the
README's scaling table. Exits 1 if a run failed, or missed a target at 10,000 actions, the
size the targets are set for (at other sizes the figures are shown, not judged).

    .venv/bin/python benchmarks/bench_scaling.py [--sizes 1000,10000,50000] [--database-url URL]

Arguments it does not know are ignored (`./dev bench` passes its own to every benchmark).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The plan the targets are set for; other sizes show how the cost grows.
TARGETS_AT = 10_000
# The lines of each benchmark's output that the table takes, by the start of the line.
SUMMARY_LINES = {
    "/summary": "/summary, data changed, median",
    "/status": "/status median",
    "peak memory": "peak memory, the chat commands",
}
# The planning figures, as `bench_reminders.py` prints them: (the line's start, the figure).
PLANNING = {
    "round": re.compile(r"^\s*every-minute planning round.*: ([\d.]+ ms) \(target"),
    "changed": re.compile(r"^\s*a round after a partner's update.*: median ([\d.]+ ms)"),
    "first": re.compile(r"^\s*first planning: ([\d.]+ s),.* peak memory (\d+ MB)"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000", help="numbers of actions")
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each command")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite, temporary)")
    args, _ = parser.parse_known_args()
    failed = False
    print(
        f"{'actions':>8}  {'/summary':>22}  {'/status':>22}  {'peak memory':>12}  "
        "planning round (after an update); first planning (peak memory)"
    )
    for size in (int(size) for size in args.sizes.split(",")):
        summary, summary_code = run_summary(size, args.runs, args.database_url)
        planning, planning_code = run_planning(size)
        codes = {summary_code, planning_code}
        # 1 is a missed target; anything else, or a figure not printed, is a broken run.
        broken = "failed" in (*summary.values(), planning) or not codes <= {0, 1}
        failed |= broken or (size == TARGETS_AT and codes != {0})
        print(
            f"{size:>8,}  {summary['/summary']:>22}  {summary['/status']:>22}  "
            f"{summary['peak memory']:>12}  {planning}",
            flush=True,
        )
    load = ", ".join(f"{figure:.2f}" for figure in os.getloadavg())
    print(f"load average (1, 5, 15 min) at the end: {load}")
    return 1 if failed else 0


def run_summary(size: int, runs: int, url: str | None) -> tuple[dict[str, str], int]:
    command = [sys.executable, str(HERE / "bench_summary.py"), "--no-report"]
    command += ["--actions", str(size), "--runs", str(runs), *_url(url)]
    done = subprocess.run(command, capture_output=True, text=True)
    figures = {key: "failed" for key in SUMMARY_LINES}
    for line in done.stdout.splitlines():
        for key, start in SUMMARY_LINES.items():
            if line.startswith(start):
                figures[key] = line[len(start) :].split("target")[0].strip()
    return figures, done.returncode


def run_planning(size: int) -> tuple[str, int]:
    """The planning figures of `bench_reminders.py`, on the database it builds itself."""
    command = [sys.executable, str(HERE / "bench_reminders.py"), "--planning-only"]
    command += ["--actions", str(size), "--runs", "7"]
    done = subprocess.run(command, capture_output=True, text=True)
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        for key, pattern in PLANNING.items():
            match = pattern.match(line)
            if match:
                found[key] = " (".join(match.groups()) + (")" if len(match.groups()) > 1 else "")
    if len(found) < len(PLANNING):
        return "failed", done.returncode
    figures = f"{found['round']} ({found['changed']}); {found['first']}"
    return figures, done.returncode


def _url(url: str | None) -> list[str]:
    return ["--database-url", url] if url else []


if __name__ == "__main__":
    sys.exit(main())
