"""How long the bot keeps what it no longer needs, and pruning it.

Kept for `records_days` (90 by default): reminders in the outbox, drafts left unfinished,
invites past their expiry. The audit trail is kept `audit_years` (6 by default: the
Limitation Act's six years, the usual council retention for records of decisions). Handled
updates in the inbox go after `inbox_days` (7). A chat's place in the pace of sends goes
once a day has passed; it is not counted, as it holds nothing anyone keeps. Applied by a
daily job and `csp-bot prune`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col

from csp_bot.models.audit import Actor, record_event
from csp_bot.models.inbox import prune_inbox
from csp_bot.models.tables import AuditEntry, DialogueDraft, Invite, OutboxEntry, SendPace

RETENTION = Actor("retention")
PACE_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class Retention:
    """How long each kind of record is kept."""

    inbox_days: int = 7
    records_days: int = 90
    audit_years: int = 6


@dataclass(frozen=True)
class Pruned:
    """How many of each were deleted."""

    inbox_updates: int = 0
    reminders: int = 0
    drafts: int = 0
    invites: int = 0
    audit_entries: int = 0

    @property
    def total(self) -> int:
        return sum(asdict(self).values())

    def summary(self) -> str:
        counts = ", ".join(f"{what.replace('_', ' ')} {n}" for what, n in asdict(self).items())
        return f"pruned: {counts}" if self.total else "nothing old enough to prune"


def prune(session: Session, *, now: datetime, keep: Retention) -> Pruned:
    """Delete what is older than its retention; audited when anything went."""
    cutoff = now - timedelta(days=keep.records_days)
    pruned = Pruned(
        inbox_updates=prune_inbox(session, now=now, keep=timedelta(days=keep.inbox_days)),
        reminders=_delete(session, OutboxEntry, col(OutboxEntry.fire_at) < cutoff),
        drafts=_prune_drafts(session, cutoff),
        invites=_delete(session, Invite, col(Invite.expires_at) < cutoff),
        audit_entries=_delete(
            session, AuditEntry, col(AuditEntry.at) < years_before(now, keep.audit_years)
        ),
    )
    _delete(session, SendPace, col(SendPace.next_at) < (now - PACE_KEPT).timestamp())
    if pruned.total:
        record_event(
            session,
            actor=RETENTION,
            at=now,
            entity="retention",
            entity_id=None,
            change="pruned",
            detail={**asdict(pruned), **{f"kept_{k}": v for k, v in asdict(keep).items()}},
        )
    return pruned


def years_before(moment: datetime, years: int) -> datetime:
    """The same date `years` earlier (29 February becomes the 28th)."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


def _delete(session: Session, table: type[SQLModel], where: sa.ColumnElement[bool]) -> int:
    result = session.execute(sa.delete(table).where(where))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _prune_drafts(session: Session, cutoff: datetime) -> int:
    """Dialogues last touched before the cutoff."""
    return _delete(session, DialogueDraft, col(DialogueDraft.touched_at) < cutoff)
