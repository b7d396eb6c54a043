"""The real `csp-bot run` process: killed mid-update, refused its token, served faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import col, select

from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser, EmulatorServer, Fault
from csp_bot.models.audit import CLI
from csp_bot.models.db import Database, make_engine
from csp_bot.models.membership import add_member
from csp_bot.models.migrate import upgrade
from csp_bot.models.plan_import import import_plan_file
from csp_bot.models.tables import InboxUpdate, ProgressUpdate
from tests.conftest import EXAMPLE_PLAN
from tests.harness import PEOPLE
from tests.test_cli import TOKEN

POLICE = PEOPLE["police"]
# Bounded waits: a reply later than this counts as never coming. Generous, because on a
# machine busy with other work the bot process alone can take seconds to start.
WAIT = 60.0
SECRETS = (TOKEN, TOKEN.split(":", 1)[1])


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> str:
    """A clean CSPBOT_* environment pointing at the test database (as in test_cli)."""
    for name in list(os.environ):
        if name.startswith("CSPBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSPBOT_DATABASE_URL", database_url)
    return database_url


def bot_env(server: EmulatorServer) -> dict[str, str]:
    return {
        **os.environ,
        "CSPBOT_TELEGRAM_TOKEN": TOKEN,
        "CSPBOT_TELEGRAM_API_URL": server.base_url,
    }


def webhook_env(
    server: EmulatorServer, port: int, secret: str, *, hook: str | None = None
) -> dict[str, str]:
    """`bot_env` in webhook mode, listening on `port` of loopback; Telegram calls `hook`
    (by default that port itself)."""
    return bot_env(server) | {
        "CSPBOT_WEBHOOK_URL": hook or f"http://127.0.0.1:{port}/hook",
        "CSPBOT_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
        "CSPBOT_WEBHOOK_SECRET": secret,
    }


def start_bot(server: EmulatorServer, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "csp_bot.bot.cli", "run"],
        env=bot_env(server),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def database(url: str) -> Iterator[Database]:
    opened = Database(make_engine(url))
    try:
        yield opened
    finally:
        opened.close()


@contextmanager
def killed_on_failure(bot: subprocess.Popen[str]) -> Iterator[None]:
    """A failed check must not leave the bot process running into the next test."""
    try:
        yield
    except BaseException:
        bot.kill()
        bot.communicate(timeout=WAIT)
        raise


def poll(check: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def assert_quiet_about_the_token(*outputs: str) -> None:
    for output in outputs:
        for secret in SECRETS:
            assert secret not in output


def seed_police(url: str) -> None:
    with database(url) as db:
        upgrade(db.engine)
        now = datetime.now(UTC)
        db.call(import_plan_file, path=EXAMPLE_PLAN, at=now)
        db.call(add_member, telegram_id=POLICE.user.id, name=POLICE.user.first_name,
                organisation=POLICE.organisation, role=POLICE.role, at=now, actor=CLI)  # fmt: skip


def unfinished(url: str, update_id: int) -> bool:
    with database(url) as db:
        done = db.call(
            lambda s: s.exec(
                select(InboxUpdate.done_at).where(col(InboxUpdate.update_id) == update_id)
            ).all()
        )
    return done == [None]


def test_killed_between_storing_and_handling_the_update_is_handled_once(
    env: str, tmp_path: Path
) -> None:
    seed_police(env)
    emulator = BotApiEmulator(token=TOKEN)
    with EmulatorServer(emulator) as server:
        # The reply hangs for longer than any wait, so the update is unfinished when killed.
        hang = emulator.faults.add(
            Fault(kind="delay", methods={"sendmessage"}, chat_id=POLICE.user.id, delay=2 * WAIT)
        )
        bot = start_bot(server, tmp_path)
        with killed_on_failure(bot):
            update_id = emulator.send_text(POLICE.user, "/update SOC-1 green killed mid-reply")
            assert poll(lambda: unfinished(env, update_id))
        bot.kill()
        bot.communicate(timeout=WAIT)
        emulator.faults.remove(hang)
        bot = start_bot(server, tmp_path)
        try:
            [reply] = emulator.wait_for_messages(POLICE.user.id, 1, timeout=WAIT)
            assert "stored" in reply.text.lower() and "killed mid-reply" in reply.text
            assert poll(lambda: not unfinished(env, update_id))
        finally:
            bot.send_signal(signal.SIGINT)
            bot.communicate(timeout=WAIT)
    with database(env) as db:
        notes = db.call(lambda s: s.exec(select(ProgressUpdate.note)).all())
        stored = db.call(
            lambda s: s.exec(
                select(InboxUpdate.update_id).where(col(InboxUpdate.update_id) == update_id)
            ).all()
        )
    assert notes == ["killed mid-reply"]
    assert stored == [update_id]


def assert_token_refused(bot: subprocess.Popen[str]) -> None:
    out, err = bot.communicate(timeout=WAIT)
    assert bot.returncode == 2
    # Log records go to stderr too; the error itself is one line, the last.
    errors = [line for line in err.splitlines() if line.startswith("csp-bot:")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert "CSPBOT_TELEGRAM_TOKEN" in errors[0]
    assert "Traceback" not in out + err
    assert_quiet_about_the_token(out, err)


# Telegram refusing the token ends the bot before or apart from any database work.
@pytest.mark.sqlite_only
def test_a_revoked_token_stops_the_bot_with_one_line(env: str, tmp_path: Path) -> None:
    emulator = BotApiEmulator(token=TOKEN)
    emulator.refuse("getMe", "Unauthorized", error_code=401)
    with EmulatorServer(emulator) as server:
        assert_token_refused(start_bot(server, tmp_path))


# Telegram refusing the token ends the bot before or apart from any database work.
@pytest.mark.sqlite_only
def test_a_token_revoked_while_running_stops_the_bot_with_one_line(
    env: str, tmp_path: Path
) -> None:
    emulator = BotApiEmulator(token=TOKEN)
    with EmulatorServer(emulator) as server:
        bot = start_bot(server, tmp_path)
        emulator.wait_for_pollers(1, timeout=WAIT)
        emulator.refuse("getUpdates", "Unauthorized", error_code=401)
        emulator.send_text(EmulatedUser(4001, "Stranger"), "/start")  # ends the long poll
        assert_token_refused(bot)


FAULTS = [
    Fault(kind="status", status=500, times=1),
    Fault(kind="status", status=502, times=1),
    Fault(kind="status", status=404, times=1),
    Fault(kind="status", status=429, retry_after=1, times=1),
    Fault(kind="malformed", times=1),
    Fault(kind="reset", times=1),
    Fault(kind="drop", delay=0.5, times=1),
]


# The faults are in the talk with Telegram, not the database: one database is enough.
@pytest.mark.sqlite_only
def test_the_bot_keeps_serving_through_every_fault(env: str, tmp_path: Path) -> None:
    emulator = BotApiEmulator(token=TOKEN)
    with EmulatorServer(emulator) as server:
        bot = start_bot(server, tmp_path)
        try:
            emulator.wait_for_pollers(1, timeout=WAIT)
            for n, (method, fault) in enumerate(
                (method, fault) for method in ("getupdates", "sendmessage") for fault in FAULTS
            ):
                serves_through(emulator, Fault(**{**fault.__dict__, "methods": {method}}), n)
            assert bot.poll() is None
        finally:
            bot.send_signal(signal.SIGINT)
            out, err = bot.communicate(timeout=WAIT)
    assert bot.returncode == 0, err
    assert_quiet_about_the_token(out, err)


def serves_through(emulator: BotApiEmulator, fault: Fault, n: int) -> None:
    """The fault hits a request; once it is spent, the next message still gets its reply."""
    emulator.faults.add(fault)
    emulator.send_text(EmulatedUser(5000 + 2 * n, "Hit"), "/start")
    assert poll(lambda: len(emulator.faults) == 0), f"{fault} never hit"
    after = EmulatedUser(5001 + 2 * n, "After")
    emulator.send_text(after, "/start")
    assert emulator.wait_for_messages(after.id, 1, timeout=WAIT), fault
