"""Inline keyboards and their callback data, kept within Telegram's 64-byte limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from csp_bot.models.limits import RECORD_ID

T = TypeVar("T")
CALLBACK_LIMIT = 64
SEPARATOR = ":"
# The largest number a button carries (an id, a page): a record's id, as the command line
# takes one too. A bigger one was never offered, and would overflow the query it reached.
LARGEST_NUMBER = RECORD_ID


def callback(*parts: str | int) -> str:
    """Callback data from its parts; refuses anything Telegram would reject."""
    data = SEPARATOR.join(str(part) for part in parts)
    if len(data.encode()) > CALLBACK_LIMIT:
        raise ValueError(f"callback data over {CALLBACK_LIMIT} bytes: {data!r}")
    return data


def parts(data: str | None, expected: int) -> list[str] | None:
    """The parts of callback data, or None when it does not have the expected shape."""
    pieces = (data or "").split(SEPARATOR)
    return pieces if len(pieces) == expected and all(pieces) else None


def number(part: str) -> int | None:
    """A number in callback data, or None for anything the bot could not have made. ASCII
    digits only: "²" is a digit to Python's isdigit() and no number to int()."""
    if not (part.isascii() and part.isdecimal()) or len(part) > len(str(LARGEST_NUMBER)):
        return None
    value = int(part)
    return value if value <= LARGEST_NUMBER else None


def unreadable(data: str | None) -> bool:
    """Callback data the bot never makes: missing, over Telegram's 64-byte limit, or with a
    control character (PostgreSQL refuses NUL in a query's text)."""
    if data is None or len(data.encode()) > CALLBACK_LIMIT:
        return True
    return any(not char.isprintable() for char in data)


def button(label: str, *data: str | int) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=callback(*data))


DASHBOARD_LABEL = "📊 Dashboard"


def dashboard_button(app_url: str | None, *, private: bool) -> list[InlineKeyboardButton]:
    """The row that opens the dashboard (a Mini App), when it has a public URL. Telegram
    takes Mini App buttons in private chats only: a group gets no row."""
    if app_url is None or not private:
        return []
    return [InlineKeyboardButton(DASHBOARD_LABEL, web_app=WebAppInfo(app_url))]


def keyboard(rows: Sequence[Sequence[InlineKeyboardButton]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([list(row) for row in rows if row])


def page_count(total: int, size: int) -> int:
    """How many pages of `size` hold `total` items (at least one, for "nothing yet")."""
    return max(1, -(-total // size))


def page_of(items: Sequence[T], page: int, size: int) -> tuple[Sequence[T], int, int]:
    """One page of `items`, the page actually shown (clamped) and the number of pages."""
    pages = page_count(len(items), size)
    page = min(max(page, 0), pages - 1)
    return items[page * size : (page + 1) * size], page, pages


def pager(page: int, pages: int, *prefix: str | int) -> list[InlineKeyboardButton]:
    """‹ Previous / Next › buttons carrying `prefix` and the page number."""
    row = []
    if page > 0:
        row.append(button("‹ Previous", *prefix, page - 1))
    if page < pages - 1:
        row.append(button("Next ›", *prefix, page + 1))
    return row
