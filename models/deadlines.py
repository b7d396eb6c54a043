"""Deadlines the partnership must meet, most of them every year (contributions, budgets)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, col, func, select

from csp_bot.models.audit import Actor, record_change
from csp_bot.models.enums import OrgKind, Recurrence
from csp_bot.models.errors import DomainError
from csp_bot.models.limits import check_note, check_title
from csp_bot.models.membership import find_organisation
from csp_bot.models.tables import Deadline, DeadlineOrganisation, Organisation
from csp_bot.models.texts import parse_day

RESPONSIBLE_PARTNERS = "responsible"
EVERY_ORGANISATION = "all"


@dataclass(frozen=True)
class DeadlineView:
    """A deadline at its next occurrence."""

    id: int
    title: str
    due_on: date
    yearly: bool
    description: str
    organisations: tuple[str, ...]


def yearly_date(first: date, year: int) -> date:
    """The same day in another year; 29 February falls on the 28th in other years."""
    try:
        return first.replace(year=year)
    except ValueError:
        return first.replace(year=year, day=28)


def next_occurrence(due_on: date, *, yearly: bool, today: date) -> date | None:
    """The deadline's next date from `today` on (today included); None if it has passed."""
    if not yearly:
        return due_on if due_on >= today else None
    year = max(due_on.year, today.year)
    candidate = yearly_date(due_on, year)
    return candidate if candidate >= today else yearly_date(due_on, year + 1)


def _organisation_names(session: Session) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {}
    for deadline_id, name in session.exec(
        select(DeadlineOrganisation.deadline_id, Organisation.name)
        .join(Organisation, col(Organisation.id) == DeadlineOrganisation.organisation_id)
        .order_by(col(Organisation.name))
    ).all():
        names.setdefault(deadline_id, []).append(name)
    return names


def upcoming_deadlines(
    session: Session, *, today: date, within_days: int = 366
) -> list[DeadlineView]:
    """Every deadline due in the coming `within_days`, soonest first."""
    names = _organisation_names(session)
    views = []
    for deadline in session.exec(select(Deadline)).all():
        assert deadline.id is not None
        yearly = deadline.recurrence == Recurrence.YEARLY
        due = next_occurrence(deadline.due_on, yearly=yearly, today=today)
        if due is not None and (due - today).days <= within_days:
            views.append(
                DeadlineView(
                    deadline.id,
                    deadline.title,
                    due,
                    yearly,
                    deadline.description,
                    tuple(names.get(deadline.id, ())),
                )
            )
    return sorted(views, key=lambda view: (view.due_on, view.title))


def get_deadline(session: Session, *, deadline_id: int, due_on: date) -> DeadlineView | None:
    """The deadline at the occurrence on `due_on`, or None if it is gone or no longer then."""
    deadline = session.get(Deadline, deadline_id)
    if deadline is None:
        return None
    yearly = deadline.recurrence == Recurrence.YEARLY
    if next_occurrence(deadline.due_on, yearly=yearly, today=due_on) != due_on:
        return None
    names = _organisation_names(session).get(deadline_id, [])
    return DeadlineView(
        deadline_id, deadline.title, due_on, yearly, deadline.description, tuple(names)
    )


def add_deadline(
    session: Session,
    *,
    title: str,
    due_on: str | None,
    yearly: bool,
    organisations: Sequence[str],
    description: str,
    at: datetime,
    actor: Actor,
) -> DeadlineView:
    """Store a new deadline for the organisations named (`responsible` and `all` are groups)."""
    if due_on is None or not due_on.strip():
        raise DomainError("A deadline needs a date (e.g. 2027-01-31).")
    day = parse_day(due_on)
    title = check_title(title)
    if session.exec(select(Deadline).where(func.lower(Deadline.title) == title.lower())).first():
        raise DomainError(f"There is already a deadline called “{title}”.")
    organisation_ids = _organisation_ids(session, organisations or [RESPONSIBLE_PARTNERS])
    deadline = Deadline(
        title=title,
        due_on=day,
        recurrence=Recurrence.YEARLY if yearly else Recurrence.ONCE,
        description=check_note(description, what="description", required=False),
    )
    record_change(session, actor=actor, at=at, record=deadline, before=None)
    assert deadline.id is not None
    for organisation_id in sorted(organisation_ids):
        link = DeadlineOrganisation(deadline_id=deadline.id, organisation_id=organisation_id)
        record_change(session, actor=actor, at=at, record=link, before=None)
    names = sorted(session.get_one(Organisation, org).name for org in organisation_ids)
    return DeadlineView(deadline.id, title, day, yearly, deadline.description, tuple(names))


def _organisation_ids(session: Session, names: Sequence[str]) -> set[int]:
    ids: set[int] = set()
    for name in names:
        word = name.strip().lower()
        if word in (RESPONSIBLE_PARTNERS, EVERY_ORGANISATION):
            query = select(Organisation.id)
            if word == RESPONSIBLE_PARTNERS:
                query = query.where(Organisation.kind == OrgKind.RESPONSIBLE)
            ids.update(org for org in session.exec(query).all() if org is not None)
        else:
            found = find_organisation(session, name=name).id
            assert found is not None
            ids.add(found)
    if not ids:
        raise DomainError("No organisations to remind: import a plan first.")
    return ids
