"""Talking to the Bot API through its faults: what is retried, what is final, what is logged."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
from telegram import Update
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.request import BaseRequest, RequestData

from csp_bot.bot.app import REPLY_BACKOFF, build_application, services_for
from csp_bot.bot.emulator import BotApiEmulator, EmulatorRequest
from csp_bot.bot.settings import Settings
from csp_bot.bot.transport import ResilientRequest
from csp_bot.handlers.context import CspApplication
from csp_bot.handlers.faults import NoAnswer, NotAccepted, TokenRefused, deciding_for_ourselves
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.scheduler.pacing import InstantPacer
from tests.harness import OUTSIDER, build_test_application, no_wait

TOKEN = "123456:VERY-SECRET-TOKEN"
SEND = f"https://api.telegram.org/bot{TOKEN}/sendMessage"
OK = (200, b'{"ok": true, "result": true}')
BAD_GATEWAY = (502, b"<html>502 Bad Gateway</html>")
NOT_FOUND = (404, b"<html>404 Not Found</html>")
FLOOD = (
    429,
    json.dumps(
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 7",
            "parameters": {"retry_after": 7},
        }
    ).encode(),
)
UNAUTHORIZED = (401, b'{"ok": false, "error_code": 401, "description": "Unauthorized"}')
CHAT_NOT_FOUND = (
    400,
    b'{"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}',
)


def refused_connection() -> NetworkError:
    error = NetworkError("httpx.ConnectError: All connection attempts failed")
    error.__cause__ = httpx.ConnectError("All connection attempts failed")
    return error


class Scripted(BaseRequest):
    """A Bot API that answers each call with the next scripted answer or error."""

    def __init__(self, *script: tuple[int, bytes] | Exception) -> None:
        self.script = list(script)
        self.calls = 0

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        self.calls += 1
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


class Waits:
    """The injected sleep: records each wait instead of sleeping."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def resilient(inner: Scripted, waits: Waits, **kwargs: Any) -> ResilientRequest:
    """The transport as the bot's replies use it."""
    return ResilientRequest(inner, backoff=REPLY_BACKOFF, sleep=waits, **kwargs)


async def test_a_bad_gateway_is_retried_after_half_a_second() -> None:
    inner, waits = Scripted(BAD_GATEWAY, OK), Waits()
    assert await resilient(inner, waits).do_request(SEND, "POST") == OK
    assert waits.seconds == [0.5]
    assert inner.calls == 2


async def test_flood_control_is_waited_out_as_long_as_telegram_asks() -> None:
    inner, waits = Scripted(FLOOD, OK), Waits()
    assert await resilient(inner, waits).do_request(SEND, "POST") == OK
    assert waits.seconds == [7.0]


async def test_a_404_from_a_proxy_is_retried() -> None:
    inner, waits = Scripted(NOT_FOUND, OK), Waits()
    assert await resilient(inner, waits).do_request(SEND, "POST") == OK
    assert inner.calls == 2


async def test_a_200_that_is_not_json_is_retried() -> None:
    inner, waits = Scripted((200, b"<html>captive portal</html>"), OK), Waits()
    assert await resilient(inner, waits).do_request(SEND, "POST") == OK
    assert waits.seconds == [0.5]


