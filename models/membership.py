"""Members, organisations and invites: who may use the bot, and how people join."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, func, or_, select

from csp_bot.models.audit import Actor, record_change, record_event, snapshot
from csp_bot.models.enums import Role
from csp_bot.models.errors import DomainError, NotFound
from csp_bot.models.limits import check_name
from csp_bot.models.tables import Invite, Member, Organisation, ReminderPreference
from csp_bot.models.values import LAST_YEAR, OutOfRange, check_year

INVITE_CODE_BYTES = 12


@dataclass(frozen=True)
class MemberView:
    """A member as the bot shows them."""

    id: int
    telegram_id: int
    name: str
    role: Role
    organisation_id: int
    organisation: str


class InviteError(DomainError):
    """An invite code that cannot be used, with the reason."""


def find_organisation(session: Session, *, name: str) -> Organisation:
    """The organisation with this name or short name (any case), or NotFound listing them all."""
    wanted = name.strip().lower()
    found = session.exec(
        select(Organisation).where(
            or_(
                func.lower(Organisation.name) == wanted,
                func.lower(Organisation.short_name) == wanted,
            )
        )
    ).first()
    if found is None:
        names = session.exec(select(Organisation.name).order_by(Organisation.name)).all()
        known = ", ".join(names) if names else "none yet: import a plan first"
        raise NotFound(f"unknown organisation {name!r}; known organisations: {known}")
    return found


def parse_role(text: str) -> Role:
    """The role named by `text` (any case), or DomainError listing the valid roles."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        valid = ", ".join(role.value for role in Role)
        raise DomainError(f"unknown role {text!r}; valid roles: {valid}") from None


def member_view(session: Session, member: Member) -> MemberView:
    organisation = session.get_one(Organisation, member.organisation_id)
    assert member.id is not None
    return MemberView(
        id=member.id,
        telegram_id=member.telegram_id,
        name=member.name,
        role=member.role,
        organisation_id=member.organisation_id,
        organisation=organisation.name,
    )


def get_member(session: Session, *, telegram_id: int) -> MemberView | None:
    """The active member with this Telegram id, or None for anyone else."""
    return _active_member(session, _ACTIVE_BY_TELEGRAM_ID, {"telegram_id": telegram_id})


def get_writer(session: Session, *, telegram_id: int) -> tuple[MemberView | None, bool]:
    """The active member with this Telegram id (None for anyone else), and whether
    reminders had stopped reaching them: who just wrote to the bot, in one statement."""
    row = session.connection().execute(_WRITER, {"telegram_id": telegram_id}).first()
    if row is None:
        return None, False
    *view, unreachable_since = row
    return MemberView(*view), unreachable_since is not None


def active_member(session: Session, *, member_id: int) -> MemberView | None:
    """The active member with this id, or None."""
    return _active_member(session, _ACTIVE_BY_ID, {"member_id": member_id})


def active_member_record(session: Session, *, member_id: int) -> Member | None:
    """The active member's row with this id, or None (left, erased, or never there)."""
    member = session.get(Member, member_id)
    return member if member is not None and member.active else None


# Statements built once, read with Core: every update the bot handles looks up its sender.
def member_view_columns(organisation: Any = Organisation, *, prefix: str = "") -> tuple[Any, ...]:
    """The columns a `MemberView` is made of, in its order, named `prefix` and its field
    (`organisation`: the table, or an alias of it, joined for the member's organisation)."""
    columns = (
        Member.id,
        Member.telegram_id,
        Member.name,
        Member.role,
        Member.organisation_id,
        organisation.name,
    )
    return tuple(
        col(column).label(f"{prefix}{name}")
        for column, name in zip(columns, _MEMBER_VIEW_FIELDS, strict=True)
    )


_MEMBER_VIEW_FIELDS = tuple(field.name for field in fields(MemberView))
_MEMBER_VIEW = sql_select(*member_view_columns()).join(
    Organisation, col(Organisation.id) == Member.organisation_id
)
_ACTIVE_BY_TELEGRAM_ID = _MEMBER_VIEW.where(
    col(Member.telegram_id) == bindparam("telegram_id"), col(Member.active).is_(True)
)
_WRITER = _ACTIVE_BY_TELEGRAM_ID.add_columns(col(ReminderPreference.unreachable_since)).outerjoin(
    ReminderPreference, col(ReminderPreference.member_id) == Member.id
)
_ACTIVE_BY_ID = _MEMBER_VIEW.where(
    col(Member.id) == bindparam("member_id"), col(Member.active).is_(True)
)


def _active_member(session: Session, query: Any, params: dict[str, int]) -> MemberView | None:
    row = session.connection().execute(query, params).first()
    if row is None:
        return None
    id_, telegram_id, name, role, organisation_id, organisation = row
    return MemberView(id_, telegram_id, name, role, organisation_id, organisation)


