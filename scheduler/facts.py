"""Reading the facts planning works from: one transaction, plain values out."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from models.enums import Recurrence, Status
from models.reminder_types import Topic
from models.tables import (
    Action,
    ActionSnooze,
    Deadline,
    DeadlineOrganisation,
    Meeting,
    Member,
    PlanInfo,
    ProgressUpdate,
    ReminderPreference,
)
from models.types import as_utc
from scheduler.due import ActionFacts, DeadlineFacts, Facts, MeetingFacts, Recipient
from scheduler.timing import local_moment


def load_facts(session: Session, *, now: datetime, zone: ZoneInfo) -> Facts:
    """Members, meetings, deadlines and actions, as `scheduler.due` needs them."""
    plan = session.exec(select(PlanInfo)).first()
    return Facts(
        recipients=_recipients(session, now),
        meetings=[
            MeetingFacts(meeting_id, starts_at)
            for meeting_id, starts_at in session.exec(select(Meeting.id, Meeting.starts_at)).all()
            if meeting_id is not None
        ],
        deadlines=_deadlines(session),
        actions=_actions(session),
        plan_starts_at=None if plan is None else local_moment(plan.starts_on, time(0), zone),
    )


def _recipients(session: Session, now: datetime) -> list[Recipient]:
    rows = session.execute(
        sa.select(
            col(Member.id),
            col(Member.role),
            col(Member.organisation_id),
            col(ReminderPreference.muted),
            col(ReminderPreference.snoozed_until),
            col(ReminderPreference.unreachable_since),
        )
        .outerjoin(ReminderPreference, col(ReminderPreference.member_id) == Member.id)
        .where(col(Member.active).is_(True))
    ).all()
    recipients = []
    for member_id, role, organisation_id, muted, snoozed_until, unreachable in rows:
        assert member_id is not None
        snoozed = snoozed_until if snoozed_until is not None and snoozed_until > now else None
        recipients.append(
            Recipient(
                id=member_id,
                role=role,
                organisation_id=organisation_id,
                muted=frozenset(Topic(topic) for topic in muted or ()),
                snoozed_until=snoozed,
                unreachable=unreachable is not None,
            )
        )
    return recipients


def _deadlines(session: Session) -> list[DeadlineFacts]:
    organisations: dict[int, set[int]] = {}
    for deadline_id, organisation_id in session.exec(
        select(DeadlineOrganisation.deadline_id, DeadlineOrganisation.organisation_id)
    ).all():
        organisations.setdefault(deadline_id, set()).add(organisation_id)
    return [
        DeadlineFacts(
            deadline_id,
            due_on,
            recurrence == Recurrence.YEARLY,
            frozenset(organisations.get(deadline_id, ())),
        )
        for deadline_id, due_on, recurrence in session.execute(
            sa.select(col(Deadline.id), col(Deadline.due_on), col(Deadline.recurrence))
        ).all()
        if deadline_id is not None
    ]


def _actions(session: Session) -> list[ActionFacts]:
    """Every action with its latest update not taken back: one statement, not one per action."""
    last_update = (
        select(ProgressUpdate.action_id, func.max(ProgressUpdate.created_at).label("last_at"))
        .where(col(ProgressUpdate.withdrawn_at).is_(None))
        .group_by(col(ProgressUpdate.action_id))
        .subquery()
    )
    rows = session.execute(
        sa.select(
            col(Action.id),
            col(Action.due_on),
            col(Action.status),
            col(Action.lead_organisation_id),
            col(Action.owner_member_id),
            col(Action.status_at),
            last_update.c.last_at,
            col(ActionSnooze.until),
        )
        .outerjoin(last_update, last_update.c.action_id == Action.id)
        .outerjoin(ActionSnooze, col(ActionSnooze.action_id) == Action.id)
    ).all()
    facts = []
    for action_id, due_on, status, lead, owner, status_at, last_at, snoozed in rows:
        assert action_id is not None
        last_update_at = as_utc(last_at)
        facts.append(
            ActionFacts(
                id=action_id,
                due_on=due_on,
                complete=status == Status.COMPLETE,
                lead_organisation_id=lead,
                owner_member_id=owner,
                last_update_at=last_update_at,
                last_activity=last_update_at or status_at,
                snoozed_until=snoozed,
            )
        )
    return facts
