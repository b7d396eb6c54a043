"""A loopback Telegram Bot API emulator, for `csp-bot demo` and the end-to-end tests.

`BotApiEmulator` holds the state of one bot's Telegram: the updates users send, the messages
the bot sends back, its command menu and files. It answers Bot API calls like Telegram does
(including its errors) over two transports: `EmulatorServer`, a real HTTP server on loopback,
and `EmulatorRequest`, a python-telegram-bot request class that calls it in-process.

`emulator.faults` makes it misbehave on purpose, the same way over both transports: `Fault`
rules answer error statuses or non-JSON bodies, drop answers, reset connections or delay one
chat. `EmulatorServer.pause()` refuses connections outright until `resume()`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import copy
import email.parser
import email.policy
import json
import math
import mimetypes
import random
import re
import select
import socket
import struct
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import collapse_rfc2231_value
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, NoReturn, TypeVar, cast, get_args
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

__all__ = [
    "BotApiEmulator",
    "EmulatedUser",
    "EmulatorRequest",
    "EmulatorServer",
    "Fault",
    "FaultInjected",
    "FaultKind",
    "FaultSet",
    "SentMessage",
    "UploadedFile",
]

JSON = dict[str, Any]
Params = dict[str, Any]
MessageKind = Literal["text", "document", "photo"]
FaultKind = Literal["status", "malformed", "drop", "reset", "delay"]
_T = TypeVar("_T")

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64


# --- what users and the bot exchange -------------------------------------------------------


@dataclass
class EmulatedUser:
    """A Telegram user the test or demo acts as."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None

    @property
    def full_name(self) -> str:
        """First and last name, as Telegram clients show them."""
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name

    def to_json(self) -> JSON:
        """The Bot API `User` object."""
        user: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        return user | _present(last_name=self.last_name, username=self.username)


@dataclass
class SentMessage:
    """A message the bot sent, as its recipient sees it now (after any edits)."""

    message_id: int
    chat_id: int
    text: str  # exactly as the bot sent it (markup included); a file's caption, or ""
    parse_mode: str | None = None
    reply_markup: JSON | None = None
    edits: list[str] = field(default_factory=list)  # earlier texts, oldest first
    link_previews: bool = True  # False when sent with link_preview_options.is_disabled
    kind: MessageKind = "text"
    filename: str | None = None
    content: bytes | None = None
    deleted: bool = False

    @property
    def plain_text(self) -> str:
        """The text with HTML markup rendered away, as the user reads it."""
        if (self.parse_mode or "").lower() != "html":
            return self.text
        return _render_html(self.text)[0]


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart upload."""

    filename: str
    content: bytes
    mimetype: str = "application/octet-stream"


@dataclass(frozen=True)
class _StoredFile:
    """A file Telegram holds: uploaded by the bot or sent by a user."""

    file_id: str
    file_unique_id: str
    filename: str
    mime_type: str
    content: bytes | None  # None for files "sent" by URL: nothing was fetched
    file_path: str

    def document_json(self) -> JSON:
        """The Bot API `Document` object."""
        document = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        return document | {"file_name": self.filename, "mime_type": self.mime_type} | self._size()

    def photo_json(self) -> list[JSON]:
        """The Bot API photo: a list of `PhotoSize`, here a single size."""
        size = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        return [size | {"width": 800, "height": 600} | self._size()]

    def file_json(self) -> JSON:
        """The Bot API `File` object that getFile returns."""
        file = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        return file | {"file_path": self.file_path} | self._size()

    def _size(self) -> JSON:
        return {} if self.content is None else {"file_size": len(self.content)}


class _ApiError(Exception):
    """A Bot API error answer; raised inside a method, turned into the response body."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        """The response body Telegram sends for this error."""
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        return body | ({"parameters": self.parameters} if self.parameters else {})


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


def _present(**fields: Any) -> JSON:
    """The fields that have a value: Telegram omits empty optional fields."""
    return {name: value for name, value in fields.items() if value is not None}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _utf16_len(text: str) -> int:
    """Telegram measures entity offsets and lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


# --- decoding parameters -------------------------------------------------------------------

# Form fields are all strings; Telegram types them by name. PTB sends every non-string value
# JSON-encoded but strings as they are, so a text "123" and a chat_id 123 look alike: decode by
# field name, never by trying json.loads on everything.
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "commands",
        "scope",
        "allowed_updates",
        "reply_parameters",
        "link_preview_options",
        "entities",
        "caption_entities",
        "media",
        "message_ids",
        "menu_button",
    }
)
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "reply_to_message_id",
        "cache_time",
        "from_chat_id",
        "message_thread_id",
        "user_id",
    }
)
_FLOAT_FIELDS = frozenset({"timeout"})
_BOOL_FIELDS = frozenset(
    {
        "show_alert",
        "disable_notification",
        "protect_content",
        "drop_pending_updates",
        "allow_sending_without_reply",
        "has_spoiler",
        "disable_content_type_detection",
        "allow_paid_broadcast",
        "disable_web_page_preview",
    }
)


def _decode_params(raw: Mapping[str, Any]) -> Params:
    """All parameters typed as Telegram would read them."""
    return {name: _decode(name, value) for name, value in raw.items()}


def _decode(name: str, value: Any) -> Any:
    """One parameter: strings from forms are decoded; JSON bodies arrive typed already."""
    if not isinstance(value, str):
        return value
    if name in _JSON_FIELDS:
        return _json_field(name, value)
    if name in _INT_FIELDS:
        return _int_field(name, value)
    if name in _FLOAT_FIELDS:
        return _float_field(name, value)
    if name in _BOOL_FIELDS:
        return value.strip().lower() in ("true", "1")
    return value


