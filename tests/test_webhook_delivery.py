"""The emulator's webhook side: updates POSTed with the secret, sent again until answered 2xx,
each chat's in order, then no longer pending (as Telegram does)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser, WebhookDelivery

ALICE, BOB = EmulatedUser(501, "Alice"), EmulatedUser(502, "Bob")


class RefusingFirstTries(ThreadingHTTPServer):
    """Answers 502 to the first POST of every update, 200 to the next; keeps the texts it
    answered 200 to, and the secret each request carried."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Hook)
        self.tried: set[int] = set()
        self.taken: list[str] = []
        self.secrets: set[str] = set()
        self.lock = threading.Lock()


class Hook(BaseHTTPRequestHandler):
    server: RefusingFirstTries

    def do_POST(self) -> None:
        update = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.secrets.add(self.headers["X-Telegram-Bot-Api-Secret-Token"])
            first = update["update_id"] not in self.server.tried
            self.server.tried.add(update["update_id"])
            if not first:
                self.server.taken.append(update["message"]["text"])
        self.send_response(502 if first else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def hook() -> Iterator[RefusingFirstTries]:
    server = RefusingFirstTries()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    thread.join()
    server.server_close()


def test_updates_refused_are_sent_again_and_each_chat_keeps_its_order(
    hook: RefusingFirstTries,
) -> None:
    emulator = BotApiEmulator()
    port = hook.server_address[1]
    emulator.webhook = {"url": f"http://127.0.0.1:{port}/hook", "secret_token": "s3cret"}
    for n in range(1, 6):
        emulator.send_text(ALICE, f"alice {n}")
        emulator.send_text(BOB, f"bob {n}")
    with WebhookDelivery(emulator, connections=2, retry_seconds=0.01) as delivery:
        deadline = time.monotonic() + 30
        while emulator.pending_updates() and time.monotonic() < deadline:
            time.sleep(0.02)
    assert [text for text in hook.taken if text.startswith("alice")] == [
        "alice 1", "alice 2", "alice 3", "alice 4", "alice 5"
    ]  # fmt: skip
    assert [text for text in hook.taken if text.startswith("bob")] == [
        "bob 1", "bob 2", "bob 3", "bob 4", "bob 5"
    ]  # fmt: skip
    assert (delivery.delivered, delivery.refused) == (10, 10)
    assert hook.secrets == {"s3cret"}
