"""Who opened the Mini App: Telegram's signed launch data (`initData`), checked as Telegram
documents it for Web Apps.

Telegram signs the launch data with a key only it and the bot can derive:
`secret_key = HMAC-SHA-256(key="WebAppData", message=bot_token)`, and `hash` is the hex
HMAC-SHA-256 under that key of the data-check string: every other field as `key=value`
(values URL-decoded), sorted by key, joined by newlines. A page can forge anything but the
hash, so the server trusts only data whose hash it can recompute, and only for a while:
`auth_date` (seconds since the epoch) must be no older than the configured age.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

WEB_APP_DATA = b"WebAppData"
# Far more than Telegram sends (a few hundred bytes): anything longer is not launch data.
LONGEST_INIT_DATA = 4096
# A clock a little behind Telegram's must not refuse data signed a moment ago.
CLOCK_SKEW = timedelta(minutes=5)


class InitDataRefused(Exception):
    """The launch data is missing, forged, altered or too old; the reason is for the log."""


@dataclass(frozen=True)
class WebAppUser:
    """The Telegram user the launch data vouches for."""

    telegram_id: int
    first_name: str
    signed_at: datetime


def secret_key(bot_token: str) -> bytes:
    return hmac.new(WEB_APP_DATA, bot_token.encode(), hashlib.sha256).digest()


def data_check_string(fields: dict[str, str]) -> str:
    """Every field but `hash`, as `key=value`, sorted by key, one a line."""
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")


def signature(fields: dict[str, str], bot_token: str) -> str:
    check = data_check_string(fields).encode()
    return hmac.new(secret_key(bot_token), check, hashlib.sha256).hexdigest()


def check_init_data(
    raw: str | None, *, bot_token: str, now: datetime, max_age: timedelta
) -> WebAppUser:
    """The user `raw` (the page's `tgWebAppData`, as Telegram gave it) was signed for, or
    InitDataRefused when it is missing, not Telegram's, altered or older than `max_age`."""
    fields = _fields(raw)
    given = fields.get("hash", "")
    if not hmac.compare_digest(given.encode(), signature(fields, bot_token).encode()):
        raise InitDataRefused("the hash does not match")
    signed_at = _signed_at(fields)
    if signed_at < now - max_age:
        raise InitDataRefused("auth_date is older than the allowed age")
    if signed_at > now + CLOCK_SKEW:
        raise InitDataRefused("auth_date is in the future")
    return WebAppUser(*_user(fields), signed_at=signed_at)


def _fields(raw: str | None) -> dict[str, str]:
    if not raw or len(raw) > LONGEST_INIT_DATA:
        raise InitDataRefused("no launch data")
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InitDataRefused("not a query string") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InitDataRefused("a field appears twice")
    if "hash" not in fields:
        raise InitDataRefused("no hash")
    return fields


def _signed_at(fields: dict[str, str]) -> datetime:
    stamp = fields.get("auth_date", "")
    if not (stamp.isascii() and stamp.isdecimal()) or len(stamp) > 12:
        raise InitDataRefused("no auth_date")
    return datetime.fromtimestamp(int(stamp), UTC)


def _user(fields: dict[str, str]) -> tuple[int, str]:
    try:
        user = json.loads(fields.get("user", ""))
    except ValueError:
        raise InitDataRefused("no user") from None
    if not isinstance(user, dict) or not isinstance(user.get("id"), int):
        raise InitDataRefused("no user id")
    return user["id"], str(user.get("first_name", ""))


def sign_init_data(
    *, bot_token: str, telegram_id: int, first_name: str, at: datetime, query_id: str = "AA"
) -> str:
    """Launch data for a user as Telegram would sign it: for the demo's signed-in link (the
    bot holds the token, so it can vouch for its own members) and for tests."""
    user = json.dumps({"id": telegram_id, "first_name": first_name}, separators=(",", ":"))
    fields = {"auth_date": str(int(at.timestamp())), "query_id": query_id, "user": user}
    return urlencode({**fields, "hash": signature(fields, bot_token)})