def _json_field(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        raise _bad(f"can't parse {name} JSON object") from None


def _int_field(name: str, value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        if name == "chat_id":
            return value  # an @username; refused later as "chat not found"
        raise _bad(f"{name} is invalid") from None


def _float_field(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise _bad(f"{name} is invalid") from None


def _need(params: Params, name: str, kind: type[_T]) -> _T:
    """A required parameter of the given type."""
    value = params.get(name)
    if value is None or value == "":
        raise _bad(f"{name} is empty")
    if not isinstance(value, kind):
        raise _bad(f"{name} is invalid")
    return value


def _chat_id(params: Params) -> int:
    value = params.get("chat_id")
    if value is None or value == "":
        raise _bad("chat_id is empty")
    if not isinstance(value, int):
        raise _bad("chat not found")
    return value


def _parse_mode(params: Params) -> str | None:
    mode = params.get("parse_mode") or None
    if mode is not None and str(mode).lower() not in ("html", "markdown", "markdownv2"):
        raise _bad("unsupported parse_mode")
    return cast("str | None", mode)


def _previews_disabled(params: Params) -> bool:
    """Whether the message asks Telegram to show no link previews."""
    options = params.get("link_preview_options")
    return isinstance(options, dict) and bool(options.get("is_disabled"))


def _reply_markup(params: Params) -> JSON | None:
    """The reply markup, checked the way Telegram checks inline keyboards."""
    markup = params.get("reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard", [])
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup should be an Array')
    for row in rows:
        for button in row:
            _check_inline_button(button)
    return markup


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not button.get("text"):
        raise _bad("can't parse inline keyboard button: Text buttons are unallowed")
    data = button.get("callback_data")
    if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
        raise _bad("BUTTON_DATA_INVALID")
    if len(button) == 1:
        raise _bad("can't parse inline keyboard button: Text buttons are unallowed")


def _check_command(command: Any) -> JSON:
    """A BotCommand as stored: only its name and description."""
    if not isinstance(command, dict):
        raise _bad("can't parse BotCommand")
    name, description = command.get("command"), command.get("description")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name):
        raise _bad("BOT_COMMAND_INVALID")
    if not isinstance(description, str) or not 1 <= len(description) <= 256:
        raise _bad("command description must be non-empty")
    return {"command": name, "description": description}


def _scope_key(params: Params) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")


# --- Telegram's HTML parse mode --------------------------------------------------------------

_TAG = re.compile(r"<(/?)([^\s>/]*)([^>]*)>")
_HTML_ENTITY = re.compile(r"&(?:#x([0-9a-fA-F]+)|#([0-9]+)|(lt|gt|amp|quot));")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ATTRIBUTE = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


def _entities_error(detail: str) -> _ApiError:
    return _bad(f"can't parse entities: {detail}")


@dataclass(frozen=True)
class _Place:
    """Where a tag starts in the HTML, said as Telegram says it in its errors: a UTF-8 byte
    offset, counted only for an error (counting it for every tag costs a pass over the text
    before it, each time)."""

    source: str
    index: int

    def __str__(self) -> str:
        return str(len(self.source[: self.index].encode()))


def _unescape(raw: str) -> str:
    """Decode the entities Telegram knows; anything else (a bare '&') stays as typed."""
    return _HTML_ENTITY.sub(_decode_entity, raw)


def _decode_entity(match: re.Match[str]) -> str:
    hex_code, decimal_code, name = match.groups()
    if name:
        return _NAMED_ENTITIES[name]
    code = int(hex_code, 16) if hex_code else int(decimal_code)
    valid = 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF
    return chr(code) if valid else match.group(0)


def _attributes(raw: str) -> dict[str, str]:
    found = {}
    for match in _ATTRIBUTE.finditer(raw):
        found[match[1].lower()] = next(value for value in match.groups()[1:] if value is not None)
    return found


@dataclass
class _OpenTag:
    name: str
    start: int
    entity: JSON | None


class _HtmlText:
    """Plain text and entities accumulated while reading Telegram-flavoured HTML."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0  # in UTF-16 units, like entity offsets
        self.stack: list[_OpenTag] = []
        self.entities: list[JSON] = []

    def data(self, raw: str) -> None:
        """Text between tags."""
        text = _unescape(raw)
        self.parts.append(text)
        self.length += _utf16_len(text)

    def open(self, name: str, raw_attributes: str, offset: _Place) -> None:
        """A start tag: checked now, turned into an entity when it closes."""
        if name not in _ENTITY_TYPES:
            raise _entities_error(f'Unsupported start tag "{name}" at byte offset {offset}')
        attributes = _attributes(raw_attributes)
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise _entities_error(
                f'Tag "span" must have class "tg-spoiler" at byte offset {offset}'
            )
        entity = _tag_entity(name, attributes, raw_attributes)
        parent = self.stack[-1] if self.stack else None
        if name == "code" and parent is not None and parent.name == "pre":
            # Telegram folds <pre><code class="language-x"> into one pre entity with a language.
            language = attributes.get("class", "").removeprefix("language-")
            if language and parent.entity is not None:
                parent.entity["language"] = language
            entity = None
        self.stack.append(_OpenTag(name, self.length, entity))

    def close(self, name: str, offset: _Place) -> None:
        """An end tag: it must match the innermost open tag."""
        if not self.stack:
            raise _entities_error(f"Unexpected end tag at byte offset {offset}")
        top = self.stack.pop()
        if top.name != name:
            raise _entities_error(
                f'Unmatched end tag at byte offset {offset}, expected "</{top.name}>", '
                f'found "</{name}>"'
            )
        if top.entity is not None and self.length > top.start:
            self.entities.append(
                top.entity | {"offset": top.start, "length": self.length - top.start}
            )

    def finish(self) -> tuple[str, list[JSON]]:
        """The plain text and its entities, in Telegram's order."""
        if self.stack:
            name = self.stack[-1].name
            raise _entities_error(f'Can\'t find end tag corresponding to start tag "{name}"')
        entities = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), entities


def _tag_entity(name: str, attributes: dict[str, str], raw_attributes: str) -> JSON | None:
    """The MessageEntity a tag stands for (without its position)."""
    if name == "a":
        href = attributes.get("href")
        return {"type": "text_link", "url": href} if href else None
    if name == "blockquote" and "expandable" in raw_attributes:
        return {"type": "expandable_blockquote"}
    if name == "tg-emoji":
        return {"type": "custom_emoji", "custom_emoji_id": attributes.get("emoji-id", "")}
    return {"type": _ENTITY_TYPES[name]}


def _render_html(source: str) -> tuple[str, list[JSON]]:
    """Read Telegram's HTML: plain text and entities, or the error Telegram answers."""
    text = _HtmlText()
    position = 0
    while (start := source.find("<", position)) >= 0:
        text.data(source[position:start])
        tag = _TAG.match(source, start)
        offset = _Place(source, start)
        if tag is None:
            raise _entities_error(f"Unclosed start tag at byte offset {offset}")
        closing, name = tag[1] == "/", tag[2].lower()
        if closing:
            text.close(name, offset)
        else:
            text.open(name, tag[3], offset)
        position = tag.end()
    text.data(source[position:])
    return text.finish()


def _render(
    text: str, parse_mode: str | None, *, limit: int, too_long: str
) -> tuple[str, list[JSON]]:
    """Text as Telegram stores it, checked for markup errors and length."""
    plain, entities = _render_html(text) if (parse_mode or "").lower() == "html" else (text, [])
    if len(plain) > limit:
        raise _bad(too_long)
    return plain, entities


def _text_fields(name: str, plain: str, entities: list[JSON]) -> JSON:
    entities_name = "entities" if name == "text" else f"{name}_entities"
    return {name: plain} | ({entities_name: entities} if entities else {})


def _markup_field(markup: JSON | None) -> JSON:
    """Telegram returns only inline keyboards in the Message; reply keyboards stay client-side."""
    return {"reply_markup": markup} if markup and "inline_keyboard" in markup else {}


def _without(message: JSON, *names: str) -> JSON:
    return {key: value for key, value in message.items() if key not in names}


def _visible(message: JSON) -> tuple[Any, ...]:
    """What an edit must change, or Telegram answers "message is not modified"."""
    fields = ("text", "entities", "caption", "caption_entities", "reply_markup")
    return tuple(message.get(name) for name in fields)


def _command_entities(text: str) -> list[JSON]:
    """The bot_command entity Telegram adds to a message starting with a command."""
    match = re.match(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?", text)
    if match is None:
        return []
    return [{"type": "bot_command", "offset": 0, "length": _utf16_len(match.group())}]


# --- flood control ---------------------------------------------------------------------------

# When the request being answered reached this machine (`time.monotonic`), where the HTTP
# transport knows it: Telegram counts its limits on arrival, and an emulator kept from the
# CPU by a busy machine would otherwise count requests that came evenly spaced as a burst.
_ARRIVED_AT: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "arrived_at", default=None
)


def _wait_seconds(sent: deque[float], window: float, limit: int, now: float) -> int:
    """Seconds until one more send fits in this sliding window; 0 if it fits now.

    `sent` holds arrival times in order, and `now` is this request's arrival: over HTTP,
    requests that arrived close together may be answered in another order, so what arrived
    after it is not counted, and what is dropped is well outside any window still asked about.
    """
    while sent and sent[0] <= now - 2 * window:
        sent.popleft()
    first = bisect.bisect_right(sent, now - window)
    if bisect.bisect_right(sent, now) - first < limit:
        return 0
    return max(1, math.ceil(sent[first] + window - now))


# Telegram's FAQ: "avoid sending more than one message per second" in a chat; "we may allow
# short bursts that go over this limit". Modelled as a bucket of 3 filled at 1 a second.
CHAT_BURST = 3
CHAT_PER_SECOND = 1.0


class _FloodControl:
    """Telegram's published send limits: 30/s overall, 1/s per private chat (in short
    bursts of up to 3), 20/min per group."""

    def __init__(self) -> None:
        self._overall: deque[float] = deque()
        self._groups: dict[int, deque[float]] = {}
        self._buckets: dict[int, tuple[float, float]] = {}  # private chat: (tokens, at)
        # The 429s answered, by the limit that was reached (overall counted first).
        self.refusals: Counter[str] = Counter()

    def retry_after(self, chat_id: int, now: float) -> int:
        """Seconds the bot must wait before sending to this chat; 0 to send now."""
        overall = _wait_seconds(self._overall, 1.0, 30, now)
        if chat_id < 0:
            own = _wait_seconds(self._groups.setdefault(chat_id, deque()), 60.0, 20, now)
        else:
            missing = 1.0 - self._tokens(chat_id, now)
            own = 0 if missing <= 0 else max(1, math.ceil(missing / CHAT_PER_SECOND))
        if overall:
            self.refusals["overall"] += 1
        elif own:
            self.refusals["group" if chat_id < 0 else "chat"] += 1
        return max(overall, own)

    def record(self, chat_id: int, now: float) -> None:
        bisect.insort(self._overall, now)
        if chat_id < 0:
            bisect.insort(self._groups.setdefault(chat_id, deque()), now)
        else:  # an arrival answered after a later one must not move the bucket's time back
            _, at = self._buckets.get(chat_id, (0.0, now))
            self._buckets[chat_id] = (self._tokens(chat_id, now) - 1.0, max(now, at))

    def _tokens(self, chat_id: int, now: float) -> float:
        tokens, at = self._buckets.get(chat_id, (float(CHAT_BURST), now))
        return min(float(CHAT_BURST), tokens + max(0.0, now - at) * CHAT_PER_SECOND)


# --- injected faults -------------------------------------------------------------------------

_FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))
_DROP_HOLD = 30.0  # how long a dropped answer keeps the connection by default
_MALFORMED_BODY = b"<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>\n"


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One rule for misbehaving like a flaky network or Telegram: which calls, and how."""

    kind: FaultKind
    methods: Collection[str] = frozenset()  # Bot API method names, any case; empty = all
    chat_id: int | None = None  # only calls with this chat_id parameter
    status: int | None = None  # "status": the error (default 500); "malformed": default 200
    retry_after: int = 1  # the retry_after a 429 answer carries
    delay: float = 0.0  # "delay": seconds before answering; "drop": hold (0 = 30 s)
    times: int | None = None  # matching calls it hits before it is spent; None = until removed
    probability: float = 1.0  # chance that a matching call is hit (the emulator's seeded rng)

    def __post_init__(self) -> None:
        """Normalise the method names and refuse rules that cannot be acted out."""
        names = [self.methods] if isinstance(self.methods, str) else self.methods
        object.__setattr__(self, "methods", frozenset(name.lower() for name in names))
        if self.kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.kind == "status" and not 400 <= self.http_status <= 599:
            raise ValueError(f"a status fault needs an error status, not {self.http_status}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None)")
        if not 0.0 <= self.probability <= 1.0 or self.delay < 0 or self.retry_after < 1:
            raise ValueError("probability must be in 0..1, delay >= 0, retry_after >= 1")

    @property
    def http_status(self) -> int:
        """The HTTP status this fault answers with."""
        if self.status is not None:
            return self.status
        return 500 if self.kind == "status" else 200

    @property
    def hold(self) -> float:
        """How long a dropped call keeps its connection before closing it unanswered."""
        return self.delay or _DROP_HOLD

    def applies(self, method: str, chat_id: int | None) -> bool:
        """Whether a call of `method` (lower case) to `chat_id` is one this rule targets."""
        if self.methods and method not in self.methods:
            return False
        return self.chat_id is None or self.chat_id == chat_id

    def error_body(self) -> JSON:
        """The Telegram-style error body of a "status" fault."""
        code = self.http_status
        if code == 429:
            description = f"Too Many Requests: retry after {self.retry_after}"
            return _ApiError(429, description, {"retry_after": self.retry_after}).body()
        return _ApiError(code, _status_phrase(code)).body()


def _status_phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return f"Error {code}"


class FaultInjected(Exception):
    """Raised by `BotApiEmulator.call` for a fault only a transport can act out."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(f"injected fault: {fault.kind}")
        self.fault = fault