def count_json_reads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every `json.loads` from here on (the transport's and python-telegram-bot's)."""
    reads: list[object] = []
    real = json.loads

    def counted(text: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counted)
    return reads


async def test_an_answer_is_read_once_and_the_library_takes_that_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = count_json_reads(monkeypatch)
    inner = Scripted((200, b'{"ok": true, "result": {"message_id": 7}}'), CHAT_NOT_FOUND)
    request = resilient(inner, Waits())
    assert await request.post(SEND) == {"message_id": 7}
    with pytest.raises(BadRequest, match="Chat not found"):  # a refusal is read once too
        await request.post(SEND)
    assert len(reads) == 2


async def test_a_refused_connection_is_retried() -> None:
    inner, waits = Scripted(refused_connection(), refused_connection(), OK), Waits()
    assert await resilient(inner, waits).do_request(SEND, "POST") == OK
    assert waits.seconds == [0.5, 1.0]


async def test_a_401_is_final_and_names_the_token_variable() -> None:
    refusals: list[str] = []
    inner, waits = Scripted(UNAUTHORIZED, OK), Waits()
    request = resilient(inner, waits, on_token_refused=lambda: refusals.append("refused"))
    with pytest.raises(TokenRefused) as refused:
        await request.do_request(SEND, "POST")
    assert str(refused.value) == (
        "CSPBOT_TELEGRAM_TOKEN was refused by Telegram (401 Unauthorized): "
        "check the token with @BotFather"
    )
    assert refusals == ["refused"]
    assert (inner.calls, waits.seconds) == (1, [])


async def test_telegrams_own_refusal_is_returned_once_and_raised_by_ptb() -> None:
    inner, waits = Scripted(CHAT_NOT_FOUND, CHAT_NOT_FOUND), Waits()
    request = resilient(inner, waits)
    assert await request.do_request(SEND, "POST") == CHAT_NOT_FOUND
    with pytest.raises(BadRequest, match="Chat not found"):
        await request.post(SEND)
    assert (inner.calls, waits.seconds) == (2, [])


async def test_six_failures_give_up_with_not_accepted() -> None:
    inner, waits = Scripted(*[BAD_GATEWAY] * 6, OK), Waits()
    with pytest.raises(NotAccepted) as given_up:
        await resilient(inner, waits).do_request(SEND, "POST")
    assert str(given_up.value) == "Telegram did not take sendMessage (HTTP 502)"
    assert waits.seconds == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert inner.calls == 6


async def test_deciding_for_ourselves_a_bad_gateway_is_tried_once() -> None:
    inner, waits = Scripted(BAD_GATEWAY, OK), Waits()
    with deciding_for_ourselves(), pytest.raises(NotAccepted):
        await resilient(inner, waits).do_request(SEND, "POST")
    assert (inner.calls, waits.seconds) == (1, [])


async def test_deciding_for_ourselves_a_refused_connection_is_not_accepted() -> None:
    inner, waits = Scripted(refused_connection(), OK), Waits()
    with deciding_for_ourselves(), pytest.raises(NotAccepted) as failed:
        await resilient(inner, waits).do_request(SEND, "POST")
    assert isinstance(failed.value.__cause__, NetworkError)
    assert inner.calls == 1


async def test_deciding_for_ourselves_a_timeout_is_in_doubt() -> None:
    inner, waits = Scripted(TimedOut(), OK), Waits()
    with deciding_for_ourselves(), pytest.raises(NoAnswer) as failed:
        await resilient(inner, waits).do_request(SEND, "POST")
    assert str(failed.value) == "no usable answer to sendMessage (TimedOut)"
    assert (inner.calls, waits.seconds) == (1, [])


async def test_deciding_for_ourselves_flood_control_raises_retry_after() -> None:
    inner, waits = Scripted(FLOOD, OK), Waits()
    with deciding_for_ourselves(), pytest.raises(RetryAfter) as flood:
        await resilient(inner, waits).do_request(SEND, "POST")
    assert flood.value.retry_after == timedelta(seconds=7)
    assert (inner.calls, waits.seconds) == (1, [])


async def test_retrying_is_back_after_the_block() -> None:
    inner, waits = Scripted(BAD_GATEWAY, BAD_GATEWAY, OK), Waits()
    request = resilient(inner, waits)
    with deciding_for_ourselves(), pytest.raises(NotAccepted):
        await request.do_request(SEND, "POST")
    assert await request.do_request(SEND, "POST") == OK
    assert waits.seconds == [0.5]


async def test_trouble_is_logged_once_per_episode_and_never_with_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    script: list[tuple[int, bytes] | Exception] = [
        BAD_GATEWAY,
        NOT_FOUND,
        refused_connection(),
        OK,
        BAD_GATEWAY,
        OK,
    ]
    request = resilient(Scripted(*script), Waits())
    assert await request.do_request(SEND, "POST") == OK
    assert await request.do_request(SEND, "POST") == OK
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "Telegram did not take sendMessage (HTTP 502); trying again with backoff"),
        ("WARNING", "Telegram answers again (sendMessage)"),
        ("WARNING", "Telegram did not take sendMessage (HTTP 502); trying again with backoff"),
        ("WARNING", "Telegram answers again (sendMessage)"),
    ]
    assert TOKEN not in caplog.text
    assert "VERY-SECRET" not in caplog.text


async def test_an_error_on_the_way_is_named_by_its_type_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = resilient(Scripted(refused_connection(), OK), Waits())
    assert await request.do_request(SEND, "POST") == OK
    assert caplog.messages == [
        "Telegram did not take sendMessage (NetworkError); trying again with backoff",
        "Telegram answers again (sendMessage)",
    ]


# --- end to end: a real bot, a reply Telegram did not take at first ------------------------


class BadGatewayOnce(EmulatorRequest):
    """The emulator, but Telegram's front answers the first sendMessage with 502."""

    def __init__(self, emulator: BotApiEmulator) -> None:
        super().__init__(emulator)
        self.failed = False

    async def do_request(
        self, url: str, method: str, *args: Any, **kwargs: Any
    ) -> tuple[int, bytes]:
        if not url.endswith("/sendMessage") or self.failed:
            return await super().do_request(url, method, *args, **kwargs)
        self.failed = True
        self.emulator.refuse("sendMessage", "Bad Gateway", error_code=502)
        try:
            return await super().do_request(url, method, *args, **kwargs)
        finally:
            self.emulator.refuse("sendMessage", None)


async def test_a_reply_telegram_did_not_take_is_sent_again_and_arrives_once(
    settings: Settings, db: Database, clock: FakeClock, emulator: BotApiEmulator
) -> None:
    request = BadGatewayOnce(emulator)
    services = services_for(settings, db=db, clock=clock, pacer=InstantPacer())
    app = build_application(
        services,
        token=emulator.token,
        request=request,
        updates_request=EmulatorRequest(emulator),
        sleep=no_wait,
    )
    await app.initialize()
    try:
        update = emulator.build_message_update(OUTSIDER, "/start")
        await app.process_update(Update.de_json(update, app.bot))
    finally:
        await app.shutdown()
    assert request.failed
    [reply] = emulator.messages(OUTSIDER.id)
    assert reply.text.startswith("Hello Stranger. I'm the assistant for the members")


async def test_the_bot_itself_gives_up_after_six_bad_gateways(
    settings: Settings, db: Database, clock: FakeClock, emulator: BotApiEmulator
) -> None:
    app: CspApplication = build_test_application(settings, db, clock, emulator)
    await app.initialize()
    emulator.refuse("sendMessage", "Bad Gateway", error_code=502)
    try:
        with pytest.raises(NotAccepted, match=r"Telegram did not take sendMessage \(HTTP 502\)"):
            await app.bot.send_message(OUTSIDER.id, "hello")
    finally:
        emulator.refuse("sendMessage", None)
        await app.shutdown()
    assert emulator.messages(OUTSIDER.id) == []
