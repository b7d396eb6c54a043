"""Bytecode for every installed module, compiled before a benchmark measures memory."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent.parent
LAYERS = ("bot", "handlers", "models", "scheduler")
COMPILED = "CSPBOT_BENCH_COMPILED"  # set in the process that runs with bytecode


def run_compiled() -> None:
    """Compile the installed packages and the bot's layers to bytecode, as `pip install`
    does when it installs them, then run this script again in a process of its own and
    exit with its code; in that process, return at once.

    `./dev` installs without compiling (it is most of a fresh clone's set-up time), so a
    module is compiled when first imported, and compiling costs memory the process keeps:
    in a first run after a fresh set-up, the bot's peak with `/report` was 205 MB, against
    192 MB in the next run, with the bytecode there. An installed bot runs from compiled
    modules, and that is the memory it serves with. A second process is needed because
    this one compiled what it imported before it could compile anything. Modules already
    compiled are only checked: about a second and a half here (eight the first time).
    """
    if os.environ.get(COMPILED):
        return
    paths = [sysconfig.get_paths()["purelib"], *(str(PROJECT / layer) for layer in LAYERS)]
    # A module that does not compile (a test file in another Python's syntax) is left to
    # be compiled, or not, as before: nothing the bot imports.
    compiling = [sys.executable, "-m", "compileall", "-q", "-j", "0", *paths]
    subprocess.run(compiling, check=False, stdout=subprocess.DEVNULL)
    again = subprocess.run([sys.executable, *sys.argv], env={**os.environ, COMPILED: "1"})
    sys.exit(again.returncode)