@dataclass
class _Rule:
    fault: Fault
    left: int | None


class FaultSet:
    """The faults an emulator applies, first added first; thread-safe."""

    def __init__(self, rng: random.Random) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._rng = rng
        self._hits: Counter[str] = Counter()

    def add(self, fault: Fault) -> Fault:
        """Apply `fault` from now on (until spent or removed); returns it, to remove later."""
        with self._lock:
            self._rules.append(_Rule(fault, fault.times))
        return fault

    def remove(self, fault: Fault) -> None:
        """Stop applying `fault` (a no-op if it is spent already)."""
        with self._lock:
            self._rules = [rule for rule in self._rules if rule.fault is not fault]

    def clear(self) -> None:
        """Remove every fault; the hit counts stay."""
        with self._lock:
            self._rules.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._rules)

    def __iter__(self) -> Iterator[Fault]:
        with self._lock:
            return iter([rule.fault for rule in self._rules])

    @property
    def hits(self) -> dict[str, int]:
        """How many calls each kind of fault hit."""
        with self._lock:
            return dict(self._hits)

    def take(self, method: str, chat_id: int | None) -> Fault | None:
        """The fault that hits this call, if any, counted and spent by one."""
        with self._lock:
            for rule in self._rules:
                if rule.fault.applies(method, chat_id) and self._fires(rule.fault):
                    self._spend(rule)
                    return rule.fault
        return None

    def _fires(self, fault: Fault) -> bool:
        # Only matching calls draw from the rng, so a seed replays the same run.
        return fault.probability >= 1.0 or self._rng.random() < fault.probability

    def _spend(self, rule: _Rule) -> None:
        self._hits[rule.fault.kind] += 1
        if rule.left is not None:
            rule.left -= 1
            if rule.left == 0:
                self._rules.remove(rule)


def _fault_chat(params: Mapping[str, Any]) -> int | None:
    """The chat a call is for, as a fault targets it; None if it names none (or a username)."""
    try:
        chat_id = _decode("chat_id", params.get("chat_id"))
    except _ApiError:
        return None
    return chat_id if isinstance(chat_id, int) else None


def _wait(seconds: float, cancel: threading.Event | None) -> None:
    """Sleep, cut short when the transport closes (so stop() never waits for a delay)."""
    if cancel is None:
        time.sleep(seconds)
    else:
        cancel.wait(seconds)


# --- the emulator ----------------------------------------------------------------------------

# What an administrator's ChatMember carries besides its status and user.
_ADMIN_RIGHTS: JSON = {
    "can_be_edited": False,
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": False,
    "can_manage_video_chats": False,
    "can_restrict_members": False,
    "can_promote_members": False,
    "can_change_info": False,
    "can_invite_users": False,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
}
_SENDING_METHODS = frozenset({"sendmessage", "senddocument", "sendphoto"})
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)


