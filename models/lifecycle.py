"""A member's life in the partnership: listed, deactivated (access ends, records stay) or
removed (deleted outright, when nothing the partnership keeps refers to them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, func, or_, select

from csp_bot.models.audit import Actor, record_change, record_removal, snapshot
from csp_bot.models.enums import Role
from csp_bot.models.errors import DomainError, NotFound
from csp_bot.models.owners import drop_ownerships
from csp_bot.models.tables import (
    Absence,
    ActionSnooze,
    AuditEntry,
    DialogueDraft,
    InboxUpdate,
    Invite,
    MeetingReply,
    Member,
    Organisation,
    OutboxEntry,
    ProgressUpdate,
    ReminderPreference,
)

# Everything a person may have open in a conversation with the bot, keyed by their user id.


class Standing(StrEnum):
    """Where a member stands."""

    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    ERASED = "erased"


@dataclass(frozen=True)
class MemberLine:
    """One member as the coordinator's list shows them."""

    id: int
    telegram_id: int
    name: str
    organisation: str
    role: Role
    standing: Standing
    joined_at: datetime
    since: datetime | None


def standing(member: Member) -> Standing:
    if member.erased_at is not None:
        return Standing.ERASED
    return Standing.ACTIVE if member.active else Standing.DEACTIVATED


def list_members(session: Session, *, active_only: bool = False) -> list[MemberLine]:
    """Every member, by organisation and name; `active_only` leaves out the others."""
    query = (
        select(Member, Organisation.name)
        .join(Organisation, col(Organisation.id) == Member.organisation_id)
        .order_by(col(Organisation.name), col(Member.name), col(Member.id))
    )
    if active_only:
        query = query.where(col(Member.active).is_(True))
    return [_line(member, organisation) for member, organisation in session.exec(query).all()]


def _line(member: Member, organisation: str) -> MemberLine:
    assert member.id is not None
    state = standing(member)
    since = {Standing.DEACTIVATED: member.deactivated_at, Standing.ERASED: member.erased_at}
    return MemberLine(
        id=member.id,
        telegram_id=member.telegram_id,
        name=member.name,
        organisation=organisation,
        role=member.role,
        standing=state,
        joined_at=member.joined_at,
        since=since.get(state),
    )


def member_line(session: Session, *, member_id: int) -> MemberLine:
    """One member, or NotFound saying how to find the right id."""
    member = find_member(session, member_id=member_id)
    return _line(member, session.get_one(Organisation, member.organisation_id).name)


