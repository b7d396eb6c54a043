"""Logging set-up that never writes the bot token, whatever raised and however it is shown.

The token is part of every Bot API URL, so it turns up in exception texts and tracebacks
(httpx errors, `InvalidToken`), not only in log messages. The formatter redacts the whole
formatted record, traceback included; warnings and uncaught exceptions are routed through
logging so they pass the same formatter.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType

REDACTED = "<token>"


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then replaces the token (and its secret half) wherever it appears."""

    def __init__(self, fmt: str, secrets: list[str]) -> None:
        super().__init__(fmt)
        # Longest first, so the whole token is replaced before its secret half.
        self.secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def token_secrets(token: str) -> list[str]:
    """The token, and the part after the colon: either alone gives the bot away."""
    _, _, secret = token.partition(":")
    return [token, secret] if len(secret) >= 8 else [token]


def configure_logging(*, token: str | None, level: int = logging.INFO) -> None:
    """Log to stderr through the redacting formatter; quieten httpx's per-request lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        RedactingFormatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s", token_secrets(token or "")
        )
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(
        args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback
    )


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    logging.getLogger("csp-bot").critical("uncaught exception", exc_info=(kind, error, traceback))
