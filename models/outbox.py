"""The outbox: one row per reminder, recorded once and delivered at most once.

Each reminder (kind, subject, member, occurrence) is unique, so planning can run as often as
it likes. Delivery moves a row from `pending` to `sending` (committed just before the message
goes to Telegram) and then to `sent`; one Telegram did not take goes back to `pending` with
backoff, and after too many refusals becomes `failed`. A row left in `sending` by a crash is
never sent again: it becomes `unconfirmed` (the README explains this choice).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from csp_bot.models.backoff import Backoff
from csp_bot.models.db import insert_new
from csp_bot.models.reminder_types import (
    LOOKBACK,
    SUBJECT_KINDS,
    Due,
    Key,
    OutboxState,
    Recorded,
    ReminderKind,
    Subject,
    recorded_index,
    statement_chunks,
)
from csp_bot.models.reminders import preference_row
from csp_bot.models.tables import Member, OutboxEntry

# A row still `sending` after this long was interrupted: it is marked unconfirmed.
SENDING_TIMEOUT = timedelta(minutes=10)
INSERT_CHUNK = 500
# Subject ids looked up per statement (well inside every database's limit on parameters).


# What identifies a reminder, in the order of `Key`.
_KEY_COLUMNS = (
    col(OutboxEntry.kind),
    col(OutboxEntry.subject_id),
    col(OutboxEntry.member_id),
    col(OutboxEntry.occurrence),
)


def recorded_keys(session: Session, *, now: datetime) -> Recorded:
    """The reminders recorded recently enough that planning could produce them again."""
    rows = session.execute(
        sa.select(*_KEY_COLUMNS).where(col(OutboxEntry.fire_at) >= now - LOOKBACK)
    ).all()
    return recorded_index(Key(*row) for row in rows)


def recorded_keys_about(
    session: Session, *, now: datetime, subjects: Iterable[Subject]
) -> Recorded:
    """`recorded_keys`, for these subjects only: a round reads the keys of what it works out
    (through the outbox's unique index, which starts with kind and subject), not every key."""
    ids: dict[str, list[int]] = {}
    for family, subject_id in subjects:
        ids.setdefault(family, []).append(subject_id)
    keys: list[Key] = []
    for family, subject_ids in ids.items():
        for chunk in statement_chunks(subject_ids):
            keys += _keys_of(session, SUBJECT_KINDS[family], chunk, now - LOOKBACK)
    return recorded_index(keys)


def _keys_of(
    session: Session, kinds: Sequence[ReminderKind], subject_ids: Sequence[int], since: datetime
) -> list[Key]:
    rows = session.execute(
        sa.select(*_KEY_COLUMNS)
        .where(col(OutboxEntry.kind).in_(kinds))
        .where(col(OutboxEntry.subject_id).in_(subject_ids))
        .where(col(OutboxEntry.fire_at) >= since)
    ).all()
    return [Key(*row) for row in rows]


def record_due(session: Session, *, dues: Sequence[Due], at: datetime) -> int:
    """Record reminders in the outbox; one already there is left as it is. Returns how many."""
    if not dues:
        return 0
    table = OutboxEntry.__table__  # type: ignore[attr-defined]
    # One statement with many parameter sets, compiled once: a multi-row VALUES clause is
    # compiled afresh for every chunk, which cost most of a first planning's time.
    statement = insert_new(session, table)
    connection = session.connection()
    recorded = 0
    for start in range(0, len(dues), INSERT_CHUNK):
        rows = [_outbox_row(due, at) for due in dues[start : start + INSERT_CHUNK]]
        recorded += connection.execute(statement, rows).rowcount
    return recorded


def _outbox_row(due: Due, at: datetime) -> dict[str, object]:
    return {
        "kind": due.kind,
        "subject_id": due.subject_id,
        "member_id": due.member_id,
        "occurrence": due.occurrence,
        "fire_at": due.fire_at,
        "send_at": due.send_at,
        "expires_at": due.expires_at,
        "state": due.state,
        "recorded_at": at,
        "detail": "",
        "attempts": 0,
    }


@dataclass(frozen=True)
class PendingReminder:
    """A reminder waiting to go, and where to."""

    id: int
    member_id: int
    chat_id: int


def pending_reminders(session: Session, *, now: datetime, limit: int) -> list[PendingReminder]:
    """Reminders due to go now, oldest first."""
    rows = session.exec(
        select(OutboxEntry.id, OutboxEntry.member_id, Member.telegram_id)
        .join(Member, col(Member.id) == OutboxEntry.member_id)
        .where(col(OutboxEntry.state) == OutboxState.PENDING)
        .where(col(OutboxEntry.send_at) <= now)
        .order_by(col(OutboxEntry.send_at), col(OutboxEntry.id))
        .limit(limit)
    ).all()
    return [PendingReminder(entry, member, chat) for entry, member, chat in rows if entry]


def pending_entry(session: Session, *, outbox_id: int) -> OutboxEntry | None:
    """The reminder, if it is still waiting to go."""
    entry = session.get(OutboxEntry, outbox_id)
    return entry if entry is not None and entry.state == OutboxState.PENDING else None


def claim(
    session: Session, *, outbox_id: int, at: datetime, sent: Sequence[tuple[int, int]] = ()
) -> bool:
    """Mark a pending reminder as being sent; False if it is no longer pending.

    Committed immediately before the request, after the pacer's wait, so a crash after
    Telegram accepted it cannot lead to a second copy (the row stays `sending` and is never
    picked up again), and a crash while waiting for a slot loses nothing. `sent`, the
    reminders Telegram has accepted since the last claim, are recorded in the same
    transaction (`record_sent`): a crash leaves `sending` only those sent since.

    On PostgreSQL the row is taken `FOR UPDATE SKIP LOCKED`: a row another instance is
    claiming at this moment is passed over rather than waited for (SQLite, one instance,
    has no row locks and SQLAlchemy leaves the clause out there).
    """
    record_sent(session, sent=sent, at=at)
    claimable = (
        select(OutboxEntry.id)
        .where(col(OutboxEntry.id) == outbox_id)
        .where(col(OutboxEntry.state) == OutboxState.PENDING)
        .with_for_update(skip_locked=True)
    )
    result = session.execute(
        update(OutboxEntry)
        .where(col(OutboxEntry.id) == claimable.scalar_subquery())
        .values(state=OutboxState.SENDING, claimed_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def settle_entry(
    session: Session,
    *,
    outbox_id: int,
    state: OutboxState,
    at: datetime,
    message_id: int | None = None,
    detail: str = "",
) -> None:
    """Record how a reminder ended: sent, dropped, expired, undeliverable, unconfirmed."""
    entry = session.get_one(OutboxEntry, outbox_id)
    entry.state, entry.detail = state, detail[:500]
    if state == OutboxState.SENT:
        entry.sent_at, entry.message_id = at, message_id
    session.add(entry)


def record_sent(session: Session, *, sent: Sequence[tuple[int, int]], at: datetime) -> None:
    """Record reminders as sent: (outbox id, Telegram message id) pairs."""
    for outbox_id, message_id in sent:
        session.execute(
            update(OutboxEntry)
            .where(col(OutboxEntry.id) == outbox_id)
            .where(col(OutboxEntry.state) == OutboxState.SENDING)
            .values(state=OutboxState.SENT, sent_at=at, message_id=message_id)
        )


def release(
    session: Session,
    *,
    outbox_id: int,
    now: datetime,
    wait: timedelta | None,
    reason: str,
    backoff: Backoff,
) -> int | None:
    """Telegram refused a claimed reminder, so it did not arrive: it waits to go again.

    `wait` is Telegram's own (flood control), else the backoff's. Returns the refusals so
    far, or None when there have been too many: the reminder is then `failed`.
    """
    entry = session.get_one(OutboxEntry, outbox_id)
    entry.attempts += 1
    entry.claimed_at, entry.detail = None, reason[:500]
    if backoff.exhausted(entry.attempts):
        entry.state = OutboxState.FAILED
        session.add(entry)
        return None
    entry.state = OutboxState.PENDING
    wait = wait if wait is not None else timedelta(seconds=backoff.wait(entry.attempts))
    entry.send_at = now + wait
    session.add(entry)
    return entry.attempts


def sweep_interrupted(session: Session, *, now: datetime) -> list[int]:
    """Rows left `sending` by a stopped bot become `unconfirmed` (never resent); their ids."""
    stale = session.exec(
        select(OutboxEntry)
        .where(col(OutboxEntry.state) == OutboxState.SENDING)
        .where(col(OutboxEntry.claimed_at) < now - SENDING_TIMEOUT)
    ).all()
    for entry in stale:
        entry.state = OutboxState.UNCONFIRMED
        entry.detail = "the bot stopped while sending: it may or may not have arrived"
        session.add(entry)
    return [entry.id for entry in stale if entry.id is not None]


def outbox_counts(session: Session, *, kind: ReminderKind | None = None) -> dict[OutboxState, int]:
    """How many reminders are in each state (all kinds, or one)."""
    query = select(OutboxEntry.state, func.count()).group_by(col(OutboxEntry.state))
    if kind is not None:
        query = query.where(col(OutboxEntry.kind) == kind)
    return {OutboxState(state): count for state, count in session.exec(query).all()}


def mark_unreachable(session: Session, *, member_id: int, at: datetime) -> None:
    """Telegram refuses to deliver to the member: stop trying until they write again."""
    row = preference_row(session, member_id)
    if row.unreachable_since is None:
        row.unreachable_since = at
    session.execute(
        update(OutboxEntry)
        .where(col(OutboxEntry.member_id) == member_id)
        .where(col(OutboxEntry.state) == OutboxState.PENDING)
        .values(state=OutboxState.UNDELIVERABLE, detail="the member has blocked the bot")
    )
