"""`csp-bot demo`: the real bot over HTTP against the emulator, with a terminal chat."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from csp_bot.bot.demo import EXAMPLE_PLAN, Demo
from csp_bot.bot.settings import Settings


async def test_demo_chat_shows_replies_and_numbered_buttons(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}")
    typed = io.StringIO("2\n/whoami\n:as 6\nhello\n")
    shown = io.StringIO()
    assert await Demo(settings, typed, shown).run(None, EXAMPLE_PLAN) == 0
    out = shown.getvalue()
    assert "You are Helen Morris, the CSP Board chair." in out
    assert "bot: Helen Morris\n     Organisation: North Northamptonshire Council" in out
    assert "Role: board chair (chair)" in out
    assert "bot: Hello Visitor. I'm the assistant for the members" in out
    assert out.rstrip().endswith("Demo ended.")


def test_csp_bot_demo_ends_cleanly_at_end_of_input(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "CSPBOT_TELEGRAM_TOKEN": "",
    }
    finished = subprocess.run(
        [sys.executable, "-m", "csp_bot.bot.cli", "demo", "--as", "1"],
        input="/help\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=environment,
    )
    assert finished.returncode == 0, finished.stderr
    assert "/whoami – your name, organisation and role" in finished.stdout
    assert "Traceback" not in finished.stderr
    assert finished.stdout.rstrip().endswith("Demo ended.")
