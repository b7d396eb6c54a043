"""Guided forms in progress (/meeting, /decide), kept in the database so a restart loses
nothing: each answer is stored as soon as it is read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta

from sqlmodel import Session

from models.tables import BotState

FORM_KIND = "form"
FORM_EXPIRY = timedelta(minutes=30)


@dataclass(frozen=True)
class FormDraft:
    """How far someone has got with a form: its name, the step it waits for, the answers."""

    form: str
    step: int
    touched_at: datetime
    values: dict[str, str] = field(default_factory=dict)
    chat_id: int | None = None
    message_id: int | None = None

    def answered(self, name: str, value: str, at: datetime) -> FormDraft:
        """The draft with one more answer, waiting for the next step."""
        return replace(self, step=self.step + 1, touched_at=at, values={**self.values, name: value})

    def shown_in(self, chat_id: int, message_id: int) -> FormDraft:
        return replace(self, chat_id=chat_id, message_id=message_id)


def load_form(
    session: Session, *, user_id: int, at: datetime, expiry: timedelta = FORM_EXPIRY
) -> FormDraft | None:
    """The user's form in progress; one left untouched too long is forgotten."""
    row = session.get(BotState, (FORM_KIND, str(user_id)))
    if row is None:
        return None
    draft = _decode(row.data)
    if at - draft.touched_at > expiry:
        session.delete(row)
        return None
    return draft


def save_form(session: Session, *, user_id: int, draft: FormDraft) -> FormDraft:
    row = session.get(BotState, (FORM_KIND, str(user_id)))
    data = {**asdict(draft), "touched_at": draft.touched_at.isoformat()}
    if row is None:
        session.add(BotState(kind=FORM_KIND, key=str(user_id), data=data))
    else:
        row.data = data
        session.add(row)
    return draft


def discard_form(session: Session, *, user_id: int) -> FormDraft | None:
    """Forget the user's form; returns what it held."""
    row = session.get(BotState, (FORM_KIND, str(user_id)))
    if row is None:
        return None
    session.delete(row)
    return _decode(row.data)


def _decode(data: dict[str, object]) -> FormDraft:
    values = dict(data)
    values["touched_at"] = datetime.fromisoformat(str(values["touched_at"]))
    return FormDraft(**values)  # type: ignore[arg-type]
