"""Talking to the Bot API through its faults: what to retry, what is final, what is in doubt.

Every call the bot makes goes through `ResilientRequest`, a python-telegram-bot request
class wrapped around the real one. An answer that says Telegram did not take the request
(429, 5xx, a 404 from a proxy on the way, a connection refused or reset) is retried with
backoff, and the trouble is logged once per episode, not once per try. A 401 means the
token was revoked or mistyped: it is final, and the runner ends the bot.

Each message sent (a reply, an edit is not one) first takes its turn from the bot's pace
(`scheduler.pacing`), each try again, so that replies and reminders together keep within
Telegram's limits and a 429 is the exception.

Reminders decide for themselves (`handlers.delivery`): inside `deciding_for_ourselves()`
they take their own turns, nothing is retried here, and failures arrive typed
(`handlers.faults`), as `NotAccepted` (safe to send again) or `NoAnswer` (the request left
and nothing came back: it may have arrived).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx
from telegram.error import NetworkError, RetryAfter, TelegramError
from telegram.request import BaseRequest, RequestData

from csp_bot.handlers.faults import NoAnswer, NotAccepted, TokenRefused, retrying
from csp_bot.models.backoff import Backoff
from csp_bot.scheduler.pacing import Pace

log = logging.getLogger(__name__)

# Errors on the way that mean the request was not taken: refused, never written, or the
# connection reset by the other end instead of answered. A server that closes the
# connection without answering (httpx.RemoteProtocolError) or a read timeout is different:
# the request may have been handled, so it is in doubt.
NOT_TAKEN_CAUSES = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.ReadError,
)

# The methods Telegram counts against its limits on messages sent.
PACED_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendmediagroup",
        "copymessage",
        "forwardmessage",
    }
)

Sleep = Callable[[float], Awaitable[None]]


class Verdict(Enum):
    ANSWERED = "answered"
    NOT_TAKEN = "not taken"
    IN_DOUBT = "in doubt"
    TOKEN = "token refused"


@dataclass(frozen=True)
class Outcome:
    """One try: the verdict, and the answer or the error it ended with."""

    verdict: Verdict
    status: int = 0
    payload: bytes = b""
    error: TelegramError | None = None
    retry_after: float | None = None
    body: dict[str, Any] | None = None  # the payload's JSON, when it is an object

    @property
    def reason(self) -> str:
        return f"HTTP {self.status}" if self.error is None else type(self.error).__name__


def judge_answer(status: int, payload: bytes) -> Outcome:
    """What an HTTP answer from the Bot API means for the request."""
    if status == 401:
        return Outcome(Verdict.TOKEN, status, payload)
    body = _json_object(payload)
    if 200 <= status < 300:
        verdict = Verdict.ANSWERED if body is not None else Verdict.IN_DOUBT
        return Outcome(verdict, status, payload, body=body)
    if status == 429:
        return Outcome(Verdict.NOT_TAKEN, status, payload, retry_after=_retry_after(body))
    if status >= 500 or status == 404:
        return Outcome(Verdict.NOT_TAKEN, status, payload)
    # Telegram's own refusal: PTB raises it.
    return Outcome(Verdict.ANSWERED, status, payload, body=body)


def judge_error(error: TelegramError) -> Outcome:
    """What an error on the way (raised by the HTTP layer) means for the request."""
    if isinstance(error.__cause__, NOT_TAKEN_CAUSES):
        return Outcome(Verdict.NOT_TAKEN, error=error)
    if isinstance(error, NetworkError):  # TimedOut included: the request had left
        return Outcome(Verdict.IN_DOUBT, error=error)
    return Outcome(Verdict.ANSWERED, error=error)


class ReadAnswer(bytes):
    """An answer's bytes with their JSON, read once: judged here, then handed to
    python-telegram-bot, whose `parse_json_payload` (overridden below) takes the reading
    instead of making it again. Reading a 4,000-character message's answer took a sixth of
    sending it."""

    body: dict[str, Any]

    @classmethod
    def of(cls, outcome: Outcome) -> bytes:
        """The outcome's payload, with its JSON when it was read."""
        if outcome.body is None:
            return outcome.payload
        answer = cls(outcome.payload)
        answer.body = outcome.body
        return answer


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _retry_after(body: dict[str, Any] | None) -> float | None:
    parameters = (body or {}).get("parameters") or {}
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _method(url: str) -> str:
    """The Bot API method of a request URL: never the URL itself, which holds the token."""
    return url.rsplit("/", 1)[-1]


