"""Guided forms in progress (/meeting, /decide), kept in the database so a restart loses
nothing: each answer is stored as soon as it is read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta

from sqlmodel import Session

from csp_bot.models.state import drop_state, read_state, write_state

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
    data = read_state(session, kind=FORM_KIND, key=str(user_id))
    if data is None:
        return None
    draft = _decode(data)
    if at - draft.touched_at > expiry:
        drop_state(session, kind=FORM_KIND, key=str(user_id))
        return None
    return draft


def save_form(session: Session, *, user_id: int, draft: FormDraft) -> FormDraft:
    data = {**asdict(draft), "touched_at": draft.touched_at.isoformat()}
    write_state(session, kind=FORM_KIND, key=str(user_id), data=data)
    return draft


def discard_form(session: Session, *, user_id: int) -> FormDraft | None:
    """Forget the user's form; returns what it held."""
    data = drop_state(session, kind=FORM_KIND, key=str(user_id))
    return None if data is None else _decode(data)


def _decode(data: dict[str, object]) -> FormDraft:
    values = dict(data)
    values["touched_at"] = datetime.fromisoformat(str(values["touched_at"]))
    return FormDraft(**values)  # type: ignore[arg-type]
