"""Board meetings: scheduling, who is coming, quorum, and calendar (.ics) files."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from csp_bot.models.access import INVITED, is_invited
from csp_bot.models.audit import Actor, record_change, record_removal, snapshot
from csp_bot.models.errors import DomainError, NotFound
from csp_bot.models.limits import AGENDA_ITEMS, check_agenda_item, check_place, check_title
from csp_bot.models.reminder_types import Reply
from csp_bot.models.tables import Meeting, MeetingReply, Member, Organisation, PlanInfo
from csp_bot.models.texts import parse_when

# Calendar entries need an end; board meetings in the plan run about two hours.
MEETING_LENGTH = timedelta(hours=2)
ICS_LINE_OCTETS = 75
# Calendar entries are identified as meeting-ID@ICS_HOST, so re-importing updates them.
ICS_HOST = "csp-bot"


@dataclass(frozen=True)
class MeetingView:
    """A meeting as the bot shows it."""

    id: int
    title: str
    starts_at: datetime
    location: str
    agenda: tuple[str, ...]

    @property
    def is_link(self) -> bool:
        return self.location.startswith(("https://", "http://"))


def meeting_view(meeting: Meeting) -> MeetingView:
    assert meeting.id is not None
    agenda = tuple(line for line in meeting.agenda.splitlines() if line.strip())
    return MeetingView(meeting.id, meeting.title, meeting.starts_at, meeting.location, agenda)


# --- scheduling ----------------------------------------------------------------------------


def check_meeting_time(text: str, *, zone: ZoneInfo, at: datetime) -> datetime:
    """The meeting's start from what was typed; DomainError if unreadable or not ahead."""
    starts_at = parse_when(text, zone=zone)
    if starts_at <= at:
        local = starts_at.astimezone(zone)
        raise DomainError(
            f"{local:%d/%m/%Y %H:%M} is in the past: a meeting must be scheduled ahead."
        )
    return starts_at


def check_agenda(items: Iterable[str]) -> list[str]:
    """Agenda items, one per line, without the bullets people type; empty lines dropped."""
    # Only spaces and bullets are taken off before the check: str.strip() would also take
    # the control characters Python counts as spaces, which the check refuses instead.
    lines = (check_agenda_item(item.lstrip(" \t-•*"), required=False) for item in items)
    cleaned = [line for line in lines if line]
    if len(cleaned) > AGENDA_ITEMS:
        raise DomainError(
            f"An agenda can have at most {AGENDA_ITEMS} items; yours has {len(cleaned)}."
        )
    return cleaned


def schedule_meeting(
    session: Session,
    *,
    title: str,
    starts_at: datetime,
    location: str,
    agenda: Sequence[str],
    at: datetime,
    actor: Actor,
) -> MeetingView:
    """Store a new meeting (checked again here, whoever calls), and audit it."""
    if starts_at <= at:
        raise DomainError("A meeting must be scheduled ahead, not in the past.")
    meeting = Meeting(
        title=check_title(title),
        starts_at=starts_at,
        location=check_place(location),
        agenda="\n".join(check_agenda(agenda)),
    )
    clash = session.exec(
        select(Meeting).where(Meeting.title == meeting.title, Meeting.starts_at == starts_at)
    ).first()
    if clash is not None:
        raise DomainError(f"“{meeting.title}” is already scheduled at that time.")
    record_change(session, actor=actor, at=at, record=meeting, before=None)
    return meeting_view(meeting)


def upcoming_meetings(
    session: Session, *, at: datetime, limit: int | None = 10, before: datetime | None = None
) -> list[MeetingView]:
    """The next meetings (those starting before `before`, when given), soonest first."""
    query = select(Meeting).where(Meeting.starts_at > at)
    if before is not None:
        query = query.where(Meeting.starts_at < before)
    meetings = session.exec(query.order_by(col(Meeting.starts_at)).limit(limit)).all()
    return [meeting_view(meeting) for meeting in meetings]


def get_meeting(session: Session, *, meeting_id: int) -> MeetingView:
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound("That meeting is no longer scheduled.")
    return meeting_view(meeting)


def cancel_meeting(session: Session, *, meeting_id: int, at: datetime, actor: Actor) -> MeetingView:
    """Delete a meeting and its replies (reminders about it are then dropped), audited."""
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound(f"There is no meeting {meeting_id}.")
    view = meeting_view(meeting)
    for reply in session.exec(
        select(MeetingReply).where(MeetingReply.meeting_id == meeting_id)
    ).all():
        session.delete(reply)
    # The replies go first: with no relationship declared, one flush may order the deletes
    # either way, and the meeting's would then break the replies' foreign key.
    session.flush()
    record_removal(session, actor=actor, at=at, record=meeting)
    return view


# --- replies and quorum -----------------------------------------------------------------------


@dataclass(frozen=True)
class Invitee:
    """A board member and their reply, if any."""

    member_id: int
    name: str
    organisation: str
    reply: Reply | None


