"""Guided dialogues in progress (/update, /meeting, /decide): one row per user in
`dialogue_draft`, so a restart loses nothing.

A step reads its answer and saves the new state in one transaction, before anything is
sent. The state names the Telegram update that moved it, so the same update handled again
after a crash (the inbox replays what was not marked done) is not applied twice, and it
holds what the step shows, so a reply lost in a crash can be shown again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from csp_bot.models.db import note_write
from csp_bot.models.inbox import AfterHandled
from csp_bot.models.tables import DialogueDraft

DEFAULT_EXPIRY = timedelta(minutes=15)
# A finished or cancelled dialogue keeps its row (no longer open) only to answer a replay.
CLOSED = "closed"
Buttons = tuple[tuple[tuple[str, str], ...], ...]  # rows of (label, callback data)
# Earlier messages to edit: (chat, message, new text; None keeps the text, drops buttons).
Edits = tuple[tuple[int, int, str | None], ...]


@dataclass(frozen=True)
class Screen:
    """What a step shows, as plain data (the chat layer turns it into Telegram calls)."""

    text: str
    buttons: Buttons = ()
    # A button press turns the pressed message into this screen; otherwise it is sent.
    in_place: bool = True
    # When sent: what the previous question becomes (None: it only loses its buttons).
    prior: str | None = None
    # The short notice that answers the button press, if any.
    toast: str | None = None
    # The messages of a dialogue this one replaced, and what they now say.
    closes: Edits = ()


@dataclass(frozen=True)
class Draft:
    """How far someone has got with a dialogue: which one, the step it waits for, the
    answers so far, and where its buttons are shown."""

    dialogue: str
    step: str
    touched_at: datetime
    values: dict[str, str] = field(default_factory=dict)
    chat_id: int | None = None
    message_id: int | None = None
    # The Telegram update whose answer this state holds.
    update_id: int | None = None
    # Put aside by another command: kept, but typed text no longer reaches it.
    paused: bool = False
    # A command that would replace this dialogue, waiting for "finish" or "discard".
    held: str | None = None
    screen: Screen | None = None
    # Whether `screen` has been shown (set after Telegram took it).
    shown: bool = False
    # The dialogue in a few words ("update on SOC-1"), and what the user has entered that
    # would be lost with it (None: nothing): stored, so any dialogue can describe another.
    what: str = ""
    stake: str | None = None

    @property
    def closed(self) -> bool:
        return self.step == CLOSED

    def answered_by(self, update_id: int) -> bool:
        """Whether this update's answer is already in the draft."""
        return self.update_id is not None and update_id <= self.update_id

    def moved(self, step: str, at: datetime, **values: str) -> Draft:
        """The draft at its next step, with more answers; it is open again."""
        return replace(
            self,
            step=step,
            touched_at=at,
            values={**self.values, **values},
            paused=False,
            held=None,
        )

    def without(self, *names: str) -> Draft:
        """The draft with some answers taken back (a step asked again)."""
        return replace(self, values={k: v for k, v in self.values.items() if k not in names})

    def shown_in(self, chat_id: int, message_id: int) -> Draft:
        """The draft, noting the message that now carries its buttons."""
        return replace(self, chat_id=chat_id, message_id=message_id)


@dataclass(frozen=True)
class DraftLookup:
    """The user's draft (open or closed), or the one that just expired (to say so)."""

    draft: Draft | None
    expired: Draft | None = None

    @property
    def open(self) -> Draft | None:
        return None if self.draft is None or self.draft.closed else self.draft


def load_draft(
    session: Session,
    *,
    user_id: int,
    at: datetime,
    expiry: timedelta = DEFAULT_EXPIRY,
    lock: bool = False,
) -> DraftLookup:
    """The user's draft; one untouched for longer than `expiry` is deleted (and an open one
    reported). `lock` holds the row until the transaction ends (PostgreSQL)."""
    row = _read(session, user_id, lock=lock)
    if row is None:
        return DraftLookup(None)
    draft = _decode(row)
    if at - draft.touched_at > expiry:
        _delete(session, user_id)
        return DraftLookup(None, expired=None if draft.closed else draft)
    return DraftLookup(draft)


