"""One bad row cannot stop the others: planning and delivery skip what they cannot handle."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from sqlmodel import Session, select

from csp_bot.bot.emulator import BotApiEmulator
from csp_bot.handlers import delivery as dispatch
from csp_bot.handlers.context import CspApplication
from csp_bot.handlers.reminder_messages import Composed
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.enums import Recurrence
from csp_bot.models.membership import MemberView
from csp_bot.models.reminder_types import OutboxState, ReminderKind
from csp_bot.models.tables import Action, Deadline, DeadlineOrganisation, Organisation
from csp_bot.scheduler import content
from csp_bot.scheduler.content import Content, DeadlineNotice
from tests.reminder_helpers import outbox, schedule, set_clock, texts, tick

END_OF_CALENDAR = date(9999, 12, 31)


def poison(session: Session) -> int:
    """A deadline on the last day of the calendar, stored as no input would now allow."""
    deadline = Deadline(title="The end of time", due_on=END_OF_CALENDAR, recurrence=Recurrence.ONCE)
    session.add(deadline)
    session.flush()
    assert deadline.id is not None
    for organisation_id in session.exec(select(Organisation.id)).all():
        assert organisation_id is not None
        session.add(DeadlineOrganisation(deadline_id=deadline.id, organisation_id=organisation_id))
    action = session.exec(select(Action).where(Action.ref == "SOC-1")).one()
    action.due_on = END_OF_CALENDAR
    session.add(action)
    return deadline.id


def failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


async def test_a_poison_deadline_and_action_do_not_stop_the_other_reminders(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    caplog: pytest.LogCaptureFixture,
) -> None:
    deadline_id = db.call(poison)
    soc1 = db.call(lambda s: s.exec(select(Action.id).where(Action.ref == "SOC-1")).one())
    schedule(db, clock, "2022-01-11T08:00")
    set_clock(clock, "2022-01-04T07:59")
    await tick(app)
    set_clock(clock, "2022-01-04T08:00")
    await tick(app)
    police = texts(emulator, "police")
    assert [t.split("\n")[0] for t in police if t.startswith("⏰")] == [
        "⏰ <b>Deadline in 27 days: Partner contributions confirmed</b>"
    ]
    assert [t.split("</b>")[0] for t in police if "SOC-3 is" in t] == ["⚠️ <b>SOC-3 is overdue"]
    assert [t.split("</b>")[0] for t in texts(emulator, "chair") if "Board meeting" in t] == [
        "📅 <b>Board meeting in 7 days"
    ]
    assert not [t for t in police if "The end of time" in t or "SOC-1 is" in t]
    assert failures(caplog) == [
        f"cannot work out the reminders for deadline {deadline_id}: skipped (logged once)",
        f"cannot work out the reminders for action {soc1}: skipped (logged once)",
    ]
    assert deadline_id not in {entry.subject_id for entry in outbox(db, ReminderKind.DEADLINE)}
    caplog.clear()
    clock.advance(minutes=1)
    await tick(app)
    assert failures(caplog) == []  # the same subjects are not logged again every minute


async def test_a_reminder_that_cannot_be_written_is_dropped_and_the_rest_still_go(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    compose = dispatch.compose

    def failing_for_deadlines(content: Content, **kwargs: object) -> Composed:
        if isinstance(content, DeadlineNotice):
            raise ValueError("the template broke")
        return compose(content, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dispatch, "compose", failing_for_deadlines)
    schedule(db, clock, "2022-01-11T08:00")
    set_clock(clock, "2022-01-04T08:00")
    report = await tick(app)
    assert not [t for t in texts(emulator, "police") if t.startswith("⏰")]
    assert [t.split("</b>")[0] for t in texts(emulator, "chair") if "Board meeting" in t] == [
        "📅 <b>Board meeting in 7 days"
    ]
    assert [t.split("</b>")[0] for t in texts(emulator, "police") if "SOC-3 is" in t] == [
        "⚠️ <b>SOC-3 is overdue"
    ]
    deadline_states = {entry.state for entry in outbox(db, ReminderKind.DEADLINE)}
    assert deadline_states == {OutboxState.DROPPED}
    assert report.outcomes[OutboxState.DROPPED] == 4  # the coordinator, chair, board, police
    assert [message.endswith("; it is dropped") for message in failures(caplog)] == [True] * 4


async def test_a_reminder_whose_content_cannot_be_read_is_dropped_and_the_rest_still_go(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def unreadable(*args: object) -> Content:
        raise OverflowError("date value out of range")

    monkeypatch.setitem(content.READERS, ReminderKind.DEADLINE, unreadable)
    schedule(db, clock, "2022-01-11T08:00")
    set_clock(clock, "2022-01-04T08:00")
    await tick(app)
    assert not [t for t in texts(emulator, "police") if t.startswith("⏰")]
    assert [t.split("</b>")[0] for t in texts(emulator, "chair") if "Board meeting" in t] == [
        "📅 <b>Board meeting in 7 days"
    ]
    entries = outbox(db, ReminderKind.DEADLINE)
    assert {(entry.state, entry.detail) for entry in entries} == {
        (OutboxState.DROPPED, "could not be read")
    }
    assert [message.endswith("(deadline); it is dropped") for message in failures(caplog)] == [
        True
    ] * 4
