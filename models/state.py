"""The bot's own small state (dialogues in progress), as JSON by kind and key in `bot_state`.

Kept in the database, so a restart loses nothing.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from csp_bot.models.tables import BotState


def read_state(session: Session, *, kind: str, key: str) -> dict[str, Any] | None:
    """The stored data, or None."""
    row = session.get(BotState, (kind, key))
    return None if row is None else dict(row.data)


def write_state(session: Session, *, kind: str, key: str, data: dict[str, Any]) -> None:
    """Store `data`, replacing what was there."""
    row = session.get(BotState, (kind, key))
    if row is None:
        session.add(BotState(kind=kind, key=key, data=data))
    else:
        row.data = data
        session.add(row)


def drop_state(session: Session, *, kind: str, key: str) -> dict[str, Any] | None:
    """Delete the data; returns what it held."""
    row = session.get(BotState, (kind, key))
    if row is None:
        return None
    session.delete(row)
    return dict(row.data)