def save_draft(session: Session, *, user_id: int, draft: Draft) -> Draft:
    """Store the draft, replacing the user's earlier one."""
    values = {
        "user_id": user_id,
        "dialogue": draft.dialogue,
        "step": draft.step,
        "touched_at": draft.touched_at,
        "update_id": draft.update_id,
        "shown": draft.shown,
        "data": _encode(draft),
    }
    session.connection().execute(_upsert(session.get_bind().dialect.name), values)
    note_write(session)
    return draft


def discard_draft(session: Session, *, user_id: int) -> Draft | None:
    """Delete the user's draft; returns it if it was open."""
    row = _read(session, user_id, lock=False)
    if row is None:
        return None
    _delete(session, user_id)
    draft = _decode(row)
    return None if draft.closed else draft


def mark_shown(
    session: Session,
    *,
    user_id: int,
    update_id: int,
    chat_id: int | None = None,
    message_id: int | None = None,
) -> None:
    """Note that the screen `update_id` produced has been shown (and in which message);
    nothing if the draft has moved on since."""
    if message_id is None or chat_id is None:
        # After every reply: one statement, no read of the row.
        session.connection().execute(_MARK_SHOWN, {"user": user_id, "shown_by": update_id})
        note_write(session)
        return
    row = _read(session, user_id, lock=True)
    if row is None or row.update_id != update_id:
        return
    draft = _decode(row).shown_in(chat_id, message_id)
    save_draft(session, user_id=user_id, draft=replace(draft, shown=True))


def shown_later(*, user_id: int, update_id: int) -> AfterHandled:
    """`mark_shown` for a screen without buttons, as a write kept for the update's mark
    done (`models.inbox.write_after_handled`)."""
    return AfterHandled(_MARK_SHOWN, {"user": user_id, "shown_by": update_id})


# The drafts are read and written with Core statements built once, not the ORM: every
# message in a private chat reads one, and every step writes one. Elsewhere the table is
# only read (an export) or deleted from with Core, so no ORM object of it can go stale.
_DRAFTS = DialogueDraft.__table__  # type: ignore[attr-defined]
_READ = select(_DRAFTS).where(_DRAFTS.c.user_id == bindparam("user_id"))
_READ_LOCKED = _READ.with_for_update()
_DELETE = delete(_DRAFTS).where(_DRAFTS.c.user_id == bindparam("user_id"))
_MARK_SHOWN = (
    update(_DRAFTS)
    .where(_DRAFTS.c.user_id == bindparam("user"))
    .where(_DRAFTS.c.update_id == bindparam("shown_by"))
    .values(shown=True)
)


def _read(session: Session, user_id: int, *, lock: bool) -> Any:
    query = _READ_LOCKED if lock else _READ
    return session.connection().execute(query, {"user_id": user_id}).first()


def _delete(session: Session, user_id: int) -> None:
    session.connection().execute(_DELETE, {"user_id": user_id})
    note_write(session)


_COLUMNS = ("dialogue", "step", "touched_at", "update_id", "shown")
_DATA_FIELDS = tuple(f.name for f in fields(Draft) if f.name not in _COLUMNS)
_SCREEN_FIELDS = tuple(f.name for f in fields(Screen))


@functools.cache
def _upsert(dialect: str) -> Any:
    """INSERT … ON CONFLICT (user_id) DO UPDATE, in the database's own dialect."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(_DRAFTS)
    kept = (*_COLUMNS, "data")
    return insert.on_conflict_do_update(
        index_elements=[_DRAFTS.c.user_id], set_={name: insert.excluded[name] for name in kept}
    )


def _encode(draft: Draft) -> dict[str, Any]:
    """The draft's fields that have no column of their own, as JSON takes them. Read field
    by field: `asdict` copies every nested value, which costs more than the write."""
    data = {name: getattr(draft, name) for name in _DATA_FIELDS}
    if draft.screen is not None:
        data["screen"] = {name: getattr(draft.screen, name) for name in _SCREEN_FIELDS}
    return data


def _decode(row: Any) -> Draft:
    data = dict(row.data or {})
    screen = data.pop("screen", None)
    if screen is not None:
        buttons = tuple(tuple((label, value) for label, value in r) for r in screen["buttons"])
        closes = tuple((chat, message, text) for chat, message, text in screen["closes"])
        screen = Screen(**{**screen, "buttons": buttons, "closes": closes})
    return Draft(
        dialogue=row.dialogue,
        step=row.step,
        touched_at=row.touched_at,
        update_id=row.update_id,
        shown=row.shown,
        screen=screen,
        **data,
    )
