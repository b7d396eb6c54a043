"""A person's rights over their data (UK GDPR): everything held about a member, exported;
and erasure, which replaces who they were with "former member N" and keeps the
partnership's records of what was done.

The audit trail refers to members by id only (`models.audit`), so erasing a name is one
change to one row; what else names a person (their messages in the inbox, drafts, reminder
settings) is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, or_, select

from csp_bot.models.audit import Actor, jsonable, record_event, snapshot
from csp_bot.models.lifecycle import (
    MemberLine,
    Standing,
    clear_ownership,
    discard_member_drafts,
    find_member,
    inbox_rows_from,
    keep_a_coordinator,
    member_line,
    standing,
)
from csp_bot.models.tables import (
    Absence,
    Action,
    ActionOwner,
    ActionSnooze,
    AuditEntry,
    DialogueDraft,
    Invite,
    Measure,
    MeasureFigure,
    MeasureOwner,
    Meeting,
    MeetingReply,
    Member,
    Organisation,
    OutboxEntry,
    ProgressUpdate,
    ReminderPreference,
    SendPace,
)

EXPORT_FORMAT = 1


def former_name(member_id: int) -> str:
    return f"former member {member_id}"


# --- export ----------------------------------------------------------------------------------


def export_member(session: Session, *, member_id: int, at: datetime) -> dict[str, Any]:
    """Everything held about one member, as JSON-ready values, section by section."""
    member = find_member(session, member_id=member_id)
    return {
        "format": EXPORT_FORMAT,
        "exported_at": at.isoformat(),
        "profile": _profile(session, member),
        "role_history": _role_history(session, member_id),
        "progress_updates": _updates(session, member_id),
        "figures_sent": _figures(session, member_id),
        "meeting_replies": _replies(session, member_id),
        "reminder_settings": _settings(session, member_id),
        "check_in_snoozes": _snoozes(session, member_id),
        "actions_owned": _owned(session, member_id),
        "measures_owned": _measures_owned(session, member_id),
        "absences": _absences(session, member_id),
        "invites_used": _invites(session, member_id),
        "reminders": _reminders(session, member_id),
        "open_drafts": _drafts(session, member),
        "messages_held": _messages(session, member),
        "audit_entries": _audit(session, member_id),
    }


def _profile(session: Session, member: Member) -> dict[str, Any]:
    organisation = session.get_one(Organisation, member.organisation_id)
    erased = standing(member) == Standing.ERASED
    return {
        "id": member.id,
        "name": member.name,
        "telegram_id": None if erased else member.telegram_id,
        "organisation": organisation.name,
        "role": member.role.value,
        "standing": standing(member).value,
        "joined_at": jsonable(member.joined_at),
        "deactivated_at": jsonable(member.deactivated_at),
        "erased_at": jsonable(member.erased_at),
    }


def _organisations(session: Session) -> dict[int, str]:
    return {org.id: org.name for org in session.exec(select(Organisation)).all() if org.id}


def _role_history(session: Session, member_id: int) -> list[dict[str, Any]]:
    """Each recorded change of organisation, role or standing, oldest first."""
    names = _organisations(session)
    entries = session.exec(
        select(AuditEntry)
        .where(AuditEntry.entity == "member", AuditEntry.entity_id == member_id)
        .order_by(col(AuditEntry.at), col(AuditEntry.id))
    ).all()
    history = []
    for entry in entries:
        state = entry.after or {}
        history.append(
            {
                "at": jsonable(entry.at),
                "change": entry.change,
                "by": entry.actor,
                "organisation": names.get(state.get("organisation_id", 0)),
                "role": state.get("role"),
                "active": state.get("active"),
            }
        )
    return history


def _updates(session: Session, member_id: int) -> list[dict[str, Any]]:
    rows = session.exec(
        select(ProgressUpdate, Action.ref)
        .join(Action, col(Action.id) == ProgressUpdate.action_id)
        .where(ProgressUpdate.member_id == member_id)
        .order_by(col(ProgressUpdate.created_at), col(ProgressUpdate.id))
    ).all()
    return [
        {
            "action": ref,
            "at": jsonable(update.created_at),
            "status": update.status.value,
            "note": update.note,
            "mitigation": update.mitigation,
            "forecast": update.forecast,
            "withdrawn_at": jsonable(update.withdrawn_at),
        }
        for update, ref in rows
    ]


def _figures(session: Session, member_id: int) -> list[dict[str, Any]]:
    rows = session.exec(
        select(MeasureFigure, Measure.code)
        .join(Measure, col(Measure.id) == MeasureFigure.measure_id)
        .where(MeasureFigure.member_id == member_id)
        .order_by(col(MeasureFigure.created_at), col(MeasureFigure.id))
    ).all()
    return [
        {
            "measure": code,
            "period": figure.period,
            "value": figure.value,
            "note": figure.note,
            "at": jsonable(figure.created_at),
            "replaced_at": jsonable(figure.superseded_at),
            "withdrawn_at": jsonable(figure.withdrawn_at),
        }
        for figure, code in rows
    ]


def _replies(session: Session, member_id: int) -> list[dict[str, Any]]:
    rows = session.exec(
        select(MeetingReply, Meeting)
        .join(Meeting, col(Meeting.id) == MeetingReply.meeting_id)
        .where(MeetingReply.member_id == member_id)
        .order_by(col(Meeting.starts_at))
    ).all()
    return [
        {
            "meeting": meeting.title,
            "starts_at": jsonable(meeting.starts_at),
            "reply": reply.reply.value,
            "replied_at": jsonable(reply.replied_at),
        }
        for reply, meeting in rows
    ]


def _settings(session: Session, member_id: int) -> dict[str, Any] | None:
    row = session.get(ReminderPreference, member_id)
    return None if row is None else snapshot(row)


def _snoozes(session: Session, member_id: int) -> list[dict[str, Any]]:
    rows = session.exec(
        select(ActionSnooze, Action.ref)
        .join(Action, col(Action.id) == ActionSnooze.action_id)
        .where(ActionSnooze.member_id == member_id)
    ).all()
    return [{"action": ref, "until": jsonable(row.until)} for row, ref in rows]


def _owned(session: Session, member_id: int) -> list[str]:
    query = (
        select(Action.ref)
        .join(ActionOwner, col(ActionOwner.action_id) == Action.id)
        .where(ActionOwner.member_id == member_id)
        .order_by(col(Action.ref))
    )
    return list(session.exec(query).all())


def _measures_owned(session: Session, member_id: int) -> list[str]:
    query = (
        select(Measure.code)
        .join(MeasureOwner, col(MeasureOwner.measure_id) == Measure.id)
        .where(MeasureOwner.member_id == member_id)
        .order_by(col(Measure.code))
    )
    return list(session.exec(query).all())


def _absences(session: Session, member_id: int) -> list[dict[str, Any]]:
    """Their absences and the deputy of each, and those they covered."""
    involved = or_(col(Absence.member_id) == member_id, col(Absence.deputy_member_id) == member_id)
    rows = session.exec(select(Absence).where(involved).order_by(col(Absence.id))).all()
    return [
        {
            "away": row.member_id,
            "deputy": row.deputy_member_id,
            "from": jsonable(row.starts_at),
            "until": jsonable(row.ends_at),
        }
        for row in rows
    ]


def _invites(session: Session, member_id: int) -> list[dict[str, Any]]:
    names = _organisations(session)
    rows = session.exec(select(Invite).where(Invite.used_by_member_id == member_id)).all()
    return [
        {
            "invite": row.id,
            "organisation": names.get(row.organisation_id),
            "role": row.role.value,
            "used_at": jsonable(row.used_at),
        }
        for row in rows
    ]


def _reminders(session: Session, member_id: int) -> list[dict[str, Any]]:
    rows = session.exec(
        select(OutboxEntry)
        .where(OutboxEntry.member_id == member_id)
        .order_by(col(OutboxEntry.fire_at), col(OutboxEntry.id))
    ).all()
    return [
        {
            "kind": row.kind.value,
            "about": row.subject_id,
            "due_at": jsonable(row.fire_at),
            "state": row.state.value,
            "sent_at": jsonable(row.sent_at),
        }
        for row in rows
    ]


def _drafts(session: Session, member: Member) -> list[dict[str, Any]]:
    rows = session.exec(
        select(DialogueDraft).where(col(DialogueDraft.user_id) == member.telegram_id)
    ).all()
    return [{"kind": row.dialogue, "step": row.step, "data": row.data} for row in rows]


def _messages(session: Session, member: Member) -> list[dict[str, Any]]:
    """Their updates still in the inbox (kept CSPBOT_INBOX_DAYS days), as Telegram sent them."""
    return [row.payload for row in inbox_rows_from(session, member.telegram_id)]


def _audit(session: Session, member_id: int) -> list[dict[str, Any]]:
    """Entries of changes they made, and of changes to their membership."""
    entries = session.exec(
        select(AuditEntry)
        .where(
            or_(
                col(AuditEntry.member_id) == member_id,
                (col(AuditEntry.entity) == "member") & (col(AuditEntry.entity_id) == member_id),
            )
        )
        .order_by(col(AuditEntry.at), col(AuditEntry.id))
    ).all()
    return [snapshot(entry) for entry in entries]


# --- erasure ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erased:
    """The member as they now stand, and whether this call erased anything."""

    member: MemberLine
    changed: bool


def erase_member(session: Session, *, member_id: int, at: datetime, actor: Actor) -> Erased:
    """Replace the member's name and Telegram id with "former member N", end their access
    and delete what is held only about them; their updates, replies and the audit trail
    stay, now naming nobody. Doing it twice is harmless."""
    member = find_member(session, member_id=member_id)
    if member.erased_at is not None:
        return Erased(member_line(session, member_id=member_id), changed=False)
    if member.active:
        keep_a_coordinator(session, member)
    _forget_conversations(session, member)
    session.execute(
        sa.delete(ReminderPreference).where(col(ReminderPreference.member_id) == member_id)
    )
    session.execute(sa.delete(OutboxEntry).where(col(OutboxEntry.member_id) == member_id))
    session.execute(
        sa.update(ActionSnooze)
        .where(col(ActionSnooze.member_id) == member_id)
        .values(member_id=None)
    )
    clear_ownership(session, member_id=member_id, at=at, actor=actor)
    member.name, member.telegram_id = former_name(member_id), -member_id
    member.active, member.erased_at = False, at
    member.deactivated_at = member.deactivated_at or at
    session.add(member)
    session.flush()
    record_event(
        session,
        actor=actor,
        at=at,
        entity="member",
        entity_id=member_id,
        change="erased",
        detail=snapshot(member),
    )
    return Erased(member_line(session, member_id=member_id), changed=True)


def _forget_conversations(session: Session, member: Member) -> None:
    """Their drafts and their messages in the inbox: the raw updates carry their name."""
    discard_member_drafts(session, telegram_id=member.telegram_id)
    for row in inbox_rows_from(session, member.telegram_id):
        session.delete(row)
    # Their chat's place in the pace of sends names their Telegram id too.
    session.execute(sa.delete(SendPace).where(col(SendPace.chat_id) == member.telegram_id))
