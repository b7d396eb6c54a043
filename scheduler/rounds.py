"""One planning round and one reminder's reading: database work the delivery runs in a thread.

`plan_reminders` records in the outbox what is due (the pure planner in `scheduler.due`
decides), from every fact and every recorded key: the full planner, which the bot's rounds
(`scheduler.incremental`, planning from what changed) are tested against. `read_pending`
reads what a pending reminder says, settling one that must not go.
Neither knows how a reminder reaches a member: `handlers.delivery` does the sending.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from csp_bot.models.outbox import (
    pending_entry,
    record_due,
    recorded_keys,
    settle_entry,
    sweep_interrupted,
)
from csp_bot.models.reminder_facts import load_facts
from csp_bot.models.reminder_types import Due, Subject
from csp_bot.scheduler.content import Circumstances, Content, Withheld, reminder_content
from csp_bot.scheduler.due import Rules, due_reminders

if TYPE_CHECKING:  # a session is only passed through to the domain operations in `models`
    from sqlmodel import Session


def plan_reminders(
    session: Session, *, rules: Rules, now: datetime, reported: set[Subject] | None = None
) -> list[Due]:
    """Record in the outbox every reminder whose moment has come; returns what was recorded."""
    # One set for both steps: a subject that fails is logged once, unless already `reported`.
    reported = set() if reported is None else reported
    facts = load_facts(session, now=now, zone=rules.zone, reported=reported)
    dues = due_reminders(facts, rules, now, recorded_keys(session, now=now), reported)
    # Writes last: on SQLite the transaction takes the file's write lock at its first
    # write, and holds it to the end; the reads above run beside users' commands.
    sweep_interrupted(session, now=now)
    record_due(session, dues=dues, at=now)
    return dues


def read_pending(
    session: Session, *, outbox_id: int, when: Circumstances
) -> Content | Withheld | None:
    """What a pending reminder says; None if it is no longer pending.

    A reminder whose subject is gone (or that must not go now) is settled here.
    """
    entry = pending_entry(session, outbox_id=outbox_id)
    if entry is None:
        return None
    content = reminder_content(session, entry=entry, when=when)
    if isinstance(content, Withheld):
        settle_entry(
            session, outbox_id=outbox_id, state=content.state, at=when.now, detail=content.reason
        )
    return content
