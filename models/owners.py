"""The owners of an action or a measure: the members linked to it, besides the posts the
plan names.

An action may have several owners. Reminders about it go to all of them (with none linked,
to its lead organisation's partners), and each may update it, whatever their organisation:
owning adds to what a partner may update (their own organisation's actions). A member away
hands this to their deputy (`models.absences`): the deputy may update what they own.
A measure's owners are the same: its figure reminders go to them (with none linked, to the
supplier's partners), and each may send its figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from csp_bot.models import access
from csp_bot.models.absences import covering_for
from csp_bot.models.audit import Actor, Change, insert_changes
from csp_bot.models.errors import DomainError, NotFound
from csp_bot.models.membership import MemberView, member_view
from csp_bot.models.tables import Action, ActionOwner, Measure, MeasureOwner, Member


def find_action_row(session: Session, ref: str) -> Action:
    """The action with this reference (any case), or NotFound."""
    wanted = ref.strip().upper()
    action = session.exec(select(Action).where(Action.ref == wanted)).first()
    if action is None:
        raise NotFound(f"no action {wanted}")
    return action


@dataclass(frozen=True)
class Owned:
    """An action or a measure, as the owner commands name it (`SOC-1`, `ASB-M1`)."""

    kind: str  # "action" or "measure": the entity in the audit trail
    id: int
    ref: str
    posts: str | None  # whom the plan names: the action's owner, the measure's contact


# Each kind's table of links, and the column naming what is owned.
_LINKS: dict[str, tuple[Any, str]] = {
    "action": (ActionOwner, "action_id"),
    "measure": (MeasureOwner, "measure_id"),
}


def find_owned(session: Session, ref: str) -> Owned:
    """The action with this reference, else the measure with this code (any case)."""
    wanted = ref.strip().upper()
    action = session.exec(select(Action).where(Action.ref == wanted)).first()
    if action is not None:
        assert action.id is not None
        return Owned("action", action.id, action.ref, action.owner)
    measure = session.exec(select(Measure).where(Measure.code == wanted)).first()
    if measure is not None:
        assert measure.id is not None
        return Owned("measure", measure.id, measure.code, measure.contact)
    raise NotFound(f"no action or measure {wanted}")


def owners_of(session: Session, *, action_id: int) -> list[MemberView]:
    """The members who own the action, by name."""
    return owners_of_owned(session, Owned("action", action_id, "", None))


def owners_of_owned(session: Session, owned: Owned) -> list[MemberView]:
    """The members who own the action or measure, by name."""
    link, column = _LINKS[owned.kind]
    members = session.exec(
        select(Member)
        .join(link, col(link.member_id) == Member.id)
        .where(getattr(link, column) == owned.id)
        .order_by(col(Member.name), col(Member.id))
    ).all()
    return [member_view(session, member) for member in members]


def add_owner(session: Session, *, ref: str, member_id: int, at: datetime, actor: Actor) -> str:
    """Link a member as one of the action's or measure's owners (audited); says what was
    done."""
    owned = find_owned(session, ref)
    member = session.get(Member, member_id)
    if member is None or not member.active:
        raise NotFound(f"no active member with id {member_id}")
    if member.role not in access.UPDATERS:
        doing = "update actions" if owned.kind == "action" else "send figures"
        raise DomainError(
            f"{member.name} is a {member.role.value} member and may not {doing}: "
            "an owner must be a partner, the chair or the coordinator"
        )
    owners = _link_ids(session, owned)
    if member_id in owners:
        return f"{owned.ref}: {member.name} already owns it"
    _set_link_ids(session, owned, ids=[*owners, member_id], at=at, actor=actor)
    return f"{owned.ref}: {member.name} added; owners: {_names(session, owned)}"


def remove_owner(session: Session, *, ref: str, member_id: int, at: datetime, actor: Actor) -> str:
    """Unlink a member from the action's or measure's owners (audited); says what was done."""
    owned = find_owned(session, ref)
    owners = _link_ids(session, owned)
    if member_id not in owners:
        raise NotFound(f"member {member_id} does not own {owned.ref}")
    name = session.get_one(Member, member_id).name
    kept = [owner for owner in owners if owner != member_id]
    _set_link_ids(session, owned, ids=kept, at=at, actor=actor)
    return f"{owned.ref}: {name} removed; owners: {_names(session, owned)}"


def owner_ids(session: Session, *, action_id: int) -> list[int]:
    """The ids of the members who own the action, in the order they were linked."""
    return _link_ids(session, Owned("action", action_id, "", None))


def set_owner_ids(
    session: Session, *, action_id: int, ids: list[int], at: datetime, actor: Actor
) -> None:
    """Make `ids` the action's owners (audited; see `_set_link_ids`)."""
    _set_link_ids(session, Owned("action", action_id, "", None), ids=ids, at=at, actor=actor)


