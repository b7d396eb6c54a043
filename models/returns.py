"""Returns before a board meeting: the actions not updated since the last one, and who owes them.

Who is asked about which action, and which organisations have not returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, or_, select

from csp_bot.models.access import ORGANISATION_CONTACTS
from csp_bot.models.enums import Role, Status
from csp_bot.models.localtime import local_moment
from csp_bot.models.progress import ActionView, query_action_views
from csp_bot.models.tables import Action, ActionOwner, Meeting, Member, PlanInfo


def returns_since(session: Session, *, starts_at: datetime, zone: ZoneInfo) -> datetime | None:
    """Updates count as returned for a meeting if made after the meeting before it (or, for
    the first, after the plan started)."""
    previous = session.exec(
        select(Meeting.starts_at)
        .where(Meeting.starts_at < starts_at)
        .order_by(col(Meeting.starts_at).desc())
    ).first()
    if previous is not None:
        return previous
    plan = session.exec(select(PlanInfo)).first()
    return None if plan is None else local_moment(plan.starts_on, time(0), zone)


def awaiting(view: ActionView, since: datetime | None) -> bool:
    """An action still owes a return: not complete and no update since `since`."""
    if view.status == Status.COMPLETE:
        return False
    return view.last_update_at is None or (since is not None and view.last_update_at < since)


def awaiting_returns(
    session: Session,
    *,
    since: datetime | None,
    at: datetime,
    quiet_after: timedelta,
    member: Member | None = None,
) -> list[ActionView]:
    """Every action that owes a return, in plan order; with `member`, only those they may be
    asked about (their own, and their organisation's), so one request reads a few actions."""
    where = None
    if member is not None:
        owned = select(ActionOwner.action_id).where(ActionOwner.member_id == member.id)
        where = or_(
            col(Action.id).in_(owned),
            col(Action.lead_organisation_id) == member.organisation_id,
        )
    views = query_action_views(session, at=at, quiet_after=quiet_after, where=where)
    return [view for view in views if awaiting(view, since)]


def owners_by_action(session: Session) -> dict[int, set[int]]:
    """Action id to its owning members' ids, for actions still active members own."""
    rows = session.exec(
        select(ActionOwner.action_id, Member.id)
        .join(Member, col(Member.id) == ActionOwner.member_id)
        .where(col(Member.active).is_(True))
    ).all()
    owners: dict[int, set[int]] = {}
    for action, member in rows:
        if member is not None:
            owners.setdefault(action, set()).add(member)
    return owners


def asked_about(
    views: Iterable[ActionView],
    owners: dict[int, set[int]],
    *,
    member_id: int,
    role: Role,
    org: int,
) -> list[ActionView]:
    """The actions a member is asked about: those they own, and, as a partner, their
    organisation's actions that no member owns (the rule `scheduler.due` follows too)."""
    return [
        view
        for view in views
        if member_id in owners.get(view.id, ())
        or (
            view.id not in owners
            and role in ORGANISATION_CONTACTS
            and view.lead_organisation_id == org
        )
    ]


@dataclass(frozen=True)
class MissingReturns:
    """An organisation's actions that have not been updated for a meeting."""

    organisation: str
    refs: tuple[str, ...]


def missing_by_organisation(views: Iterable[ActionView]) -> list[MissingReturns]:
    grouped: dict[str, list[str]] = {}
    for view in views:
        grouped.setdefault(view.lead_organisation, []).append(view.ref)
    return [MissingReturns(org, tuple(refs)) for org, refs in sorted(grouped.items())]
