"""A member's /my in one transaction: their actions, and who covers or covered for whom."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from csp_bot.models.absences import (
    AbsenceView,
    CoverReport,
    covering_for,
    current_absence,
    recent_cover,
)
from csp_bot.models.membership import MemberView
from csp_bot.models.progress import ActionView, member_actions
from csp_bot.models.tables import Member


@dataclass(frozen=True)
class MyPage:
    """What /my shows."""

    actions: list[ActionView]
    away: AbsenceView | None  # the member's own absence in effect
    covered: CoverReport | None  # their absence that ended lately: who covered, what was done
    covering: list[str]  # the names of those they cover for now


def my_page(
    session: Session, *, member: MemberView, at: datetime, quiet_after: timedelta
) -> MyPage:
    """The member's actions and the cover around them at `at`."""
    covering_ids = covering_for(session, deputy_id=member.id, at=at)
    names = (
        session.exec(
            select(Member.name).where(col(Member.id).in_(covering_ids)).order_by(col(Member.name))
        ).all()
        if covering_ids
        else []
    )
    return MyPage(
        actions=member_actions(
            session, member=member, at=at, quiet_after=quiet_after, covered=covering_ids
        ),
        away=current_absence(session, member_id=member.id, at=at),
        covered=recent_cover(session, member_id=member.id, at=at),
        covering=list(names),
    )
