"""Members away, and who covers for them: `/away 14 days` names a deputy, `/back` ends it.

While a member is away their reminders go to the deputy (`scheduler.due.People`), and the
deputy may update the actions the member owns (`models.owners.may_update_action`). The
deputy must be another active member of the same organisation; an absence is at most a year.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam
from sqlmodel import Session, col, or_, select

from csp_bot.models.audit import Actor, record_change, snapshot
from csp_bot.models.errors import DomainError
from csp_bot.models.tables import Absence, Action, ActionOwner, Member, ProgressUpdate
from csp_bot.models.types import UTCDateTime

MAX_DAYS = 365
# A member back from an absence is told in /my who covered for them, for this long.
RETURN_NOTE_DAYS = 14


@dataclass(frozen=True)
class Deputy:
    """A member who may cover for another."""

    id: int
    name: str


@dataclass(frozen=True)
class AbsenceView:
    """An absence as /away, /back and /my show it."""

    id: int
    member_id: int
    deputy: Deputy
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class CoverReport:
    """What a deputy did while the member was away: the refs they updated."""

    absence: AbsenceView
    updated_refs: list[str]


def read_days(text: str) -> int:
    """`14`, `14 days`, `2 weeks`: the length of an absence in days, checked."""
    words = text.strip().lower().split()
    if not words or not words[0].isdigit() or not words[0].isascii():
        raise DomainError(
            f"{text.strip()!r} is not a number of days: write it like 14 or 14 days."
            if text.strip()
            else "How many days will you be away? Write it like 14 or 14 days."
        )
    unit = words[1] if len(words) > 1 else "days"
    if len(words) > 2 or unit not in ("day", "days", "week", "weeks"):
        raise DomainError(f"{text.strip()!r} is not a number of days: write it like 14 days.")
    days = int(words[0][:6]) * (7 if unit.startswith("week") else 1)
    if days < 1:
        raise DomainError("An absence is at least one day.")
    if days > MAX_DAYS:
        raise DomainError(f"An absence can be at most a year ({MAX_DAYS} days); yours is {days}.")
    return days


def deputy_choices(session: Session, *, member_id: int) -> list[Deputy]:
    """Who may cover for the member: the other active members of their organisation."""
    member = session.get_one(Member, member_id)
    rows = session.exec(
        select(Member.id, Member.name)
        .where(
            Member.organisation_id == member.organisation_id,
            col(Member.active).is_(True),
            Member.id != member_id,
        )
        .order_by(col(Member.name), col(Member.id))
    ).all()
    return [Deputy(id_, name) for id_, name in rows if id_ is not None]


def check_deputy(session: Session, *, member_id: int, deputy_id: int) -> Deputy:
    """The deputy, if they may cover for the member; DomainError saying why not."""
    if deputy_id == member_id:
        raise DomainError("You cannot cover for yourself: choose someone else.")
    deputy = session.get(Member, deputy_id)
    member = session.get_one(Member, member_id)
    if deputy is None or not deputy.active:
        raise DomainError("That member is not active: choose someone else.")
    if deputy.organisation_id != member.organisation_id:
        raise DomainError(
            f"{deputy.name} is not in your organisation: your deputy must be a colleague."
        )
    assert deputy.id is not None
    return Deputy(deputy.id, deputy.name)


def current_absence(session: Session, *, member_id: int, at: datetime) -> AbsenceView | None:
    """The member's absence in effect at `at`, if any."""
    row = session.exec(_CURRENT, params={"member_id": member_id, "at": at}).first()
    return None if row is None else _view(session, row)


def start_absence(
    session: Session, *, member_id: int, deputy_id: int, days: int, at: datetime
) -> AbsenceView:
    """Record the member away from now for `days`, covered by `deputy_id` (audited). An
    absence already in effect ends now: the new one replaces it."""
    if not 1 <= days <= MAX_DAYS:
        raise DomainError(f"An absence can be at most a year ({MAX_DAYS} days); yours is {days}.")
    check_deputy(session, member_id=member_id, deputy_id=deputy_id)
    _end_current(session, member_id=member_id, at=at)
    row = Absence(
        member_id=member_id,
        deputy_member_id=deputy_id,
        starts_at=at,
        ends_at=at + timedelta(days=days),
        created_at=at,
    )
    record_change(session, actor=Actor.member(member_id), at=at, record=row, before=None)
    return _view(session, row)