def drop_ownerships(session: Session, *, member_id: int, at: datetime, actor: Actor) -> None:
    """The member owns nothing any more (audited, each action or measure it owned)."""
    for kind, (link, column) in _LINKS.items():
        owned_ids = session.exec(
            select(getattr(link, column)).where(link.member_id == member_id)
        ).all()
        for owned_id in owned_ids:
            owned = Owned(kind, owned_id, "", None)
            others = [i for i in _link_ids(session, owned) if i != member_id]
            _set_link_ids(session, owned, ids=others, at=at, actor=actor)


def _link_ids(session: Session, owned: Owned) -> list[int]:
    link, column = _LINKS[owned.kind]
    return list(
        session.exec(
            select(link.member_id).where(getattr(link, column) == owned.id).order_by(col(link.id))
        ).all()
    )


def _set_link_ids(
    session: Session, owned: Owned, *, ids: list[int], at: datetime, actor: Actor
) -> None:
    """Make `ids` the owners. Audited as a change to the action or measure, its owners'
    member ids before and after (one entry, whatever the number of links changed)."""
    link, column = _LINKS[owned.kind]
    rows = session.exec(select(link).where(getattr(link, column) == owned.id)).all()
    before = [row.member_id for row in sorted(rows, key=lambda row: row.id or 0)]
    if before == ids:
        return
    for row in rows:
        if row.member_id not in ids:
            session.delete(row)
    for member_id in ids:
        if member_id not in before:
            session.add(link(**{column: owned.id, "member_id": member_id, "added_at": at}))
    session.flush()
    change = Change(owned.kind, owned.id, {"owner_member_ids": before}, {"owner_member_ids": ids})
    insert_changes(session, actor=actor, at=at, changes=[change])


def _names(session: Session, owned: Owned) -> str:
    names = [member.name for member in owners_of_owned(session, owned)]
    if names:
        return ", ".join(names)
    whose = "its lead organisation's" if owned.kind == "action" else "the supplier's"
    return f"none (reminders go to {whose} partners)"


def owned_measure_ids(session: Session, *, member_ids: list[int]) -> set[int]:
    """The measures any of these members own."""
    if not member_ids:
        return set()
    return set(
        session.exec(
            select(MeasureOwner.measure_id).where(col(MeasureOwner.member_id).in_(member_ids))
        ).all()
    )


def owned_action_ids(session: Session, *, member_ids: list[int]) -> set[int]:
    """The actions any of these members own."""
    if not member_ids:
        return set()
    return set(session.exec(_OWNED, params={"member_ids": member_ids}).all())


# Built once: every partner's /my reads it.
_OWNED = select(ActionOwner.action_id).where(
    col(ActionOwner.member_id).in_(bindparam("member_ids", expanding=True))
)


def extra_action_ids(
    session: Session, *, member: MemberView, at: datetime, covered: list[int] | None = None
) -> set[int]:
    """The actions `member` may update beyond their role's rule: those they own, and, while
    they cover for someone away, those that member owns. None for a role that only reads.
    `covered`: whom they cover for at `at`, when the caller has read it already."""
    if member.role not in access.UPDATERS:
        return set()
    if covered is None:
        covered = covering_for(session, deputy_id=member.id, at=at)
    return owned_action_ids(session, member_ids=[member.id, *covered])


def may_update_action(
    session: Session, *, member: MemberView, action_id: int, lead_organisation_id: int, at: datetime
) -> bool:
    """Whether `member` may update the action: by their role and organisation, as its owner,
    or as the deputy of an owner who is away. The role's rule is checked first: the common
    case (a partner and their own organisation's action) costs no query."""
    if access.may_update(
        member.role,
        organisation_id=member.organisation_id,
        lead_organisation_id=lead_organisation_id,
    ):
        return True
    return action_id in extra_action_ids(session, member=member, at=at)
