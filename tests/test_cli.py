"""The `csp-bot` command line: settings errors, members, invites, plan import, run."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from csp_bot.bot.cli import main
from csp_bot.bot.emulator import BotApiEmulator, EmulatorServer
from csp_bot.bot.logs import RedactingFormatter, token_secrets
from csp_bot.models.db import Database, make_engine
from csp_bot.models.migrate import current_revision
from csp_bot.models.tables import Invite, Member

EXAMPLE = Path(__file__).parent.parent / "examples" / "north-northants-csp-2021-22.yaml"
TOKEN = "424242:SECRET-TOKEN-VALUE"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> str:
    """A clean CSPBOT_* environment pointing at the test database; no .env file around."""
    for name in list(os.environ):
        if name.startswith("CSPBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSPBOT_DATABASE_URL", database_url)
    return database_url


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_without_a_token_stops_with_one_line(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "run")
    assert code == 2
    assert err.strip().splitlines() == [
        "csp-bot: CSPBOT_TELEGRAM_TOKEN is not set: create a bot with @BotFather and set its token"
    ]


def test_malformed_database_url_stops_with_one_line(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSPBOT_DATABASE_URL", "not a url")
    monkeypatch.setenv("CSPBOT_TELEGRAM_TOKEN", TOKEN)
    code, _, err = run_cli(capsys, "run")
    assert code == 2
    assert err.strip().splitlines() == [
        "csp-bot: CSPBOT_DATABASE_URL is invalid: not a database URL (e.g. sqlite:///csp-bot.db)"
    ]


def test_db_upgrade_then_up_to_date(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "db", "upgrade")
    assert code == 0 and out.startswith("applied 0001")
    code, out, _ = run_cli(capsys, "db", "upgrade")
    assert (code, out) == (0, "the database is up to date\n")
    engine = make_engine(env)
    assert current_revision(engine) is not None
    engine.dispose()


def test_plan_import_is_idempotent(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, first, _ = run_cli(capsys, "plan", "import", str(EXAMPLE))
    assert code == 0 and "created" in first
    code, second, _ = run_cli(capsys, "plan", "import", str(EXAMPLE))
    assert code == 0 and "created" not in second.replace("0 created", "")


def test_plan_import_rejects_a_bad_file(
    env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("due: 2021-09-30", "due: tomorrow", 1))
    code, _, err = run_cli(capsys, "plan", "import", str(bad))
    assert code == 2
    assert "nothing was written" in err
    assert f"{bad}:" in err and "due" in err and "tomorrow" in err


def test_member_add_and_its_errors(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(capsys, "plan", "import", str(EXAMPLE))
    args = ["member", "add", "--telegram-id", "77", "--name", "Ann Lee"]
    code, out, _ = run_cli(capsys, *args, "--org", "northants police", "--role", "partner")
    assert (code, out) == (0, "registered Ann Lee (partner, Northants Police)\n")
    code, _, err = run_cli(capsys, *args, "--org", "Nowhere Council", "--role", "partner")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "unknown organisation 'Nowhere Council'; known organisations: " in err
    assert "Northants Police" in err
    code, _, err = run_cli(capsys, *args, "--org", "Northants Police", "--role", "boss")
    assert code == 2
    assert err.strip() == (
        "csp-bot: unknown role 'boss'; valid roles: admin, chair, board, partner, observer"
    )


def test_invite_create_prints_code_and_link(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSPBOT_BOT_USERNAME", "nn_csp_bot")
    run_cli(capsys, "plan", "import", str(EXAMPLE))
    code, out, _ = run_cli(
        capsys, "invite", "create", "--org", "Northants Police", "--role", "partner"
    )
    assert code == 0
    database = Database(make_engine(env))
    [invite] = database.call(lambda s: s.exec(select(Invite)).all())
    database.close()
    assert f"invite code: {invite.code}" in out
    assert f"link: https://t.me/nn_csp_bot?start={invite.code}" in out
    assert (invite.expires_at - invite.created_at).days == 7


def test_csp_bot_run_serves_the_emulator_and_never_logs_the_token(env: str, tmp_path: Path) -> None:
    emulator = BotApiEmulator(token=TOKEN)
    emulator.refuse("setMyCommands", "Bad Request: commands are not allowed")
    with EmulatorServer(emulator) as server:
        environment = {
            **os.environ,
            "CSPBOT_TELEGRAM_TOKEN": TOKEN,
            "CSPBOT_TELEGRAM_API_URL": server.base_url,
        }
        bot = subprocess.Popen(
            [sys.executable, "-m", "csp_bot.bot.cli", "run"],
            env=environment,
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            emulator.wait_for_pollers(1, timeout=30)
            database = Database(make_engine(env))
            assert database.call(lambda s: s.exec(select(Member)).all()) == []  # migrated
            database.close()
        finally:
            bot.send_signal(signal.SIGINT)
            _, logs = bot.communicate(timeout=30)
    assert bot.returncode == 0, logs
    assert "Telegram refused the command menu" in logs
    assert TOKEN not in logs
    assert "SECRET-TOKEN-VALUE" not in logs


def test_the_token_is_redacted_from_any_log_line_and_traceback() -> None:
    try:
        raise RuntimeError(f"GET https://x/bot{TOKEN}/getMe failed")
    except RuntimeError:
        record = logging.LogRecord(
            "httpx",
            logging.INFO,
            __file__,
            1,
            "POST %s",
            (f"https://x/bot{TOKEN}/getMe",),
            sys.exc_info(),
        )
    formatted = RedactingFormatter("%(message)s", token_secrets(TOKEN)).format(record)
    assert formatted.splitlines()[0] == "POST https://x/bot<token>/getMe"
    assert formatted.splitlines()[-1] == "RuntimeError: GET https://x/bot<token>/getMe failed"


def test_an_unreachable_database_is_one_line(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSPBOT_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    code, _, err = run_cli(capsys, "db", "upgrade")
    assert code == 3
    [line] = err.strip().splitlines()
    assert line.startswith("csp-bot: cannot use the database at CSPBOT_DATABASE_URL: ")