def find_member(session: Session, *, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise NotFound(f"no member {member_id}: `csp-bot member list` shows every member's id")
    return member


def discard_member_drafts(session: Session, *, telegram_id: int) -> int:
    """Delete the person's open dialogue (/update, /meeting, /decide); returns how many went."""
    result = session.execute(
        sa.delete(DialogueDraft).where(col(DialogueDraft.user_id) == telegram_id)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def inbox_rows_from(session: Session, telegram_id: int) -> list[InboxUpdate]:
    """The inbox updates from this person: their private chat, and what they sent in groups.

    Groups are read whole and filtered here: the inbox holds a few days of updates, and
    the JSON path to the sender differs between message kinds.
    """
    rows = session.exec(
        select(InboxUpdate).where(
            or_(col(InboxUpdate.chat_key) == telegram_id, col(InboxUpdate.chat_key) < 0)
        )
    ).all()
    return [row for row in rows if row.chat_key == telegram_id or _sent_by(row, telegram_id)]


def _sent_by(row: InboxUpdate, telegram_id: int) -> bool:
    for part in row.payload.values():
        if isinstance(part, dict):
            sender = part.get("from")
            if isinstance(sender, dict) and sender.get("id") == telegram_id:
                return True
    return False


@dataclass(frozen=True)
class Deactivated:
    """The member as they now stand, and whether this call changed anything."""

    member: MemberLine
    changed: bool
    drafts_discarded: int = 0


def deactivate_member(
    session: Session, *, member_id: int, at: datetime, actor: Actor
) -> Deactivated:
    """End a member's access: they become a stranger to the bot, their reminders stop and
    their open drafts go; their records stay, with their name. Doing it twice is harmless."""
    member = find_member(session, member_id=member_id)
    if not member.active:
        return Deactivated(member_line(session, member_id=member_id), changed=False)
    keep_a_coordinator(session, member)
    before = snapshot(member)
    member.active, member.deactivated_at = False, at
    record_change(session, actor=actor, at=at, record=member, before=before)
    discarded = discard_member_drafts(session, telegram_id=member.telegram_id)
    return Deactivated(member_line(session, member_id=member_id), True, discarded)


def keep_a_coordinator(session: Session, member: Member) -> None:
    """Refuse to deactivate the last active coordinator: nobody could invite or manage."""
    if member.role != Role.ADMIN:
        return
    others = session.exec(
        select(func.count())
        .select_from(Member)
        .where(col(Member.role) == Role.ADMIN, col(Member.active).is_(True))
        .where(col(Member.id) != member.id)
    ).one()
    if not others:
        raise DomainError(
            f"{member.name} is the only active coordinator: add another first "
            "(`csp-bot member add ... --role admin`)"
        )


def remove_member(session: Session, *, member_id: int, at: datetime, actor: Actor) -> MemberLine:
    """Delete a member outright (registered by mistake, say), with what is held only for
    them; refused when the partnership's records refer to them."""
    member = find_member(session, member_id=member_id)
    line = member_line(session, member_id=member_id)
    _refuse_if_on_record(session, member)
    if member.active:
        keep_a_coordinator(session, member)
    discard_member_drafts(session, telegram_id=member.telegram_id)
    for table in (ReminderPreference, MeetingReply, OutboxEntry):
        session.execute(sa.delete(table).where(col(table.member_id) == member_id))
    for row in inbox_rows_from(session, member.telegram_id):
        session.delete(row)
    session.execute(
        sa.update(ActionSnooze)
        .where(col(ActionSnooze.member_id) == member_id)
        .values(member_id=None)
    )
    clear_ownership(session, member_id=member_id, at=at, actor=actor)
    record_removal(session, actor=actor, at=at, record=member)
    return line


def _refuse_if_on_record(session: Session, member: Member) -> None:
    counts = {
        "progress updates": _count(
            session, ProgressUpdate, col(ProgressUpdate.member_id) == member.id
        ),
        "audit entries of changes they made": _count(
            session, AuditEntry, col(AuditEntry.member_id) == member.id
        ),
        "invites they joined by": _count(
            session, Invite, col(Invite.used_by_member_id) == member.id
        ),
    }
    held = [f"{count} {what}" for what, count in counts.items() if count]
    if held:
        raise DomainError(
            f"member {member.id} ({member.name}) cannot be removed: the partnership's records "
            f"refer to them ({', '.join(held)}). Use `csp-bot member deactivate {member.id}` to "
            f"end their access, or `csp-bot member erase {member.id}` to replace their personal "
            "details"
        )


def _count(session: Session, table: type[SQLModel], where: sa.ColumnElement[bool]) -> int:
    return int(session.exec(select(func.count()).select_from(table).where(where)).one())


def clear_ownership(session: Session, *, member_id: int, at: datetime, actor: Actor) -> None:
    """The member owns no action or measure any more: those with no other owner go back to
    the lead's or supplier's partners (audited). Absences they were in end (audited)."""
    drop_ownerships(session, member_id=member_id, at=at, actor=actor)
    involved = or_(col(Absence.member_id) == member_id, col(Absence.deputy_member_id) == member_id)
    for absence in session.exec(select(Absence).where(involved)).all():
        record_removal(session, actor=actor, at=at, record=absence)
