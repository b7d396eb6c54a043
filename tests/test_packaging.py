"""A non-editable install of the repository: one import name, no warnings, a working demo.

The working tree is copied and installed as a user would install it (`pip install .`,
into a directory of its own), then `csp-bot demo` runs from that copy, outside the
repository, so the sample plan and the templates must come from the package data.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What the copy leaves out: the developer's environment and what tools leave behind.
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", "*.db*"
)
# Verbose, because pip shows what setuptools says only then, when the build succeeds.
PIP_INSTALL = (
    *(sys.executable, "-m", "pip", "install", "--verbose", "--disable-pip-version-check"),
    *("--no-deps", "--no-build-isolation"),
)
# pip's own notes about this machine's package indexes, and setuptools saying that pip
# turned byte-compiling off: not about the project.
PIP_NOTICES = re.compile(
    r"^\s*(WARNING: Location '.*' is ignored|Looking in (indexes|links):"
    r"|warning: \w+: byte-compiling is disabled, skipping\.)"
)
WARNING = re.compile(r"warn|deprecat|!!", re.IGNORECASE)


def clean_environment(site: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CSPBOT_")}
    env["PYTHONPATH"] = str(site)
    return env


def test_a_non_editable_install_runs_the_demo(tmp_path: Path) -> None:
    source, site, elsewhere = tmp_path / "source", tmp_path / "site", tmp_path / "elsewhere"
    shutil.copytree(REPO, source, ignore=NOT_COPIED)
    elsewhere.mkdir()
    install = subprocess.run(
        [*PIP_INSTALL, "--target", str(site), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    said = (install.stdout + install.stderr).splitlines()
    warnings = [line for line in said if WARNING.search(line) and not PIP_NOTICES.match(line)]
    assert warnings == []

    installed = {entry.name for entry in site.iterdir()}
    assert {name for name in installed if not name.endswith(".dist-info")} == {"csp_bot", "bin"}

    env = clean_environment(site)
    where = subprocess.run(
        [sys.executable, "-c", "import csp_bot.bot.cli as cli; print(cli.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(site)

    demo = subprocess.run(
        [str(site / "bin" / "csp-bot"), "demo", "--as", "1"],
        input="/help\n/quit\n",
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    assert "You are Dan Harris" in demo.stdout
    assert "What you can do:" in demo.stdout
    assert "/update [REF STATUS note] – report progress on an action" in demo.stdout
