"""The deployment example, run: HAProxy with examples/deploy/haproxy.cfg in front of real
`csp-bot run` instances in webhook mode on one PostgreSQL database, TLS ending at the proxy.

Only the addresses change (loopback ports, a certificate made for the test): every other
line of the example is what HAProxy runs here. The third server of the example has nothing
behind it, as when an instance is down.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser, EmulatorServer
from tests.loopback_proxy import start_proxy
from tests.test_cli import TOKEN
from tests.test_crash import webhook_env
from tests.test_webhook import SECRET, free_port

HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
# Long enough for a busy machine to start a process and HAProxy to check it twice.
PATIENCE_SECONDS = 60

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None or shutil.which("openssl") is None,
    reason="needs Debian's haproxy and openssl (.ci/run installs haproxy)",
)


def start_instance(
    database_url: str, emulator: EmulatorServer, port: int, hook: str
) -> subprocess.Popen[str]:
    environment = webhook_env(emulator, port, SECRET, hook=hook)
    return subprocess.Popen(
        [sys.executable, "-m", "csp_bot.bot.cli", "run"],
        env=environment | {"CSPBOT_DATABASE_URL": database_url},
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def running(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=PATIENCE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def wait_for_ready(proxy: httpx.Client, bots: list[int]) -> None:
    """Until each instance answers /readyz itself and the proxy answers through them."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    waiting = [f"http://127.0.0.1:{port}/readyz" for port in bots]
    while waiting and time.monotonic() < deadline:
        try:
            if httpx.get(waiting[0], timeout=2).status_code == 200:
                waiting.pop(0)
                continue
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    assert not waiting, f"not ready: {waiting}"
    while time.monotonic() < deadline:
        if proxy.get("/healthz").status_code == 200:
            return
        time.sleep(0.1)
    raise TimeoutError("HAProxy did not pass requests to the instances")


def send_start(proxy: httpx.Client, emulator: BotApiEmulator, user: EmulatedUser) -> int:
    update = emulator.build_message_update(user, "/start")
    return proxy.post("/hook", content=json.dumps(update), headers=HEADERS).status_code


def visitors(first: int, count: int) -> list[EmulatedUser]:
    return [EmulatedUser(70_000 + n, f"Visitor{n}") for n in range(first, first + count)]


def test_two_instances_behind_haproxy_answer_and_one_stopping_loses_nothing(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several instances need PostgreSQL (CSPBOT_TEST_DATABASE_URL)")
    proxy_port, bot_ports = free_port(), [free_port(), free_port(), free_port()]
    emulator = BotApiEmulator(token=TOKEN)
    hook = f"https://127.0.0.1:{proxy_port}/hook"
    with (
        EmulatorServer(emulator) as server,
        running(start_instance(database_url, server, bot_ports[0], hook)) as first,
        running(start_instance(database_url, server, bot_ports[1], hook)),
        running(start_proxy(tmp_path, proxy_port, bot_ports)),
        httpx.Client(base_url=f"https://127.0.0.1:{proxy_port}", verify=False, timeout=30) as proxy,
    ):
        wait_for_ready(proxy, bot_ports[:2])
        assert emulator.webhook == {"url": hook, "secret_token": SECRET}
        before = visitors(1, 6)
        assert [send_start(proxy, emulator, user) for user in before] == [200] * 6

        first.send_signal(signal.SIGTERM)
        _, logs = first.communicate(timeout=PATIENCE_SECONDS)
        assert first.returncode == 0, logs
        after = visitors(7, 4)
        assert [send_start(proxy, emulator, user) for user in after] == [200] * 4

        for user in before + after:
            [reply] = emulator.wait_for_messages(user.id, 1, timeout=PATIENCE_SECONDS)
            assert reply.text.startswith(f"Hello {user.first_name}. I'm the assistant")