@dataclass(frozen=True)
class Attendance:
    """Who has replied to a meeting, and whether enough are coming."""

    meeting: MeetingView
    invitees: tuple[Invitee, ...]

    def with_reply(self, reply: Reply | None) -> list[Invitee]:
        return [invitee for invitee in self.invitees if invitee.reply == reply]

    @property
    def coming(self) -> int:
        """Members attending or sending a substitute."""
        return sum(1 for i in self.invitees if i.reply is not None and i.reply.counts_to_quorum)

    @property
    def quorum(self) -> int:
        """Half of the invited members, rounded up (at least one)."""
        return max(1, math.ceil(len(self.invitees) / 2))

    @property
    def quorate(self) -> bool:
        return self.coming >= self.quorum


def board_name(session: Session) -> str | None:
    """The board's name from the plan (None before a plan is loaded): a meeting's usual title."""
    plan = session.exec(select(PlanInfo)).first()
    return None if plan is None else plan.board


def reply_to_meeting(
    session: Session, *, meeting_id: int, member_id: int, reply: Reply, at: datetime
) -> MeetingView:
    """Record (or change) a board member's reply to a meeting still to come."""
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound("That meeting is no longer scheduled.")
    if meeting.starts_at <= at:
        raise DomainError("That meeting has already started.")
    member = session.get(Member, member_id)
    if member is None or not member.active or not is_invited(member.role):
        raise DomainError("Only board members reply to board meetings.")
    row = session.get(MeetingReply, (meeting_id, member_id))
    before = None if row is None else snapshot(row)
    if row is None:
        row = MeetingReply(meeting_id=meeting_id, member_id=member_id, reply=reply, replied_at=at)
    row.reply, row.replied_at = reply, at
    record_change(session, actor=Actor.member(member_id), at=at, record=row, before=before)
    return meeting_view(meeting)


def member_reply(session: Session, *, meeting_id: int, member_id: int) -> Reply | None:
    row = session.get(MeetingReply, (meeting_id, member_id))
    return None if row is None else row.reply


def attendance(session: Session, *, meeting_id: int) -> Attendance:
    """Every invited member with their reply, organisation by organisation."""
    meeting = get_meeting(session, meeting_id=meeting_id)
    replies = {
        row.member_id: row.reply
        for row in session.exec(
            select(MeetingReply).where(MeetingReply.meeting_id == meeting_id)
        ).all()
    }
    rows = session.exec(
        select(Member, Organisation.name)
        .join(Organisation, col(Organisation.id) == Member.organisation_id)
        .where(col(Member.active).is_(True), col(Member.role).in_(INVITED))
        .order_by(col(Organisation.name), col(Member.name))
    ).all()
    invitees = tuple(
        Invitee(member.id, member.name, organisation, replies.get(member.id))
        for member, organisation in rows
        if member.id is not None
    )
    return Attendance(meeting, invitees)


# --- calendar files ---------------------------------------------------------------------------


def meetings_ics(meetings: Sequence[MeetingView], *, now: datetime, host: str = ICS_HOST) -> str:
    """An iCalendar (RFC 5545) file holding the meetings, for any calendar program."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//CSP Bot//Board meetings//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ]
    for meeting in meetings:
        lines += _event_lines(meeting, now=now, host=host)
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)


def _event_lines(meeting: MeetingView, *, now: datetime, host: str) -> list[str]:
    description = "Agenda:\n" + "\n".join(f"- {item}" for item in meeting.agenda)
    lines = [
        "BEGIN:VEVENT",
        f"UID:meeting-{meeting.id}@{host}",
        f"DTSTAMP:{_ics_time(now)}",
        f"DTSTART:{_ics_time(meeting.starts_at)}",
        f"DTEND:{_ics_time(meeting.starts_at + MEETING_LENGTH)}",
        f"SUMMARY:{_ics_text(meeting.title)}",
    ]
    if meeting.location:
        lines.append(f"LOCATION:{_ics_text(meeting.location)}")
    if meeting.is_link:
        lines.append(f"URL:{meeting.location}")
    if meeting.agenda:
        lines.append(f"DESCRIPTION:{_ics_text(description)}")
    return [*lines, "END:VEVENT"]


def _ics_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _ics_text(text: str) -> str:
    """Escape a TEXT value: backslash, semicolon, comma and newline."""
    escaped = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return escaped.replace("\r\n", "\n").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Fold a content line at 75 octets, never inside a UTF-8 character."""
    parts: list[str] = []
    current, size = "", 0
    for char in line:
        width = len(char.encode())
        limit = ICS_LINE_OCTETS if not parts else ICS_LINE_OCTETS - 1
        if size + width > limit:
            parts.append(current)
            current, size = "", 0
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def ics_filename(meeting: MeetingView, zone: ZoneInfo) -> str:
    return f"board-meeting-{meeting.starts_at.astimezone(zone):%Y-%m-%d}.ics"