class BotApiEmulator:
    """One bot's view of Telegram, answering Bot API calls; safe to use from many threads."""

    def __init__(
        self,
        *,
        token: str = "123456:EMULATOR",
        bot_username: str = "csp_demo_bot",
        bot_id: int = 123456,
        bot_name: str = "CSP Bot",
        clock: Callable[[], datetime] | None = None,
        enforce_limits: bool = False,
        seed: int = 0,
        first_update_id: int = 1,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.enforce_limits = enforce_limits
        self.too_many_requests = 0
        self.events = 0  # bumped whenever the user's view changes
        # `time.perf_counter()` at that moment: benchmarks time replies by it, not by when
        # their own waiting wakes up.
        self.changed_at = 0.0
        self._clock = clock or _utc_now
        self._cond = threading.Condition()
        self._pending: list[JSON] = []
        # Benchmarks that run several emulators over one database start each at its own
        # number, as Telegram would: the bot takes a repeated id for a redelivery.
        self._next_update_id = first_update_id
        self._next_query_id = 1
        self._next_message_ids: dict[int, int] = {}
        self._chats: dict[int, JSON] = {}
        self._sent: list[SentMessage] = []
        # The same messages by chat: readers that poll one chat (a benchmark's partners, many
        # times a second) then hold the lock for that chat's messages, not for every one.
        self._sent_to: dict[int, list[SentMessage]] = {}
        self._sent_by_key: dict[tuple[int, int], SentMessage] = {}
        self._message_json: dict[tuple[int, int], JSON] = {}
        self._open_queries: dict[str, JSON] = {}
        self._callback_answers: list[JSON] = []
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        # The bot's default menu button (Telegram's own is the command list).
        self.menu_button: JSON = {"type": "commands"}
        self._files: dict[str, _StoredFile] = {}
        self._refusals: dict[str, _ApiError] = {}
        self._blocked: set[int] = set()
        self._left: set[int] = set()  # groups the bot has left (leaveChat) or was removed from
        self._flood = _FloodControl()
        self._pollers = 0
        self._offsets: list[int | None] = []
        self.random = random.Random(seed)  # seeded: faults with a probability replay exactly
        self.faults = FaultSet(self.random)
        self.webhook: JSON = {}  # what setWebhook was last given: url, secret_token
        self._methods: dict[str, Callable[[Params], Any]] = {
            "getme": self._get_me,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "setchatmenubutton": self._set_chat_menu_button,
            "getchatmenubutton": self._get_chat_menu_button,
            "sendmessage": self._send_message,
            "senddocument": lambda params: self._send_file("document", params),
            "sendphoto": lambda params: self._send_file("photo", params),
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "answercallbackquery": self._answer_callback_query,
            "sendchataction": self._send_chat_action,
            "getfile": self._get_file,
            "leavechat": self._leave_chat,
            "close": lambda params: True,
            "logout": lambda params: True,
        }

    # --- the Bot API side ---

    def call(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        cancel: threading.Event | None = None,
    ) -> tuple[int, JSON]:
        """Answer one Bot API call: (HTTP status, response body). `cancel` ends a long poll."""
        status, body = self.answer(method, params, cancel=cancel)
        return status, json.loads(body)

    def answer(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        cancel: threading.Event | None = None,
    ) -> tuple[int, bytes]:
        """`call`, with the body as the JSON sent back (what the transports send).

        A fault that hits the call answers an error, waits first, or raises `FaultInjected` for
        the transport to act out: before processing ("malformed", "reset") or after ("drop").
        """
        name = method.lower()  # Telegram matches method names case-insensitively
        if name not in self._methods and name != "getupdates":
            return 404, _encoded({"ok": False, "error_code": 404, "description": "Not Found"})
        fault = self.faults.take(name, _fault_chat(params))
        if fault is not None and fault.kind == "delay":
            _wait(fault.delay, cancel)  # outside the lock: other chats' calls go on meanwhile
        if fault is None or fault.kind == "delay":
            return self._process(name, params, cancel)
        if fault.kind == "status":
            return fault.http_status, _encoded(fault.error_body())
        if fault.kind == "drop":
            self._process(name, params, cancel)
        raise FaultInjected(fault)

    def _process(
        self, name: str, params: Mapping[str, Any], cancel: threading.Event | None
    ) -> tuple[int, bytes]:
        """Do what Telegram does for a call: its result or its error."""
        try:
            with self._cond:
                # Encoded under the lock: the result may share dicts with the emulator's
                # state (encoding is the copy, and costs less than copying first).
                result = self._dispatch(name, _decode_params(params), cancel)
                return 200, _encoded({"ok": True, "result": result})
        except _ApiError as error:
            return error.code, _encoded(error.body())

    def _dispatch(self, name: str, params: Params, cancel: threading.Event | None) -> Any:
        refusal = self._refusals.get(name)
        if refusal is not None:
            raise refusal
        if name == "getupdates":
            return self._get_updates(params, cancel)
        return self._methods[name](params)

    def refuse(self, method: str, description: str | None, *, error_code: int = 400) -> None:
        """Make `method` fail with this error from now on; None lets it succeed again."""
        with self._cond:
            if description is None:
                self._refusals.pop(method.lower(), None)
                return
            if error_code == 400 and not description.startswith("Bad Request"):
                description = f"Bad Request: {description}"
            self._refusals[method.lower()] = _ApiError(error_code, description)

    def inject(self, fault: Fault) -> Fault:
        """Apply a fault from now on: `faults.add`, for short."""
        return self.faults.add(fault)

    @property
    def fault_hits(self) -> dict[str, int]:
        """How many calls each kind of fault hit."""
        return self.faults.hits

    @property
    def get_updates_offsets(self) -> list[int | None]:
        """The offset of every processed getUpdates call, in order (None: no offset)."""
        with self._cond:
            return list(self._offsets)

    def block(self, chat_id: int, blocked: bool = True) -> None:
        """The user of a private chat blocks (or unblocks) the bot: sends get 403."""
        with self._cond:
            if blocked:
                self._blocked.add(chat_id)
            else:
                self._blocked.discard(chat_id)

    def interrupt(self, cancel: threading.Event) -> None:
        """Set a caller's cancel event and wake any long poll waiting on it."""
        with self._cond:
            cancel.set()
            self._cond.notify_all()

    def _get_me(self, params: Params) -> JSON:
        return self.bot_user() | {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def bot_user(self) -> JSON:
        """The bot as a Bot API `User`."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_name,
            "username": self.bot_username,
        }

    def _get_updates(self, params: Params, cancel: threading.Event | None) -> list[JSON]:
        """Long polling: wait up to `timeout` seconds for an unconfirmed update."""
        offset = params.get("offset")
        self._offsets.append(offset if isinstance(offset, int) else None)
        self._confirm(offset)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        self._pollers += 1
        self._cond.notify_all()
        try:
            self._cond.wait_for(lambda: bool(self._pending) or _is_set(cancel), timeout)
        finally:
            self._pollers -= 1
        return self._pending[:limit]

    def _confirm(self, offset: Any) -> None:
        """Forget updates before `offset`; a negative offset keeps only the last few."""
        if not isinstance(offset, int) or offset == 0:
            return
        if offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        else:
            self._pending = self._pending[offset:]

    def _delete_webhook(self, params: Params) -> bool:
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _set_webhook(self, params: Params) -> bool:
        self.webhook = {
            "url": _need(params, "url", str),
            "secret_token": params.get("secret_token"),
        }
        return True

    def _get_webhook_info(self, params: Params) -> JSON:
        return {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    def _set_my_commands(self, params: Params) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("parameter commands must be an array")
        self._commands[_scope_key(params)] = [_check_command(c) for c in commands]
        self._changed()
        return True

    def _set_chat_menu_button(self, params: Params) -> bool:
        button = params.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in (
            "commands",
            "web_app",
            "default",
        ):
            raise _bad("can't parse menu button")
        if button["type"] == "web_app" and not str(button.get("web_app", {}).get("url", "")):
            raise _bad("can't parse menu button: web app URL is required")
        self.menu_button = button
        self._changed()
        return True

    def _get_chat_menu_button(self, params: Params) -> JSON:
        return self.menu_button

    def _get_my_commands(self, params: Params) -> list[JSON]:
        return self._commands.get(_scope_key(params), [])

    def _delete_my_commands(self, params: Params) -> bool:
        self._commands.pop(_scope_key(params), None)
        return True

    def _sending_to(self, params: Params) -> int:
        """The chat a send goes to, once blocking and flood control let it through."""
        chat_id = _chat_id(params)
        if chat_id in self._blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        if chat_id in self._left:
            raise self._not_a_member(chat_id)
        if self.enforce_limits:
            self._check_flood(chat_id)
        return chat_id

    @property
    def refusals_by_limit(self) -> dict[str, int]:
        """The 429s answered, by the limit reached: "overall", "chat" or "group"."""
        return dict(self._flood.refusals)

    def _check_flood(self, chat_id: int) -> None:
        now = _ARRIVED_AT.get() or time.monotonic()
        wait = self._flood.retry_after(chat_id, now)
        if wait:
            self.too_many_requests += 1
            description = f"Too Many Requests: retry after {wait}"
            raise _ApiError(429, description, {"retry_after": wait})
        self._flood.record(chat_id, now)

    def _send_message(self, params: Params) -> JSON:
        chat_id = self._sending_to(params)
        text = str(params.get("text") or "")
        parse_mode = _parse_mode(params)
        plain, entities = _render(
            text, parse_mode, limit=MESSAGE_LIMIT, too_long="message is too long"
        )
        if not plain.strip():
            raise _bad("message text is empty")
        markup = _reply_markup(params)
        message = self._bot_message(chat_id) | _text_fields("text", plain, entities)
        sent = SentMessage(
            message["message_id"],
            chat_id,
            text,
            parse_mode,
            markup,
            link_previews=not _previews_disabled(params),
        )
        return self._remember(sent, message | _markup_field(markup))

    def _send_file(self, kind: Literal["document", "photo"], params: Params) -> JSON:
        chat_id = self._sending_to(params)
        stored = self._input_file(params, kind)
        caption = str(params.get("caption") or "")
        parse_mode = _parse_mode(params)
        plain, entities = _render(
            caption, parse_mode, limit=CAPTION_LIMIT, too_long="message caption is too long"
        )
        markup = _reply_markup(params)
        media = stored.document_json() if kind == "document" else stored.photo_json()
        message = self._bot_message(chat_id) | {kind: media} | _markup_field(markup)
        if plain:
            message |= _text_fields("caption", plain, entities)
        sent = SentMessage(
            message["message_id"],
            chat_id,
            caption,
            parse_mode,
            markup,
            kind=kind,
            filename=stored.filename,
            content=stored.content,
        )
        return self._remember(sent, message)

    def _input_file(self, params: Params, name: str) -> _StoredFile:
        """The file a send names: an upload, an attach:// part, a known file_id or a URL."""
        value = params.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
        if isinstance(value, UploadedFile):
            return self._store_file(name, value.filename, value.content, value.mimetype)
        if value is None:
            raise _bad(f"there is no {name} in the request")
        if isinstance(value, str) and value in self._files:
            return self._files[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            filename = urlsplit(value).path.rsplit("/", 1)[-1] or "file"
            mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            return self._store_file(name, filename, None, mime)
        raise _bad("wrong file identifier/HTTP URL specified")

    def _store_file(
        self, kind: str, filename: str, content: bytes | None, mime: str
    ) -> _StoredFile:
        number = len(self._files) + 1
        suffix = "." + filename.rsplit(".", 1)[-1] if "." in filename else ""
        stored = _StoredFile(
            file_id=f"emu-{kind}-{number}",
            file_unique_id=f"emu-u{number}",
            filename=filename,
            mime_type=mime,
            content=content,
            file_path=f"{kind}s/file_{number}{suffix}",
        )
        self._files[stored.file_id] = stored
        return stored

    def _bot_message(self, chat_id: int) -> JSON:
        """The skeleton of a new message from the bot."""
        return {
            "message_id": self._new_message_id(chat_id),
            "date": self._now(),
            "chat": self._chat_json(chat_id),
            "from": self.bot_user(),
        }

    def _remember(self, sent: SentMessage, message: JSON) -> JSON:
        key = (sent.chat_id, sent.message_id)
        self._sent.append(sent)
        self._sent_to.setdefault(sent.chat_id, []).append(sent)
        self._sent_by_key[key] = sent
        self._message_json[key] = message
        self._changed()
        return message

    def _editable(self, params: Params) -> tuple[SentMessage, JSON]:
        key = (_chat_id(params), _need(params, "message_id", int))
        sent = self._sent_by_key.get(key)
        if sent is None or sent.deleted:
            raise _bad("message to edit not found")
        return sent, self._message_json[key]

    def _commit_edit(self, sent: SentMessage, old: JSON, new: JSON) -> JSON:
        if _visible(old) == _visible(new):
            raise _bad(_NOT_MODIFIED)
        new["edit_date"] = self._now()
        self._message_json[(sent.chat_id, sent.message_id)] = new
        return new

    def _edit_message_text(self, params: Params) -> JSON | bool:
        if params.get("inline_message_id"):
            return True  # inline messages are not emulated; Telegram answers True for them
        sent, message = self._editable(params)
        if sent.kind != "text":
            raise _bad("there is no text in the message to edit")
        text = str(params.get("text") or "")
        parse_mode = _parse_mode(params)
        plain, entities = _render(
            text, parse_mode, limit=MESSAGE_LIMIT, too_long="MESSAGE_TOO_LONG"
        )
        if not plain.strip():
            raise _bad("message text is empty")
        # Leaving reply_markup out of an edit removes the keyboard, as on Telegram.
        markup = _reply_markup(params)
        new = _without(message, "text", "entities", "reply_markup")
        new |= _text_fields("text", plain, entities) | _markup_field(markup)
        self._commit_edit(sent, message, new)
        sent.edits.append(sent.text)
        sent.text, sent.parse_mode, sent.reply_markup = text, parse_mode, markup
        self._changed()
        return new

    def _edit_message_reply_markup(self, params: Params) -> JSON | bool:
        if params.get("inline_message_id"):
            return True
        sent, message = self._editable(params)
        markup = _reply_markup(params)
        new = _without(message, "reply_markup") | _markup_field(markup)
        self._commit_edit(sent, message, new)
        sent.reply_markup = markup
        self._changed()
        return new

    def _delete_message(self, params: Params) -> bool:
        key = (_chat_id(params), _need(params, "message_id", int))
        sent = self._sent_by_key.get(key)
        if sent is None or sent.deleted:
            raise _bad("message to delete not found")
        sent.deleted = True
        self._message_json.pop(key, None)
        self._changed()
        return True

    def _answer_callback_query(self, params: Params) -> bool:
        query_id = _need(params, "callback_query_id", str)
        query = self._open_queries.pop(query_id, None)
        if query is None:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        answer = {"callback_query_id": query_id, "text": params.get("text")}
        answer |= {"show_alert": bool(params.get("show_alert")), "url": params.get("url")}
        self._callback_answers.append(query | answer)
        self._changed()
        return True

    def _send_chat_action(self, params: Params) -> bool:
        _chat_id(params)
        _need(params, "action", str)
        return True

    def _leave_chat(self, params: Params) -> bool:
        """The bot leaves a group; Telegram then tells it so with a my_chat_member update."""
        chat_id = _chat_id(params)
        if chat_id > 0:
            raise _bad("chat member status can't be changed in private chats")
        if chat_id in self._left:
            raise self._not_a_member(chat_id)
        self._left.add(chat_id)
        chat = self._chat_json(chat_id)
        update = self._chat_member_update(self.bot_user(), chat, "member", "left")
        self._pending.append(update)
        self._changed()
        return True

    def _not_a_member(self, chat_id: int) -> _ApiError:
        kind = self._chat_json(chat_id).get("type", "group")
        return _ApiError(403, f"Forbidden: bot is not a member of the {kind} chat")

    def left_chat(self, chat_id: int) -> bool:
        """Whether the bot has left (or been removed from) a group."""
        with self._cond:
            return chat_id in self._left

    def _chat_member_update(self, actor: JSON, chat: JSON, old: str, new: str) -> JSON:
        bot = self.bot_user()
        rights = _ADMIN_RIGHTS if new == "administrator" else {}
        change = {
            "chat": chat,
            "from": actor,
            "date": self._now(),
            "old_chat_member": {"status": old, "user": bot},
            "new_chat_member": {"status": new, "user": bot} | rights,
        }
        return self._new_update("my_chat_member", change)

    def build_bot_added_update(
        self,
        user: EmulatedUser,
        chat_id: int,
        *,
        chat_type: str = "group",
        removed: bool = False,
    ) -> JSON:
        """The my_chat_member update Telegram sends when `user` adds the bot to a group (or,
        `removed`, takes it out); not queued."""
        with self._cond:
            chat = self._user_chat(user, chat_id, chat_type)
            if removed:
                self._left.add(chat_id)
                return self._chat_member_update(user.to_json(), chat, "member", "left")
            self._left.discard(chat_id)
            return self._chat_member_update(user.to_json(), chat, "left", "member")

    def _get_file(self, params: Params) -> JSON:
        stored = self._files.get(_need(params, "file_id", str))
        if stored is None:
            raise _bad("invalid file_id")
        return stored.file_json()

    def download(self, file_path: str) -> bytes | None:
        """The content behind a getFile path, or None if there is none."""
        with self._cond:
            for stored in self._files.values():
                if stored.file_path == file_path:
                    return stored.content
        return None

    # --- shared bookkeeping ---

    def _now(self) -> int:
        moment = self._clock()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp())

    def _changed(self) -> None:
        self.events += 1
        self.changed_at = time.perf_counter()
        self._cond.notify_all()

    def _new_message_id(self, chat_id: int) -> int:
        """Message ids count up per chat, shared by the bot's and the users' messages."""
        number = self._next_message_ids.get(chat_id, 1)
        self._next_message_ids[chat_id] = number + 1
        return number

    def _chat_json(self, chat_id: int) -> JSON:
        """A chat seen before, or a plausible one for an id the bot was simply given."""
        known = self._chats.get(chat_id)
        if known is not None:
            return known
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": f"User {chat_id}"}
        kind = "supergroup" if chat_id < -1_000_000_000_000 else "group"
        return {"id": chat_id, "type": kind, "title": f"Group {chat_id}"}

    def _user_chat(self, user: EmulatedUser, chat_id: int | None, chat_type: str) -> JSON:
        """The chat a user writes in, remembered so the bot's replies name it the same way."""
        if chat_type == "private":
            chat: JSON = {"id": user.id if chat_id is None else chat_id, "type": "private"}
            chat |= {"first_name": user.first_name}
            chat |= _present(last_name=user.last_name, username=user.username)
        elif chat_type in ("group", "supergroup"):
            if chat_id is None:
                raise ValueError(f"a {chat_type} message needs a chat_id (negative)")
            chat = self._chat_json(chat_id) | {"type": chat_type}
        else:
            raise ValueError(f"unknown chat type {chat_type!r}")
        self._chats[chat["id"]] = chat
        return chat

    # --- the user side: building and queueing updates ---

    def _user_message(self, user: EmulatedUser, chat_id: int | None, chat_type: str) -> JSON:
        chat = self._user_chat(user, chat_id, chat_type)
        return {
            "message_id": self._new_message_id(chat["id"]),
            "date": self._now(),
            "chat": chat,
            "from": user.to_json(),
        }

    def _new_update_id(self) -> int:
        with self._cond:  # updates are made in the users' threads too
            update_id = self._next_update_id
            self._next_update_id += 1
            return update_id

    def _new_update(self, kind: str, payload: JSON) -> JSON:
        return {"update_id": self._new_update_id(), kind: payload}

    def build_message_update(
        self,
        user: EmulatedUser,
        text: str,
        *,
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> JSON:
        """An Update with `user`'s text message, not queued (feed it to process_update)."""
        with self._cond:
            message = self._user_message(user, chat_id, chat_type) | {"text": text}
            entities = _command_entities(text)
            if entities:
                message["entities"] = entities
            return self._new_update("message", message)

    def build_document_update(
        self,
        user: EmulatedUser,
        filename: str,
        content: bytes,
        *,
        caption: str | None = None,
        mime_type: str | None = None,
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> JSON:
        """An Update with a file `user` sends (the bot can getFile and download it)."""
        mime = mime_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        with self._cond:
            stored = self._store_file("document", filename, content, mime)
            message = self._user_message(user, chat_id, chat_type)
            message |= {"document": stored.document_json()} | _present(caption=caption)
            return self._new_update("message", message)

    def build_photo_update(
        self,
        user: EmulatedUser,
        content: bytes = b"\x89PNG\r\n\x1a\n",
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> JSON:
        """An Update with a photo `user` sends."""
        with self._cond:
            stored = self._store_file("photo", "photo.jpg", content, "image/jpeg")
            message = self._user_message(user, chat_id, chat_type)
            message |= {"photo": stored.photo_json()} | _present(caption=caption)
            return self._new_update("message", message)

    def build_callback_update(
        self, user: EmulatedUser, message_id: int, data: str, *, chat_id: int | None = None
    ) -> JSON:
        """An Update for `user` tapping a button with `data` on a bot message; not queued."""
        with self._cond:
            chat = user.id if chat_id is None else chat_id
            message = self._message_json.get((chat, message_id))
            if message is None:
                raise KeyError(f"the bot has no message {message_id} in chat {chat}")
            query_id = f"{self.bot_id}{self._next_query_id:08d}"
            self._next_query_id += 1
            self._open_queries[query_id] = {
                "user_id": user.id,
                "chat_id": chat,
                "message_id": message_id,
                "data": data,
            }
            query = {"id": query_id, "from": user.to_json(), "message": copy.deepcopy(message)}
            query |= {"chat_instance": str(chat), "data": data}
            return self._new_update("callback_query", query)

    def queue(self, update: JSON) -> int:
        """Make an update available to getUpdates; returns its update_id."""
        with self._cond:
            update = copy.deepcopy(update)
            update.setdefault("update_id", self._new_update_id())
            self._pending.append(update)
            self._pending.sort(key=lambda u: int(u["update_id"]))
            self._cond.notify_all()
            return int(update["update_id"])

    def send_text(
        self,
        user: EmulatedUser,
        text: str,
        *,
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> int:
        """`user` sends `text` (commands get their bot_command entity); returns the update_id.

        Made and queued under one lock, as each is made and queued below: users typing at
        once in threads of their own get update_ids in the order their updates are queued,
        as Telegram gives them, so none is queued behind a later one already delivered.
        """
        with self._cond:
            return self.queue(
                self.build_message_update(user, text, chat_id=chat_id, chat_type=chat_type)
            )

    def send_document(
        self,
        user: EmulatedUser,
        filename: str,
        content: bytes,
        *,
        caption: str | None = None,
        mime_type: str | None = None,
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> int:
        """`user` sends a file; returns the update_id."""
        with self._cond:
            return self.queue(
                self.build_document_update(
                    user,
                    filename,
                    content,
                    caption=caption,
                    mime_type=mime_type,
                    chat_id=chat_id,
                    chat_type=chat_type,
                )
            )

    def send_photo(
        self,
        user: EmulatedUser,
        content: bytes = b"\x89PNG\r\n\x1a\n",
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> int:
        """`user` sends a photo; returns the update_id."""
        with self._cond:
            update = self.build_photo_update(
                user, content, caption=caption, chat_id=chat_id, chat_type=chat_type
            )
            return self.queue(update)

    def press_button(
        self, user: EmulatedUser, message_id: int, data: str, *, chat_id: int | None = None
    ) -> int:
        """`user` taps the button carrying `data` on a bot message; returns the update_id."""
        chat = user.id if chat_id is None else chat_id
        with self._cond:
            sent = self._sent_by_key.get((chat, message_id))
            offered = [] if sent is None or sent.deleted else _callback_data(sent.reply_markup)
            if data not in offered:
                # Telegram only ever delivers data that is on the keyboard; catch test typos.
                raise ValueError(
                    f"message {message_id} in chat {chat} has no button {data!r}; "
                    f"it offers {offered!r}"
                )
            return self.queue(self.build_callback_update(user, message_id, data, chat_id=chat))

    # --- the user side: reading what the bot sent ---

    def forget_file_contents(self) -> None:
        """Drop the bytes of every file held so far (names and ids stay): Telegram keeps
        them on its servers, so a benchmark of the bot's memory does not count them."""
        with self._cond:
            for file_id, stored in self._files.items():
                self._files[file_id] = replace(stored, content=None)
            for sent in self._sent:
                sent.content = None

    def messages(self, chat_id: int | None = None, *, start: int = 0) -> list[SentMessage]:
        """The bot's messages (to one chat, or all), oldest first, as copies; from the
        `start`th on (negative: that many from the end, as a slice), so that a reader who
        looks often copies only what it has not seen."""
        with self._cond:
            sent = self._sent if chat_id is None else self._sent_to.get(chat_id, [])
            return [_snapshot(s) for s in sent[start:]]

    def last_message(self, chat_id: int) -> SentMessage:
        """The bot's latest message to a chat."""
        found = self.messages(chat_id, start=-1)
        if not found:
            raise LookupError(f"the bot has sent nothing to chat {chat_id}")
        return found[0]

    @property
    def callback_answers(self) -> list[JSON]:
        """Every answerCallbackQuery, with the query's user, chat, message and data."""
        with self._cond:
            return copy.deepcopy(self._callback_answers)

    def get_commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        """The command menu set for a scope (default scope unless given)."""
        with self._cond:
            key = _scope_key({"scope": scope, "language_code": language_code})
            return copy.deepcopy(self._commands.get(key, []))

    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by a getUpdates offset."""
        with self._cond:
            return copy.deepcopy(self._pending)

    def wait_for_messages(
        self, chat_id: int, count: int, timeout: float = 5.0
    ) -> list[SentMessage]:
        """Block until the bot has sent at least `count` messages to a chat; return them all."""
        with self._cond:
            arrived = self._cond.wait_for(lambda: self._sent_count(chat_id) >= count, timeout)
            if not arrived:
                texts = [s.text for s in self._sent_to.get(chat_id, [])]
                raise TimeoutError(
                    f"waited {timeout}s for {count} message(s) to chat {chat_id}; "
                    f"the bot sent {len(texts)}: {texts!r}"
                )
            return self.messages(chat_id)

    async def wait_for_messages_async(
        self, chat_id: int, count: int, timeout: float = 5.0
    ) -> list[SentMessage]:
        """`wait_for_messages` off the event loop, for tests where the bot runs on that loop."""
        return await asyncio.to_thread(self.wait_for_messages, chat_id, count, timeout)

    @property
    def sent_count(self) -> int:
        """How many messages the bot has sent, to every chat: no copies made, so a
        benchmark can look often without slowing the bot it measures."""
        with self._cond:
            return len(self._sent)

    def sent_count_to(self, chat_id: int) -> int:
        """How many messages the bot has sent to one chat, no copies made."""
        with self._cond:
            return self._sent_count(chat_id)

    def wait_for_sent(self, count: int, timeout: float) -> bool:
        """Block until the bot has sent `count` messages in all; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._sent) >= count, timeout)

    def wait_for_change(self, since: int, timeout: float = 5.0) -> int:
        """Block until `events` passes `since`; returns `events` (still `since` on timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: self.events > since, timeout)
            return self.events

    def wait_for_pollers(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until `count` getUpdates calls are waiting for updates."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._pollers >= count, timeout):
                raise TimeoutError(f"{self._pollers} getUpdates call(s) waiting, wanted {count}")

    def _sent_count(self, chat_id: int) -> int:
        return len(self._sent_to.get(chat_id, []))

    @staticmethod
    def buttons(message: SentMessage) -> list[tuple[str, str]]:
        """A keyboard flattened to (label, callback data or URL) pairs, row by row."""
        markup = message.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        return [_button_pair(button) for row in rows for button in row]


def _button_pair(button: Any) -> tuple[str, str]:
    """(label, what tapping sends): callback data, a URL, or a reply button's own text."""
    if isinstance(button, str):
        return button, button
    label = str(button.get("text", ""))
    for key in ("callback_data", "url", "login_url", "web_app", "switch_inline_query"):
        if key in button:
            value = button[key]
            return label, str(value["url"] if isinstance(value, dict) else value)
    return label, label


def _callback_data(markup: JSON | None) -> list[str]:
    """The callback data of every button on an inline keyboard."""
    rows = (markup or {}).get("inline_keyboard") or []
    return [
        str(button["callback_data"]) for row in rows for button in row if "callback_data" in button
    ]


def _snapshot(sent: SentMessage) -> SentMessage:
    """A copy a reader can keep while the bot edits the original."""
    return replace(sent, edits=list(sent.edits), reply_markup=copy.deepcopy(sent.reply_markup))


def _is_set(event: threading.Event | None) -> bool:
    return event is not None and event.is_set()


# --- routing, shared by both transports ------------------------------------------------------

_API_PATH = re.compile(r"/bot(?P<token>[^/]+)/(?P<method>[^/]+)/?$")
_FILE_PATH = re.compile(r"/file/bot(?P<token>[^/]+)/(?P<path>.+)$")


@dataclass(frozen=True)
class _Response:
    """What a transport sends back, unless `fault` says to drop or reset instead."""

    status: int
    payload: bytes
    content_type: str
    fault: Fault | None = None

    @property
    def unanswered(self) -> Literal["drop", "reset"] | None:
        """The way this request ends without an answer, if it does."""
        kind = self.fault.kind if self.fault is not None else None
        return kind if kind == "drop" or kind == "reset" else None


def _json_response(status: int, body: JSON) -> _Response:
    return _Response(status, _encoded(body), "application/json")


def _encoded(body: JSON) -> bytes:
    return json.dumps(body).encode()


def _serve(
    emulator: BotApiEmulator, path: str, params: Mapping[str, Any], cancel: threading.Event | None
) -> _Response:
    """Answer a request for a URL path, acting out any fault the emulator injected."""
    try:
        return _route(emulator, path, params, cancel)
    except FaultInjected as injected:
        fault = injected.fault
        # A proxy's error page where JSON belongs: the body of a "malformed" fault.
        return _Response(fault.http_status, _MALFORMED_BODY, "text/html", fault)


def _route(
    emulator: BotApiEmulator, path: str, params: Mapping[str, Any], cancel: threading.Event | None
) -> _Response:
    """Answer a request for a URL path: an API method or a file download."""
    path = unquote(path)
    if match := _FILE_PATH.search(path):
        if match["token"] != emulator.token:
            return _json_response(401, _unauthorized())
        content = emulator.download(match["path"])
        if content is None:
            return _json_response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        return _Response(200, content, "application/octet-stream")
    match = _API_PATH.search(path)
    if match is None:
        return _json_response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
    if match["token"] != emulator.token:
        return _json_response(401, _unauthorized())
    status, body = emulator.answer(match["method"], params, cancel=cancel)
    return _Response(status, body, "application/json")


def _unauthorized() -> JSON:
    return {"ok": False, "error_code": 401, "description": "Unauthorized"}


# --- transport 1: HTTP on loopback -----------------------------------------------------------


def _parse_body(content_type: str, body: bytes) -> Params:
    """Parameters from a JSON, form-encoded or multipart body."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return {}
    if mime == "application/json":
        parsed = json.loads(body)
        if not isinstance(parsed, dict):
            raise ValueError("a JSON body must be an object")
        return parsed
    if mime == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode(), keep_blank_values=True))
    if mime == "multipart/form-data":
        return _parse_multipart(content_type, body)
    return {}


def _parse_multipart(content_type: str, body: bytes) -> Params:
    """multipart/form-data via the email parser (the cgi module is deprecated)."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(head + body)
    params: Params = {}
    for part in message.iter_parts():
        name = collapse_rfc2231_value(part.get_param("name", "", header="content-disposition"))
        payload = cast(bytes, part.get_payload(decode=True) or b"")
        filename = part.get_filename()
        if filename is None:
            params[name] = payload.decode()
        else:
            params[name] = UploadedFile(filename, payload, part.get_content_type())
    return params


# Linux's option for receive times in nanoseconds (the socket module does not name it).
_SO_TIMESTAMPNS: int | None = 35 if sys.platform == "linux" else None


def _peek_arrival(connection: socket.socket) -> float | None:
    """When the next request's first bytes reached this machine, as `time.monotonic`; None
    if the client has closed. Waits for them (the connection's timeout applies), reads nothing."""
    data, ancillary, _, _ = connection.recvmsg(1, socket.CMSG_SPACE(16), socket.MSG_PEEK)
    if not data:
        return None
    for level, kind, raw in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(raw) >= 16:
            seconds, nanoseconds = struct.unpack("qq", raw[:16])
            received = float(seconds) + float(nanoseconds) / 1e9
            return time.monotonic() - (time.time() - received)
    return None


class _HttpServer(ThreadingHTTPServer):
    """The HTTP server, carrying the emulator and a cancel event for its long polls."""

    def __init__(self, address: tuple[str, int], emulator: BotApiEmulator) -> None:
        self.emulator = emulator
        self.cancel = threading.Event()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind, asking for receive times: the connections it accepts inherit the option,
        so even a request that came with the connection, before it was accepted, has one."""
        super().server_bind()
        if _SO_TIMESTAMPNS is not None:
            self.socket.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid long poll is normal; anything else is reported."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """One request: route it to the emulator and write its JSON (or file) answer."""

    server: _HttpServer
    timeout = 10.0  # a client that connects and never sends must not hold stop() forever

    def do_GET(self) -> None:
        """GET /bot<token>/<method>?... or a file download."""
        self._answer()

    def do_POST(self) -> None:
        """POST /bot<token>/<method> with a JSON, form or multipart body."""
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the default logs every request, token included, to stderr."""

    def handle_one_request(self) -> None:
        """Note when the request's first bytes arrived (the kernel's receive time), then
        read and answer it as the base class does."""
        arrived = None
        if _SO_TIMESTAMPNS is not None:
            try:
                arrived = _peek_arrival(self.connection)
            except (TimeoutError, ConnectionError):
                self.close_connection = True
                return
        token = _ARRIVED_AT.set(arrived)
        try:
            super().handle_one_request()
        finally:
            _ARRIVED_AT.reset(token)

    def _answer(self) -> None:
        response = self._response()
        if response.unanswered == "reset":
            self._reset()
        elif response.unanswered == "drop" and response.fault is not None:
            self._hold(response.fault.hold)
        else:
            self._write(response)

    def _response(self) -> _Response:
        url = urlsplit(self.path)
        try:
            params = dict(parse_qsl(url.query)) | _parse_body(
                self.headers.get("Content-Type", ""), self._body()
            )
        except ValueError as error:
            return _json_response(400, _bad(f"can't parse request: {error}").body())
        return _serve(self.server.emulator, url.path, params, self.server.cancel)

    def _write(self, response: _Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.payload)))
        self.end_headers()
        self.wfile.write(response.payload)

    def _reset(self) -> None:
        """Close at once with SO_LINGER 0, so the client gets an RST, not an answer."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # rfile holds a reference that would defer the close (and the RST) until finish().
        self.rfile.close()
        self.connection.close()

    def _hold(self, seconds: float) -> None:
        """Leave the request unanswered until the client hangs up, `seconds` pass, or stop()."""
        self.close_connection = True
        deadline = time.monotonic() + seconds
        while not self.server.cancel.is_set() and (left := deadline - time.monotonic()) > 0:
            # The client sends nothing more; readable means it closed (or reset) its end.
            if select.select([self.connection], [], [], min(left, 0.05))[0]:
                return

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""


class EmulatorServer:
    """The emulator as a Bot API server on 127.0.0.1 (a free port), served by a daemon thread."""

    def __init__(self, emulator: BotApiEmulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        self._address = (host, port)
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> EmulatorServer:
        """Listen and serve in the background."""
        if self._httpd is not None:
            raise RuntimeError("the emulator server is already running")
        self._httpd = _HttpServer(self._address, self.emulator)
        self._serve_in_background(self._httpd)
        return self

    def _serve_in_background(self, httpd: _HttpServer) -> None:
        # A short poll interval keeps stop() and pause() quick.
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="bot-api-emulator",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, release waiting long polls and close every socket."""
        if self._httpd is None:
            return
        if self._thread is not None:  # None while paused: nothing is serving
            self._httpd.shutdown()
            self._thread.join()
        self.emulator.interrupt(self._httpd.cancel)
        self._httpd.server_close()  # also joins the request threads
        self._httpd = self._thread = None

    def pause(self) -> None:
        """Close the listening socket: new connections are refused until resume().

        Requests already accepted carry on; the port stays this server's to reopen.
        """
        if self._httpd is None or self._thread is None:
            return
        self._httpd.shutdown()
        self._thread.join()
        self._thread = None
        self._httpd.socket.close()

    def resume(self) -> None:
        """Listen again on the same port after pause()."""
        httpd = self._httpd
        if httpd is None or self._thread is not None:
            return
        # server_bind sets SO_REUSEADDR (allow_reuse_address), so the port's old
        # connections, some in TIME_WAIT, do not stand in the way.
        httpd.socket = socket.socket(httpd.address_family, httpd.socket_type)
        httpd.server_bind()
        httpd.server_activate()
        self._serve_in_background(httpd)

    @property
    def paused(self) -> bool:
        """Whether the server is refusing connections (see pause())."""
        return self._httpd is not None and self._thread is None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the emulator server is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """For `ApplicationBuilder().base_url(...)`: PTB appends the token."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For `ApplicationBuilder().base_file_url(...)`, so downloads come here too."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# --- transport 2: in-process, for python-telegram-bot -----------------------------------------


def _request_params(request_data: RequestData | None) -> Params:
    """What PTB would put on the wire: JSON-encoded fields plus file parts."""
    if request_data is None:
        return {}
    # json_parameters is exactly what HTTPXRequest sends as form fields, so the emulator
    # decodes the same strings it would over HTTP.
    params: Params = dict(request_data.json_parameters)
    for name, (filename, content, mimetype) in request_data.multipart_data.items():
        data = content if isinstance(content, bytes) else content.read()
        params[name] = UploadedFile(filename, data, mimetype)
    return params


class EmulatorRequest(BaseRequest):
    """A PTB request class that calls the emulator in-process: no sockets, same semantics."""

    def __init__(self, emulator: BotApiEmulator, *, read_timeout: float | None = 5.0) -> None:
        self.emulator = emulator
        self._read_timeout = read_timeout
        self._waiting: set[threading.Event] = set()

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout PTB adds to getUpdates' own timeout."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Release any long poll still waiting in a worker thread."""
        for cancel in list(self._waiting):
            self.emulator.interrupt(cancel)

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Run the call in a worker thread: getUpdates blocks while it long-polls."""
        params = _request_params(request_data)
        cancel = threading.Event()
        self._waiting.add(cancel)
        try:
            response = await asyncio.to_thread(
                _serve, self.emulator, urlsplit(url).path, params, cancel
            )
            if response.unanswered == "reset":
                raise _reset_error()
            if response.unanswered == "drop" and response.fault is not None:
                await self._hold(response.fault.hold, self._timeout(read_timeout), cancel)
        except BaseException:
            # A cancelled await leaves its thread running; wake it so the loop can close.
            self.emulator.interrupt(cancel)
            raise
        finally:
            self._waiting.discard(cancel)
        return response.status, response.payload

    def _timeout(self, read_timeout: object) -> float | None:
        """The read timeout PTB asked for, or the default."""
        if isinstance(read_timeout, int | float):
            return float(read_timeout)
        return self._read_timeout if read_timeout is BaseRequest.DEFAULT_NONE else None

    async def _hold(
        self, hold: float, read_timeout: float | None, cancel: threading.Event
    ) -> NoReturn:
        """No answer comes: time out like HTTPXRequest, or see the server hang up first."""
        if read_timeout is not None and read_timeout < hold:
            await asyncio.to_thread(cancel.wait, read_timeout)
            raise TimedOut() from httpx.ReadTimeout("")
        await asyncio.to_thread(cancel.wait, hold)
        raise _network_error(httpx.RemoteProtocolError(_DISCONNECTED))


_DISCONNECTED = "Server disconnected without sending a response."


def _reset_error() -> NetworkError:
    """What HTTPXRequest raises when the server resets the connection."""
    return _network_error(httpx.ReadError(""))


def _network_error(cause: httpx.HTTPError) -> NetworkError:
    """A NetworkError worded and chained the way HTTPXRequest raises it."""
    error = NetworkError(f"httpx.{type(cause).__name__}: {cause}")
    error.__cause__ = cause
    return error


def update_chat(update: JSON) -> int:
    """The chat an update belongs to (its message's, else its sender's): the unit Telegram
    keeps in order."""
    for kind in ("message", "edited_message", "callback_query", "my_chat_member"):
        part = update.get(kind)
        if not isinstance(part, dict):
            continue
        chat = part.get("chat") or (part.get("message") or {}).get("chat")
        if isinstance(chat, dict):
            return int(chat["id"])
        sender = part.get("from")
        if isinstance(sender, dict):
            return int(sender["id"])
    return 0


class WebhookDelivery:
    """Telegram's side of a webhook: the emulator's pending updates POSTed to the URL
    setWebhook was given, with its secret token. One not answered 2xx is sent again after
    a pause, as Telegram does. A chat's updates go one at a time, in order; different
    chats' go at once, over up to `connections` connections (Telegram's max_connections).
    """

    def __init__(
        self,
        emulator: BotApiEmulator,
        *,
        connections: int = 8,
        retry_seconds: float = 0.5,
        verify: bool = True,
    ) -> None:
        self.emulator = emulator
        self.retry_seconds = retry_seconds
        self.delivered = 0
        self.refused = 0  # answers other than 2xx, and requests that got no answer
        self._verify = verify
        self._queues: list[deque[JSON]] = [deque() for _ in range(connections)]
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._taken = 0  # the highest update_id handed to a connection

    def __enter__(self) -> WebhookDelivery:
        self._threads = [threading.Thread(target=self._take, daemon=True)] + [
            threading.Thread(target=self._send, args=(queue,), daemon=True)
            for queue in self._queues
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        self.emulator.interrupt(threading.Event())
        for thread in self._threads:
            thread.join(timeout=10)

    def _take(self) -> None:
        """Hand each new pending update to the connection that carries its chat."""
        emulator = self.emulator
        while not self._stop.is_set():
            with emulator._cond:
                emulator._cond.wait_for(
                    lambda: (
                        self._stop.is_set()
                        or any(u["update_id"] > self._taken for u in emulator._pending)
                    ),
                    timeout=0.5,
                )
                fresh = [
                    copy.deepcopy(u) for u in emulator._pending if u["update_id"] > self._taken
                ]
            with self._wake:
                for update in fresh:
                    self._taken = max(self._taken, int(update["update_id"]))
                    self._queues[update_chat(update) % len(self._queues)].append(update)
                self._wake.notify_all()

    def _send(self, queue: deque[JSON]) -> None:
        with httpx.Client(verify=self._verify, timeout=30) as http:
            while not self._stop.is_set():
                with self._wake:
                    self._wake.wait_for(lambda: bool(queue) or self._stop.is_set(), timeout=0.5)
                    if not queue:
                        continue
                    update = queue[0]
                if self._post(http, update):
                    with self._wake:
                        queue.popleft()
                    self._confirm(int(update["update_id"]))
                else:
                    self._stop.wait(self.retry_seconds)

    def _post(self, http: httpx.Client, update: JSON) -> bool:
        hook = self.emulator.webhook
        headers = {"X-Telegram-Bot-Api-Secret-Token": str(hook.get("secret_token", ""))}
        try:
            answer = http.post(str(hook["url"]), content=json.dumps(update), headers=headers)
        except (httpx.TransportError, KeyError):
            self.refused += 1
            return False
        if not answer.is_success:
            self.refused += 1
            return False
        self.delivered += 1
        return True

    def _confirm(self, update_id: int) -> None:
        """Delivered: no longer pending (Telegram forgets an update once answered 2xx)."""
        with self.emulator._cond:
            self.emulator._pending = [
                u for u in self.emulator._pending if u["update_id"] != update_id
            ]
            self.emulator._cond.notify_all()
