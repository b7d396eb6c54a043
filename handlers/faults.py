"""The typed Bot API failures callers handle, and the switch that turns retrying off.

The transport (`bot.transport`) raises these and honours the switch; the delivery of
reminders (`handlers.delivery`) sets it and handles them. They live here, below both, so
that delivery does not reach up into the assembly layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from telegram.error import InvalidToken, NetworkError

TOKEN_VARIABLE = "CSPBOT_TELEGRAM_TOKEN"
_retrying: ContextVar[bool] = ContextVar("csp_bot_transport_retrying", default=True)


class NotAccepted(NetworkError):
    """Telegram (or a proxy before it) did not take the request: sending again is safe."""


class NoAnswer(NetworkError):
    """The request left and no usable answer came back: it may or may not have arrived."""


class TokenRefused(InvalidToken):
    """Telegram answered 401: the token is revoked or wrong. Final."""

    def __init__(self) -> None:
        super().__init__(
            f"{TOKEN_VARIABLE} was refused by Telegram (401 Unauthorized): "
            "check the token with @BotFather"
        )


@contextmanager
def deciding_for_ourselves() -> Iterator[None]:
    """Calls made in this block are tried once; the caller handles the typed failure."""
    token = _retrying.set(False)
    try:
        yield
    finally:
        _retrying.reset(token)


def retrying() -> bool:
    """Whether the transport may try a call again (False inside `deciding_for_ourselves`)."""
    return _retrying.get()
