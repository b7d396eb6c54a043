"""Each member's reminder preferences: topics on or off, snoozes, whether they can be reached.

Also putting off one action's check-in prompt for one member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from csp_bot.models.audit import Actor, record_change, snapshot
from csp_bot.models.errors import DomainError, NotFound
from csp_bot.models.membership import MemberView, get_writer, member_view
from csp_bot.models.owners import find_action_row, set_owner_ids
from csp_bot.models.progress import may_update
from csp_bot.models.reminder_types import Topic
from csp_bot.models.tables import ActionSnooze, Member, ReminderPreference

SNOOZE_LIMIT = timedelta(days=90)


# --- preferences ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    """What one member receives."""

    member_id: int
    muted: frozenset[Topic]
    snoozed_until: datetime | None
    unreachable_since: datetime | None

    def receives(self, topic: Topic) -> bool:
        return topic not in self.muted

    def snoozed(self, at: datetime) -> bool:
        return self.snoozed_until is not None and self.snoozed_until > at


def preference_row(session: Session, member_id: int) -> ReminderPreference:
    row = session.get(ReminderPreference, member_id)
    if row is None:
        row = ReminderPreference(member_id=member_id, muted=[])
        session.add(row)
    return row


def _view(row: ReminderPreference) -> Preferences:
    return Preferences(
        member_id=row.member_id,
        muted=frozenset(Topic(topic) for topic in row.muted if topic in Topic.__members__.values()),
        snoozed_until=row.snoozed_until,
        unreachable_since=row.unreachable_since,
    )


def get_preferences(session: Session, *, member_id: int) -> Preferences:
    """The member's reminder settings (everything on, no snooze, for one who never chose)."""
    row = session.get(ReminderPreference, member_id)
    if row is None:
        return Preferences(member_id, frozenset(), None, None)
    return _view(row)


def set_topic(
    session: Session, *, member_id: int, topic: Topic, on: bool, at: datetime
) -> Preferences:
    """Turn one kind of reminder on or off for the member (audited)."""
    before = _before(session, member_id)
    row = preference_row(session, member_id)
    muted = set(row.muted) - {topic.value}
    if not on:
        muted.add(topic.value)
    row.muted = sorted(muted)  # a new list, so the JSON column sees the change
    record_change(session, actor=Actor.member(member_id), at=at, record=row, before=before)
    return _view(row)


def _before(session: Session, member_id: int) -> dict[str, object] | None:
    row = session.get(ReminderPreference, member_id)
    return None if row is None else snapshot(row)


def snooze(
    session: Session, *, member_id: int, until: datetime | None, at: datetime
) -> Preferences:
    """Hold all of the member's reminders until `until` (None ends a snooze)."""
    if until is not None and not at < until <= at + SNOOZE_LIMIT:
        raise DomainError(f"A snooze can last up to {SNOOZE_LIMIT.days} days.")
    before = _before(session, member_id)
    row = preference_row(session, member_id)
    row.snoozed_until = until
    record_change(session, actor=Actor.member(member_id), at=at, record=row, before=before)
    return _view(row)


# Built once and read with Core: this runs for every private message.
_UNREACHABLE = (
    sql_select(col(ReminderPreference.member_id))
    .join(Member, col(Member.id) == ReminderPreference.member_id)
    .where(col(Member.telegram_id) == bindparam("telegram_id"))
    .where(col(ReminderPreference.unreachable_since).is_not(None))
)


def mark_reachable(session: Session, *, telegram_id: int) -> bool:
    """The member wrote to the bot, so Telegram reaches them again; True if they were not.

    Runs for every private message, so it only reads unless there is something to clear.
    """
    found = session.connection().execute(_UNREACHABLE, {"telegram_id": telegram_id}).first()
    if found is None:
        return False
    row = session.get_one(ReminderPreference, found[0])
    row.unreachable_since = None
    session.add(row)
    return True


def member_who_wrote(session: Session, *, telegram_id: int) -> MemberView | None:
    """The active member who just wrote to the bot (None for anyone else), noted as
    reachable again. Runs for every private message: one statement, unless there is a
    mark to clear (or the writer is no active member, whose old row may carry one)."""
    member, unreachable = get_writer(session, telegram_id=telegram_id)
    if member is None or unreachable:
        mark_reachable(session, telegram_id=telegram_id)
    return member


@dataclass(frozen=True)
class UnreachableMember:
    name: str
    organisation_id: int
    since: datetime


def unreachable_members(session: Session) -> list[UnreachableMember]:
    """Active members Telegram will not deliver to, longest first."""
    rows = session.exec(
        select(Member.name, Member.organisation_id, ReminderPreference.unreachable_since)
        .join(ReminderPreference, col(ReminderPreference.member_id) == Member.id)
        .where(col(ReminderPreference.unreachable_since).is_not(None))
        .where(col(Member.active).is_(True))
        .order_by(col(ReminderPreference.unreachable_since))
    ).all()
    return [UnreachableMember(name, org, since) for name, org, since in rows if since is not None]


def snooze_action(
    session: Session, *, action_id: int, member_id: int, until: datetime, at: datetime
) -> ActionSnooze:
    """Put off an action's check-in prompt until `until` (audited)."""
    row = session.get(ActionSnooze, action_id)
    before = None if row is None else snapshot(row)
    if row is None:
        row = ActionSnooze(action_id=action_id, until=until, member_id=member_id)
    row.until, row.member_id = until, member_id
    record_change(session, actor=Actor.member(member_id), at=at, record=row, before=before)
    return row


def set_action_owner(
    session: Session, *, ref: str, telegram_id: int | None, at: datetime, actor: Actor
) -> str:
    """Make a member the one owner reminded about an action (None: no owner, so its lead's
    partners again). `models.owners` adds and removes one of several."""
    action = find_action_row(session, ref)
    assert action.id is not None
    if telegram_id is None:
        set_owner_ids(session, action_id=action.id, ids=[], at=at, actor=actor)
        return f"{action.ref}: reminders go to its lead organisation's partners"
    owner = session.exec(
        select(Member).where(Member.telegram_id == telegram_id, col(Member.active).is_(True))
    ).first()
    if owner is None:
        raise NotFound(f"no active member with Telegram id {telegram_id}")
    assert owner.id is not None
    if not may_update(member_view(session, owner), action.lead_organisation_id):
        raise DomainError(
            f"{owner.name} may not update {action.ref}: its owner must be a partner of "
            "its lead organisation, the chair or the coordinator"
        )
    set_owner_ids(session, action_id=action.id, ids=[owner.id], at=at, actor=actor)
    return f"{action.ref}: reminders go to {owner.name}"