def end_absence(session: Session, *, member_id: int, at: datetime) -> CoverReport | None:
    """The member is back: their absence ends now (audited). None if they were not away."""
    row = _end_current(session, member_id=member_id, at=at)
    return None if row is None else _report(session, row)


def _end_current(session: Session, *, member_id: int, at: datetime) -> Absence | None:
    row = session.exec(
        select(Absence).where(
            Absence.member_id == member_id, Absence.starts_at <= at, Absence.ends_at > at
        )
    ).first()
    if row is None:
        return None
    before = snapshot(row)
    row.ends_at = at
    record_change(session, actor=Actor.member(member_id), at=at, record=row, before=before)
    return row


def recent_cover(session: Session, *, member_id: int, at: datetime) -> CoverReport | None:
    """The member's latest absence, if it ended within `RETURN_NOTE_DAYS`: who covered and
    which actions the deputy updated meanwhile (for /my)."""
    since = at - timedelta(days=RETURN_NOTE_DAYS)
    row = session.exec(_RECENT, params={"member_id": member_id, "at": at, "since": since}).first()
    return None if row is None else _report(session, row)


def covering_for(session: Session, *, deputy_id: int, at: datetime) -> list[int]:
    """The members the deputy covers for at `at`."""
    return list(session.exec(_COVERED, params={"deputy_id": deputy_id, "at": at}).all())


# Built once: a partner's /my reads all three (building a statement costs more than running
# it on the few rows there are).
_AT = bindparam("at", type_=UTCDateTime)
_CURRENT = (
    select(Absence)
    .where(Absence.member_id == bindparam("member_id"), Absence.starts_at <= _AT)
    .where(Absence.ends_at > _AT)
    .order_by(col(Absence.id).desc())
)
_RECENT = (
    select(Absence)
    .where(Absence.member_id == bindparam("member_id"), Absence.ends_at <= _AT)
    .where(Absence.ends_at > bindparam("since", type_=UTCDateTime))
    .where(Absence.ends_at > Absence.starts_at)
    .order_by(col(Absence.ends_at).desc())
)
_COVERED = select(Absence.member_id).where(
    Absence.deputy_member_id == bindparam("deputy_id"),
    Absence.starts_at <= _AT,
    Absence.ends_at > _AT,
)


def members_covered(session: Session, *, deputy_id: int, at: datetime) -> list[Member]:
    """The rows of the members the deputy covers for at `at`."""
    return [session.get_one(Member, i) for i in covering_for(session, deputy_id=deputy_id, at=at)]


def cover_in_effect(session: Session, *, at: datetime) -> dict[int, int]:
    """Every absent member's deputy at `at` (for planning reminders)."""
    rows = session.exec(
        select(Absence.member_id, Absence.deputy_member_id, Absence.id)
        .where(Absence.starts_at <= at, Absence.ends_at > at)
        .order_by(col(Absence.id))
    ).all()
    return {member_id: deputy_id for member_id, deputy_id, _ in rows}


def absence_ends(session: Session, *, at: datetime) -> dict[int, datetime]:
    """When each absence in effect at `at` ends, by absent member."""
    rows = session.exec(
        select(Absence.member_id, Absence.ends_at)
        .where(Absence.starts_at <= at, Absence.ends_at > at)
        .order_by(col(Absence.id))
    ).all()
    return dict(rows)


def _report(session: Session, row: Absence) -> CoverReport:
    member = session.get_one(Member, row.member_id)
    owned = select(ActionOwner.action_id).where(ActionOwner.member_id == row.member_id)
    refs = session.exec(
        select(Action.ref)
        .join(ProgressUpdate, col(ProgressUpdate.action_id) == Action.id)
        .where(
            # What the member could have updated: their organisation's, and theirs.
            or_(
                Action.lead_organisation_id == member.organisation_id,
                col(Action.id).in_(owned),
            ),
            ProgressUpdate.member_id == row.deputy_member_id,
            ProgressUpdate.created_at >= row.starts_at,
            ProgressUpdate.created_at < row.ends_at,
            col(ProgressUpdate.withdrawn_at).is_(None),
        )
        .distinct()
        .order_by(col(Action.ref))
    ).all()
    return CoverReport(_view(session, row), list(refs))


def _view(session: Session, row: Absence) -> AbsenceView:
    deputy = session.get_one(Member, row.deputy_member_id)
    assert row.id is not None and deputy.id is not None
    return AbsenceView(
        id=row.id,
        member_id=row.member_id,
        deputy=Deputy(deputy.id, deputy.name),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
    )
