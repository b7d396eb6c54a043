"""The webhook and health routes: what Telegram and a load balancer get, and what is stored."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from csp_bot.bot.cli import main
from csp_bot.bot.emulator import BotApiEmulator, EmulatorServer
from csp_bot.bot.intake import Intake
from csp_bot.bot.settings import SettingsError, load_settings
from csp_bot.bot.webhook import web_app
from csp_bot.handlers.context import CspApplication
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.tables import InboxUpdate
from tests.harness import OUTSIDER

HOOK = "/tg/hook"
SECRET = "s3cret"
TOKEN = "424242:SECRET-TOKEN-VALUE"
WELCOME_START = "Hello Stranger. I'm the assistant for the members"


@pytest.fixture
async def client(app: CspApplication) -> AsyncIterator[httpx.AsyncClient]:
    """Telegram's side of the webhook: HTTP requests to the bot's web app, in-process."""
    web = web_app(Intake(app), webhook_path=HOOK, secret=SECRET)
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as http:
        yield http


def stored(db: Database) -> list[InboxUpdate]:
    """The inbox as a fresh transaction sees it (what was committed)."""
    return list(
        db.call(lambda s: s.exec(select(InboxUpdate).order_by(col(InboxUpdate.update_id))).all())
    )


def start_update(update_id: int) -> dict[str, Any]:
    """An outsider sends /start, as Telegram would post it."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1623315600,
            "chat": {"id": 9999, "type": "private", "first_name": "Stranger"},
            "from": {"id": 9999, "is_bot": False, "first_name": "Stranger"},
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


def post(
    http: httpx.AsyncClient, body: dict[str, Any], secret: str | None = SECRET
) -> Any:  # the awaitable response
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    return http.post(HOOK, json=body, headers=headers)


# --- the webhook route ----------------------------------------------------------------------


async def test_a_wrong_secret_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, db: Database
) -> None:
    answer = await post(client, start_update(1), secret="guess")
    assert (answer.status_code, answer.text) == (403, "forbidden")
    assert stored(db) == []


async def test_a_missing_secret_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, db: Database
) -> None:
    answer = await post(client, start_update(1), secret=None)
    assert answer.status_code == 403
    assert stored(db) == []


async def test_the_right_secret_stores_the_update_before_answering_200(
    client: httpx.AsyncClient, db: Database, clock: FakeClock
) -> None:
    answer = await post(client, start_update(41))
    assert (answer.status_code, answer.text) == (200, "ok")
    [row] = stored(db)
    assert row.update_id == 41
    assert row.chat_key == 9999
    assert row.payload["message"]["text"] == "/start"
    assert row.received_at == clock()
    assert row.done_at is None  # stored; the bot is not started, so not yet handled


async def test_an_update_the_bot_cannot_read_is_stored_as_done_and_does_not_block(
    client: httpx.AsyncClient, db: Database, app: CspApplication
) -> None:
    unreadable = {"update_id": 50, "message": {"message_id": 1, "text": "no date, no chat"}}
    assert (await post(client, unreadable)).status_code == 200  # else Telegram resends it
    assert (await post(client, start_update(51))).status_code == 200
    rows = stored(db)
    assert [(row.update_id, row.done_at is not None) for row in rows] == [(50, True), (51, False)]
    assert rows[0].payload == unreadable  # kept as it came, for whoever looks into it
    queued = app.update_queue.get_nowait()
    assert queued.update_id == 51 and app.update_queue.empty()  # only the readable one


async def test_the_same_update_posted_twice_is_stored_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    first = await post(client, start_update(7))
    again = await post(client, start_update(7))
    assert (first.status_code, again.status_code) == (200, 200)
    assert [row.update_id for row in stored(db)] == [7]


async def test_a_body_that_is_not_json_or_not_an_update_is_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    answer = await client.post(HOOK, content=b"{not json", headers=headers)
    assert (answer.status_code, answer.text) == (400, "not JSON")
    answer = await client.post(HOOK, json=[1, 2], headers=headers)
    assert (answer.status_code, answer.text) == (400, "not an update")
    answer = await client.post(HOOK, json={"update_id": "7"}, headers=headers)
    assert answer.status_code == 400
    assert stored(db) == []


async def test_only_post_is_served_on_the_webhook_path(client: httpx.AsyncClient) -> None:
    assert (await client.get(HOOK)).status_code == 405


# --- health and readiness -------------------------------------------------------------------


async def test_healthz_says_ok(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz")
    assert (answer.status_code, answer.text) == (200, "ok")


async def test_readyz_is_ready_with_an_empty_inbox(client: httpx.AsyncClient) -> None:
    answer = await client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"ready": True, "waiting": 0}


def fill_inbox(db: Database, clock: FakeClock, count: int, *, first_id: int = 1) -> None:
    """`count` unhandled updates received now."""

    def insert(session: Session) -> None:
        for update_id in range(first_id, first_id + count):
            payload = {"update_id": update_id}
            session.add(
                InboxUpdate(update_id=update_id, chat_key=1, payload=payload, received_at=clock())
            )

    db.call(insert)


async def test_readyz_is_not_ready_when_100_updates_wait_over_a_minute(
    client: httpx.AsyncClient, db: Database, clock: FakeClock
) -> None:
    fill_inbox(db, clock, 99)
    clock.advance(minutes=1, seconds=1)
    fill_inbox(db, clock, 50, first_id=1000)  # waiting, but not for long yet
    answer = await client.get("/readyz")
    assert (answer.status_code, answer.json()) == (200, {"ready": True, "waiting": 99})
    clock.advance(seconds=30)
    fill_inbox(db, clock, 1, first_id=5000)
    clock.advance(seconds=31)  # the 50 have now waited 61 s; the last one 31 s
    answer = await client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == {"ready": False, "reason": "149 updates waiting"}


