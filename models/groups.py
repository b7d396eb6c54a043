"""Group chats linked to the bot: which groups it answers in, and for whom.

A group is linked by the coordinator (`/link board|partnership` in the group, or
`csp-bot group link`), never assumed: in any other group the bot answers no plan data.
A linked group's audience decides what the bot shows there: a board group sees what the
board may see, a partnership group what observers may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, col, select

from csp_bot.models.audit import Actor, record_change, record_removal, snapshot
from csp_bot.models.enums import Role
from csp_bot.models.errors import DomainError, NotFound
from csp_bot.models.limits import check_title
from csp_bot.models.tables import GroupLink


class Audience(StrEnum):
    """Who a linked group is for, and so what the bot may show in it."""

    BOARD = "board"
    PARTNERSHIP = "partnership"

    @property
    def role(self) -> Role:
        """The role whose access rules apply to everything shown in the group."""
        return Role.BOARD if self is Audience.BOARD else Role.OBSERVER


@dataclass(frozen=True)
class GroupView:
    chat_id: int
    audience: Audience
    title: str
    linked_at: datetime


def parse_audience(text: str) -> Audience:
    try:
        return Audience(text.strip().lower())
    except ValueError:
        raise DomainError(
            f"{text.strip() or 'nothing'} is no audience: board or partnership"
        ) from None


def link_group(
    session: Session, *, chat_id: int, audience: Audience, title: str, at: datetime, actor: Actor
) -> GroupView:
    """Link a group (or change its audience); audited."""
    title = check_title(title, required=False)
    row = _row(session, chat_id)
    before = None if row is None else snapshot(row)
    if row is None:
        row = GroupLink(chat_id=chat_id, audience=audience.value, linked_at=at)
    row.audience, row.title = audience.value, title
    record_change(session, actor=actor, at=at, record=row, before=before)
    return _view(row)


def unlink_group(session: Session, *, chat_id: int, at: datetime, actor: Actor) -> GroupView:
    """Unlink a group: the bot answers no plan data there any more; audited."""
    row = _row(session, chat_id)
    if row is None:
        raise NotFound(f"no linked group {chat_id}")
    view = _view(row)
    record_removal(session, actor=actor, at=at, record=row)
    return view


def group_audience(session: Session, *, chat_id: int) -> Audience | None:
    """The audience of a linked group; None for a group that is not linked."""
    row = _row(session, chat_id)
    return None if row is None else Audience(row.audience)


def list_groups(session: Session) -> list[GroupView]:
    rows = session.exec(select(GroupLink).order_by(col(GroupLink.linked_at))).all()
    return [_view(row) for row in rows]


def _row(session: Session, chat_id: int) -> GroupLink | None:
    return session.exec(select(GroupLink).where(GroupLink.chat_id == chat_id)).first()


def _view(row: GroupLink) -> GroupView:
    return GroupView(row.chat_id, Audience(row.audience), row.title, row.linked_at)
