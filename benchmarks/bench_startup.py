"""Benchmark: how long `csp-bot --help` takes, beside a bare Python start on this machine.

The command line imports only what building its parser needs (each command imports the rest
when it runs), so `--help` costs little more than starting the interpreter. Prints the
medians beside the target, with the load average; exits 1 if the target is missed.

    .venv/bin/python benchmarks/bench_startup.py [--runs 15]

Arguments it does not know are ignored (`./dev bench` passes its own to every benchmark).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.3
CLI = Path(sys.executable).with_name("csp-bot")


def medians(commands: list[list[str]], runs: int) -> list[tuple[float, float]]:
    """Each command's median wall time and CPU time (user and system), the runs taken in
    turn so that each sees the same load on the machine."""
    times: list[list[tuple[float, float]]] = [[] for _ in commands]
    for _ in range(runs):
        for command, seen in zip(commands, times, strict=True):
            cpu, started = _children_cpu(), time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            seen.append((time.perf_counter() - started, _children_cpu() - cpu))
    return [
        (statistics.median(w for w, _ in seen), statistics.median(c for _, c in seen))
        for seen in times
    ]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args, _ = parser.parse_known_args()
    (help_s, help_cpu), (bare_s, bare_cpu) = medians(
        [[str(CLI), "--help"], [sys.executable, "-c", "pass"]], args.runs
    )
    met = help_s < TARGET_S
    verdict = "met" if met else "MISSED"
    print(f"{'csp-bot --help median':32s} {help_s:>6.2f} s   target < {TARGET_S:g}: {verdict}")
    print(f"{'  its CPU time (user + system)':32s} {help_cpu:>6.2f} s")
    print(f"{'bare python -c pass, beside it':32s} {bare_s:>6.2f} s   CPU {bare_cpu:.2f} s")
    load = ", ".join(f"{figure:.2f}" for figure in os.getloadavg())
    print(f"load average (1, 5, 15 min) at the end: {load}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
