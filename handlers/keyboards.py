"""Inline keyboards and their callback data, kept within Telegram's 64-byte limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

T = TypeVar("T")
CALLBACK_LIMIT = 64
SEPARATOR = ":"


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


def button(label: str, *data: str | int) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=callback(*data))


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