def add_member(
    session: Session,
    *,
    telegram_id: int,
    name: str,
    organisation: str,
    role: str,
    at: datetime,
    actor: Actor,
) -> MemberView:
    """Register (or re-register) a member; the organisation and role must exist."""
    chosen_role = parse_role(role)
    org = find_organisation(session, name=organisation)
    name = check_name(name)
    member = session.exec(select(Member).where(Member.telegram_id == telegram_id)).first()
    before = None if member is None else snapshot(member)
    if member is None:
        member = Member(
            telegram_id=telegram_id, name="", organisation_id=0, role=chosen_role, joined_at=at
        )
    assert org.id is not None
    member.name, member.organisation_id, member.role, member.active = (
        name,
        org.id,
        chosen_role,
        True,
    )
    member.deactivated_at = None
    record_change(session, actor=actor, at=at, record=member, before=before)
    return member_view(session, member)


def create_invite(
    session: Session,
    *,
    organisation: str,
    role: str,
    at: datetime,
    days: int,
    actor: Actor,
) -> Invite:
    """A fresh one-time invite code for an organisation and role, valid for `days`."""
    chosen_role = parse_role(role)
    org = find_organisation(session, name=organisation)
    assert org.id is not None
    invite = Invite(
        code=secrets.token_urlsafe(INVITE_CODE_BYTES),
        organisation_id=org.id,
        role=chosen_role,
        created_at=at,
        expires_at=_expiry(at, days),
    )
    record_change(session, actor=actor, at=at, record=invite, before=None)
    return invite


def _expiry(at: datetime, days: int) -> datetime:
    """When an invite made at `at` expires; DomainError if that is after 2100 (a date the
    bot cannot plan with, if it can be written at all)."""
    try:
        expires_at = at + timedelta(days=days)
        check_year(expires_at.year, shown=f"{expires_at:%d %b %Y}")
    except (OverflowError, OutOfRange):
        raise DomainError(
            f"an invite valid for {days:,} days would expire after {LAST_YEAR}: give fewer days"
        ) from None
    return expires_at


class RejoinRefused(InviteError):
    """A deactivated member tried to come back through an invite: the coordinator decides."""

    def __init__(self, member: MemberView, invite_id: int) -> None:
        super().__init__("deactivated")
        # Plain values: the transaction that raised this is rolled back, its rows expire.
        self.member, self.invite_id = member, invite_id


def redeem_invite(
    session: Session, *, code: str, telegram_id: int, name: str, at: datetime
) -> MemberView:
    """Register the person to the invite's organisation and role; the code is then spent.

    The code is claimed by one conditional UPDATE before anything else is read: of any
    number of people redeeming it at once, the database lets exactly one claim it (the
    others wait for its row lock, then find it used). A deactivated member is refused
    (RejoinRefused), and the code stays unused: only the coordinator lets them back.
    """
    wanted = code.strip()
    claimed = session.execute(
        update(Invite)
        .where(col(Invite.code) == wanted)
        .where(col(Invite.used_at).is_(None))
        .where(col(Invite.expires_at) > at)
        .values(used_at=at)
    )
    invite = session.exec(select(Invite).where(Invite.code == wanted)).first()
    if invite is None:
        raise InviteError("unknown")
    if not claimed.rowcount:  # type: ignore[attr-defined]
        raise InviteError("used" if invite.used_at is not None else "expired")
    _refuse_deactivated(session, telegram_id=telegram_id, invite=invite)
    organisation = session.get_one(Organisation, invite.organisation_id)
    joined = add_member(
        session,
        telegram_id=telegram_id,
        name=name,
        organisation=organisation.name,
        role=invite.role.value,
        at=at,
        actor=Actor(label=f"invite {invite.id}"),
    )
    before = {**snapshot(invite), "used_at": None}
    invite.used_by_member_id = joined.id
    record_change(session, actor=Actor.member(joined.id), at=at, record=invite, before=before)
    return joined


def _refuse_deactivated(session: Session, *, telegram_id: int, invite: Invite) -> None:
    member = session.exec(select(Member).where(Member.telegram_id == telegram_id)).first()
    if member is not None and not member.active:
        assert invite.id is not None
        raise RejoinRefused(member_view(session, member), invite.id)


def note_rejoin_refused(
    session: Session, *, refused: RejoinRefused, at: datetime
) -> list[MemberView]:
    """Audit a deactivated member's attempt to rejoin; the coordinators to tell of it."""
    record_event(
        session,
        actor=Actor.member(refused.member.id),
        at=at,
        entity="member",
        entity_id=refused.member.id,
        change="rejoin refused",
        detail={"invite_id": refused.invite_id},
    )
    return active_coordinators(session)


def active_coordinators(session: Session) -> list[MemberView]:
    """The active coordinators (admins): those told what needs their decision."""
    admins = session.exec(
        select(Member)
        .where(col(Member.role) == Role.ADMIN, col(Member.active).is_(True))
        .order_by(col(Member.id))
    ).all()
    return [member_view(session, member) for member in admins]