class ResilientRequest(BaseRequest):
    """A request class that retries what Telegram did not take, around a real one."""

    def __init__(
        self,
        inner: BaseRequest,
        *,
        backoff: Backoff,
        sleep: Sleep = asyncio.sleep,
        on_token_refused: Callable[[], None] | None = None,
        pacer: Pace | None = None,
    ) -> None:
        self.inner = inner
        self.backoff = backoff
        self._sleep = sleep
        self._on_token_refused = on_token_refused
        self._pacer = pacer
        self._troubled = False

    @property
    def read_timeout(self) -> float | None:
        return self.inner.read_timeout

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def shutdown(self) -> None:
        await self.inner.shutdown()

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
        """Try until Telegram answers, the tries run out, or the token is refused."""
        timeouts = (read_timeout, write_timeout, connect_timeout, pool_timeout)
        failures = 0
        while True:
            await self._take_turn(url, request_data)
            outcome = await self._try(url, method, request_data, *timeouts)
            if outcome.verdict is Verdict.ANSWERED:
                self._recovered(url)
                return self._answer(outcome)
            if outcome.verdict is Verdict.TOKEN:
                if self._on_token_refused is not None:
                    self._on_token_refused()
                raise TokenRefused()
            failures += 1
            if not retrying() or self.backoff.exhausted(failures):
                raise _final_error(outcome, url)
            await self._wait(url, outcome, failures)

    async def _try(
        self, url: str, method: str, request_data: RequestData | None, *timeouts: Any
    ) -> Outcome:
        read, write, connect, pool = timeouts
        try:
            status, payload = await self.inner.do_request(
                url, method, request_data, read, write, connect, pool
            )
        except TelegramError as error:
            return judge_error(error)
        return judge_answer(status, payload)

    async def _take_turn(self, url: str, request_data: RequestData | None) -> None:
        """Wait for the pace to let a message go (reminders have taken theirs already)."""
        if self._pacer is None or not retrying() or _method(url).lower() not in PACED_METHODS:
            return
        chat_id = request_data.parameters.get("chat_id") if request_data else None
        if isinstance(chat_id, int):
            await self._pacer.wait_turn(chat_id)
            await self._pacer.just_before_sending(chat_id)

    def _answer(self, outcome: Outcome) -> tuple[int, bytes]:
        if outcome.error is not None:
            raise outcome.error
        return outcome.status, ReadAnswer.of(outcome)

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict[str, Any]:
        """The JSON `do_request` read already; any other payload read as the library does."""
        if isinstance(payload, ReadAnswer):
            return payload.body
        return BaseRequest.parse_json_payload(payload)

    async def _wait(self, url: str, outcome: Outcome, failures: int) -> None:
        wait = self.backoff.wait(failures) if outcome.retry_after is None else outcome.retry_after
        if outcome.retry_after is not None and self._pacer is not None:
            await self._pacer.pause(outcome.retry_after)  # every send waits, not this one
        if not self._troubled:
            self._troubled = True
            log.warning(
                "Telegram did not take %s (%s); trying again with backoff",
                _method(url),
                outcome.reason,
            )
        await self._sleep(wait)

    def _recovered(self, url: str) -> None:
        if self._troubled:
            self._troubled = False
            log.warning("Telegram answers again (%s)", _method(url))


def _final_error(outcome: Outcome, url: str) -> TelegramError:
    """The typed error a caller sees when no more tries are made."""
    method = _method(url)
    if outcome.retry_after is not None:
        return RetryAfter(int(outcome.retry_after))
    if outcome.verdict is Verdict.NOT_TAKEN:
        error: TelegramError = NotAccepted(f"Telegram did not take {method} ({outcome.reason})")
    else:
        error = NoAnswer(f"no usable answer to {method} ({outcome.reason})")
    if outcome.error is not None:
        error.__cause__ = outcome.error
    return error
