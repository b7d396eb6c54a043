"""`csp-bot demo`: the real bot over HTTP against the emulator, with a terminal chat."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl

import httpx

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


class FetchingInput(io.StringIO):
    """Types "1" (the police partner), then, once the demo has printed the dashboard's link,
    opens it as a browser would (from the demo's input thread, while the bot runs), then
    ends the input."""

    def __init__(self, shown: io.StringIO) -> None:
        super().__init__()
        self.shown = shown
        self.answers: list[httpx.Response] = []

    def readline(self, size: int | None = -1) -> str:
        if not self.answers and "Dashboard, signed in as" not in self.shown.getvalue():
            self.answers.append(httpx.Response(0))  # the first read: who to be
            return "1\n"
        link = self.shown.getvalue().split("Dashboard, signed in as Dan Harris: ")[1].split()[0]
        page, fragment = link.split("#")
        launch = dict(parse_qsl(fragment))
        headers = {"Authorization": f"tma {launch['tgWebAppData']}"}
        self.answers.append(httpx.get(page, timeout=30))
        self.answers.append(httpx.get(page + "api/overview", headers=headers, timeout=30))
        return ""


async def test_the_demo_serves_the_dashboard_and_prints_a_signed_in_link(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}")
    shown = io.StringIO()
    typed = FetchingInput(shown)
    assert await Demo(settings, typed, shown).run(None, EXAMPLE_PLAN) == 0
    _, page, overview = typed.answers
    assert page.status_code == 200 and "app.js" in page.text
    assert overview.status_code == 200
    assert "Signed in as Dan Harris, partner, Northants Police" in overview.text
    assert "http://127.0.0.1:" in shown.getvalue()


def run_demo_through_a_pipe(
    tmp_path: Path, lines: list[str], *args: str
) -> subprocess.CompletedProcess[str]:
    """`csp-bot demo` as a separate process, its input piped in; its temporary folder (where
    it saves files) inside `tmp_path`."""
    environment = {**os.environ, "CSPBOT_TELEGRAM_TOKEN": "", "TMPDIR": str(tmp_path)}
    finished = subprocess.run(
        [sys.executable, "-m", "csp_bot.bot.cli", "demo", *args],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=environment,
    )
    assert finished.returncode == 0, finished.stderr
    return finished


def test_csp_bot_demo_ends_cleanly_at_end_of_input(tmp_path: Path) -> None:
    finished = run_demo_through_a_pipe(tmp_path, ["/help"], "--as", "1")
    assert "/whoami – your name, organisation and role" in finished.stdout
    assert "Traceback" not in finished.stderr
    assert finished.stdout.rstrip().endswith("Demo ended.")


def test_a_scripted_demo_shows_what_was_sent_alerts_and_saved_files(tmp_path: Path) -> None:
    script = [
        "4",  # Priya, a board member
        "/meetings",
        ":later 1500",  # past the start of tomorrow's meeting
        "2",  # its "Attending" button, now stale
        ":as 3",
        "/report",
        ":as 1",  # Dan: the reminders the bot sent him at start
    ]
    finished = run_demo_through_a_pipe(tmp_path, script)
    out = finished.stdout
    assert "bot (alert): That meeting has already started." in out
    assert "You are now Mike Greenway, the coordinator." in out
    folder = tmp_path / "csp-bot-demo-files"
    [paper] = folder.glob("board-paper-*.html")
    assert f"[document: {paper.name} saved to {paper}]" in out
    assert paper.read_text().startswith("<!DOCTYPE html>")
    dan = out[out.index("You are now Dan Harris, police partner (an action owner).") :]
    assert "bot: 💤 SOC-5 has had no update for 28 days" in dan
    assert "Updates wanted for the board meeting" in dan
