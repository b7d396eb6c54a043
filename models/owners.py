"""An action's owners: the members linked to it, besides the posts the plan names.

An action may have several owners. Reminders about it go to all of them (with none linked,
to its lead organisation's partners), and each may update it, whatever their organisation:
owning adds to what a partner may update (their own organisation's actions). A member away
hands this to their deputy (`models.absences`): the deputy may update what they own.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from csp_bot.models import access
from csp_bot.models.absences import covering_for
from csp_bot.models.audit import Actor, Change, insert_changes
from csp_bot.models.errors import DomainError, NotFound
from csp_bot.models.membership import MemberView, member_view
from csp_bot.models.tables import Action, ActionOwner, Member


def find_action_row(session: Session, ref: str) -> Action:
    """The action with this reference (any case), or NotFound."""
    wanted = ref.strip().upper()
    action = session.exec(select(Action).where(Action.ref == wanted)).first()
    if action is None:
        raise NotFound(f"no action {wanted}")
    return action


def owners_of(session: Session, *, action_id: int) -> list[MemberView]:
    """The members who own the action, by name."""
    members = session.exec(
        select(Member)
        .join(ActionOwner, col(ActionOwner.member_id) == Member.id)
        .where(ActionOwner.action_id == action_id)
        .order_by(col(Member.name), col(Member.id))
    ).all()
    return [member_view(session, member) for member in members]


def add_owner(session: Session, *, ref: str, member_id: int, at: datetime, actor: Actor) -> str:
    """Link a member as one of the action's owners (audited); says what was done."""
    action = find_action_row(session, ref)
    member = session.get(Member, member_id)
    if member is None or not member.active:
        raise NotFound(f"no active member with id {member_id}")
    if member.role not in access.UPDATERS:
        raise DomainError(
            f"{member.name} is a {member.role.value} member and may not update actions: "
            "an owner must be a partner, the chair or the coordinator"
        )
    assert action.id is not None
    owners = owner_ids(session, action_id=action.id)
    if member_id in owners:
        return f"{action.ref}: {member.name} already owns it"
    set_owner_ids(session, action_id=action.id, ids=[*owners, member_id], at=at, actor=actor)
    return f"{action.ref}: {member.name} added; owners: {_names(session, action.id)}"


def remove_owner(session: Session, *, ref: str, member_id: int, at: datetime, actor: Actor) -> str:
    """Unlink a member from the action's owners (audited); says what was done."""
    action = find_action_row(session, ref)
    assert action.id is not None
    owners = owner_ids(session, action_id=action.id)
    if member_id not in owners:
        raise NotFound(f"member {member_id} does not own {action.ref}")
    name = session.get_one(Member, member_id).name
    kept = [owner for owner in owners if owner != member_id]
    set_owner_ids(session, action_id=action.id, ids=kept, at=at, actor=actor)
    return f"{action.ref}: {name} removed; owners: {_names(session, action.id)}"


def owner_ids(session: Session, *, action_id: int) -> list[int]:
    """The ids of the members who own the action, in the order they were linked."""
    return list(
        session.exec(
            select(ActionOwner.member_id)
            .where(ActionOwner.action_id == action_id)
            .order_by(col(ActionOwner.id))
        ).all()
    )


def set_owner_ids(
    session: Session, *, action_id: int, ids: list[int], at: datetime, actor: Actor
) -> None:
    """Make `ids` the action's owners. Audited as a change to the action, its owners'
    member ids before and after (one entry, whatever the number of links changed)."""
    rows = session.exec(select(ActionOwner).where(ActionOwner.action_id == action_id)).all()
    before = [row.member_id for row in sorted(rows, key=lambda row: row.id or 0)]
    if before == ids:
        return
    for row in rows:
        if row.member_id not in ids:
            session.delete(row)
    for member_id in ids:
        if member_id not in before:
            session.add(ActionOwner(action_id=action_id, member_id=member_id, added_at=at))
    session.flush()
    change = Change("action", action_id, {"owner_member_ids": before}, {"owner_member_ids": ids})
    insert_changes(session, actor=actor, at=at, changes=[change])


def _names(session: Session, action_id: int) -> str:
    names = [member.name for member in owners_of(session, action_id=action_id)]
    return ", ".join(names) if names else "none (reminders go to its lead organisation's partners)"


def owned_action_ids(session: Session, *, member_ids: list[int]) -> set[int]:
    """The actions any of these members own."""
    if not member_ids:
        return set()
    return set(
        session.exec(
            select(ActionOwner.action_id).where(col(ActionOwner.member_id).in_(member_ids))
        ).all()
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
