"""The guided /update in progress, kept in the database so a restart loses nothing.

Each step of the conversation loads the draft, changes it and saves it in one
transaction, so whatever the partner has typed is stored as soon as the bot has read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session

from csp_bot.models.enums import Status
from csp_bot.models.progress import LoggedUpdate, log_progress
from csp_bot.models.state import drop_state, read_state, write_state

DRAFT_KIND = "update_draft"
DRAFT_EXPIRY = timedelta(minutes=15)


class Step(StrEnum):
    """What the guided update is waiting for."""

    ACTION = "action"
    STATUS = "status"
    NOTE = "note"
    MITIGATION = "mitigation"
    FORECAST = "forecast"


@dataclass(frozen=True)
class UpdateDraft:
    """A partner's update, as far as they have got with it."""

    member_id: int
    step: Step
    touched_at: datetime
    ref: str | None = None
    status: Status | None = None
    note: str | None = None
    mitigation: str | None = None
    # The message with the buttons, edited as the partner moves on so old buttons go.
    chat_id: int | None = None
    message_id: int | None = None
    # The Telegram update whose answer this step stored: the same update handled again
    # after a crash (the inbox replays what was not marked done) is not taken twice.
    update_id: int | None = None

    def answered_by(self, update_id: int) -> bool:
        """Whether this update's answer is already in the draft."""
        return self.update_id is not None and update_id <= self.update_id

    def moved(self, step: Step, at: datetime, **changes: object) -> UpdateDraft:
        """The draft at its next step."""
        return replace(self, step=step, touched_at=at, **changes)  # type: ignore[arg-type]

    def shown_in(self, chat_id: int, message_id: int) -> UpdateDraft:
        """The draft, noting the message that now carries its buttons."""
        return replace(self, chat_id=chat_id, message_id=message_id)

    def next_step(self) -> Step | None:
        """After the note: a mitigation for off track, a forecast for at risk or off track."""
        if self.status == Status.RED and self.mitigation is None:
            return Step.MITIGATION
        if self.status in (Status.AMBER, Status.RED) and self.step != Step.FORECAST:
            return Step.FORECAST
        return None


@dataclass(frozen=True)
class DraftLookup:
    """The live draft, or the one that just expired (so the partner can be told)."""

    draft: UpdateDraft | None
    expired: UpdateDraft | None = None


def load_draft(
    session: Session, *, user_id: int, at: datetime, expiry: timedelta = DRAFT_EXPIRY
) -> DraftLookup:
    """The user's draft; one untouched for longer than `expiry` is deleted and reported."""
    data = read_state(session, kind=DRAFT_KIND, key=str(user_id))
    if data is None:
        return DraftLookup(None)
    draft = _decode(data)
    if at - draft.touched_at > expiry:
        drop_state(session, kind=DRAFT_KIND, key=str(user_id))
        return DraftLookup(None, expired=draft)
    return DraftLookup(draft)


def has_draft(session: Session, *, user_id: int) -> bool:
    """Whether the user has a guided update open (expired or not)."""
    return read_state(session, kind=DRAFT_KIND, key=str(user_id)) is not None


def save_draft(session: Session, *, user_id: int, draft: UpdateDraft) -> UpdateDraft:
    """Store the draft, replacing any earlier one."""
    write_state(session, kind=DRAFT_KIND, key=str(user_id), data=_encode(draft))
    return draft


def discard_draft(session: Session, *, user_id: int) -> UpdateDraft | None:
    """Delete the draft (cancel); returns what it held."""
    data = drop_state(session, kind=DRAFT_KIND, key=str(user_id))
    return None if data is None else _decode(data)


def submit_draft(
    session: Session,
    *,
    user_id: int,
    draft: UpdateDraft,
    forecast: str | None,
    at: datetime,
    telegram_update_id: int | None,
    quiet_after: timedelta,
) -> LoggedUpdate:
    """Store the update and drop the draft in one transaction: both happen or neither."""
    assert draft.ref is not None and draft.status is not None and draft.note is not None
    logged = log_progress(
        session,
        ref=draft.ref,
        member_id=draft.member_id,
        status=draft.status,
        note=draft.note,
        mitigation=draft.mitigation,
        forecast=forecast,
        at=at,
        telegram_update_id=telegram_update_id,
        quiet_after=quiet_after,
    )
    discard_draft(session, user_id=user_id)
    return logged


def _encode(draft: UpdateDraft) -> dict[str, object]:
    data = asdict(draft)
    data["touched_at"] = draft.touched_at.isoformat()
    return data


def _decode(data: dict[str, object]) -> UpdateDraft:
    values = dict(data)
    values["touched_at"] = datetime.fromisoformat(str(values["touched_at"]))
    values["step"] = Step(str(values["step"]))
    if values.get("status") is not None:
        values["status"] = Status(str(values["status"]))
    return UpdateDraft(**values)  # type: ignore[arg-type]