async def test_readyz_is_not_ready_when_the_database_does_not_answer(
    app: CspApplication, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    intake = Intake(app)
    intake.db = Database.from_url(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'csp.db'}")
    web = web_app(intake, webhook_path=HOOK, secret=SECRET)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=web), base_url="http://bot.test"
        ) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json() == {"ready": False, "reason": "database unreachable"}
            healthy = await http.get("/healthz")
            assert healthy.status_code == 200  # the process is up all the same
            hook = await post(http, start_update(3))
            assert (hook.status_code, hook.text) == (503, "not stored")  # Telegram sends again
    finally:
        intake.db.close()
    assert "not ready: the database does not answer (OperationalError)" in caplog.text


async def test_readyz_reports_an_operational_error_as_not_ready(
    app: CspApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    intake = Intake(app)

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(intake.db, "run", unreachable)
    web = web_app(intake, webhook_path=None, secret=None)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web), base_url="http://bot.test"
    ) as http:
        answer = await http.get("/readyz")
        assert answer.status_code == 503
        assert answer.json() == {"ready": False, "reason": "database unreachable"}
        assert (await http.post(HOOK, json=start_update(1))).status_code == 404  # no webhook


# --- end to end: posted to the webhook, answered in the chat ----------------------------------


async def test_a_posted_start_is_answered_and_marked_done(
    app: CspApplication, client: httpx.AsyncClient, db: Database, emulator: BotApiEmulator
) -> None:
    await app.start()
    try:
        update = emulator.build_message_update(OUTSIDER, "/start")
        answer = await post(client, update)
        assert answer.status_code == 200
        [reply] = await emulator.wait_for_messages_async(OUTSIDER.id, 1, timeout=5)
        assert reply.text.startswith(WELCOME_START)
        assert "ask your partnership coordinator for an invite link" in reply.text
        for _ in range(100):  # marked done just after the handlers return
            [row] = stored(db)
            if row.done_at is not None:
                break
            await emulator_pause()
        assert row.update_id == update["update_id"]
        assert row.done_at is not None
    finally:
        await app.stop()


async def emulator_pause() -> None:
    """Let the bot's tasks run a moment (a bounded wait, never a long sleep)."""
    await asyncio.sleep(0.01)


# --- settings and the command line ----------------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> str:
    """A clean CSPBOT_* environment pointing at the test database; no .env file around."""
    for name in list(os.environ):
        if name.startswith("CSPBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSPBOT_DATABASE_URL", database_url)
    return database_url


def test_a_plain_http_webhook_is_refused_unless_on_loopback(env: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(webhook_url="http://example.org/x")
    assert str(refused.value) == (
        "CSPBOT_WEBHOOK_URL is invalid: "
        "Telegram calls only https:// URLs (http:// on loopback for tests)"
    )
    assert load_settings(webhook_url="https://example.org/x").webhook_url == (
        "https://example.org/x"
    )
    assert load_settings(webhook_url="http://127.0.0.1:8443/hook").webhook_url == (
        "http://127.0.0.1:8443/hook"
    )


def test_a_bad_webhook_listen_address_is_refused(env: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(webhook_listen="8080")
    assert str(refused.value) == (
        "CSPBOT_WEBHOOK_LISTEN is invalid: give host:port, e.g. 0.0.0.0:8080"
    )


def test_run_in_webhook_mode_without_a_secret_stops_with_one_line(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSPBOT_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("CSPBOT_WEBHOOK_URL", "https://bot.example.org/hook")
    code = main(["run"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.strip().splitlines() == [
        "csp-bot: CSPBOT_WEBHOOK_SECRET is not set: webhook mode needs a secret "
        "(letters, digits, _ and -, up to 256 characters)"
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_serving(
    http: httpx.Client, emulator: BotApiEmulator, bot: subprocess.Popen[str]
) -> None:
    """Until /healthz answers and the bot has told Telegram its webhook (bounded)."""
    for _ in range(300):
        assert bot.poll() is None, "the bot stopped"
        try:
            if http.get("/healthz").text == "ok" and emulator.webhook:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError("the bot's web server did not answer /healthz")


def test_csp_bot_run_in_webhook_mode_answers_telegram(env: str, tmp_path: Path) -> None:
    emulator = BotApiEmulator(token=TOKEN)
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    with EmulatorServer(emulator) as server:
        environment = {
            **os.environ,
            "CSPBOT_TELEGRAM_TOKEN": TOKEN,
            "CSPBOT_TELEGRAM_API_URL": server.base_url,
            "CSPBOT_WEBHOOK_URL": url,
            "CSPBOT_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
            "CSPBOT_WEBHOOK_SECRET": SECRET,
        }
        bot = subprocess.Popen(
            [sys.executable, "-m", "csp_bot.bot.cli", "run"],
            env=environment,
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
                wait_until_serving(http, emulator, bot)
                assert emulator.webhook == {"url": url, "secret_token": SECRET}
                update = emulator.build_message_update(OUTSIDER, "/start")
                headers = {"X-Telegram-Bot-Api-Secret-Token": "wrong"}
                refused = http.post("/hook", content=json.dumps(update), headers=headers)
                assert refused.status_code == 403
                headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
                taken = http.post("/hook", content=json.dumps(update), headers=headers)
                assert (taken.status_code, taken.text) == (200, "ok")
                [reply] = emulator.wait_for_messages(OUTSIDER.id, 1, timeout=10)
                assert reply.text.startswith(WELCOME_START)
        finally:
            bot.send_signal(signal.SIGTERM)
            _, logs = bot.communicate(timeout=30)
    assert bot.returncode == 0, logs
    assert TOKEN not in logs
    assert SECRET not in logs
