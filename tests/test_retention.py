"""Retention: what has outlived its period goes, by `csp-bot prune` and by the daily job;
everything younger stays."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, select

from csp_bot.bot.cli import main
from csp_bot.bot.settings import SettingsError, load_settings
from csp_bot.handlers.context import CspApplication
from csp_bot.handlers.jobs import RETENTION_JOB
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from csp_bot.models.reminder_types import OutboxState, ReminderKind
from csp_bot.models.retention import years_before
from csp_bot.models.tables import AuditEntry, DialogueDraft, InboxUpdate, Invite, OutboxEntry

OLD, RECENT = timedelta(days=91), timedelta(days=89)


def seed(session: Session, now: datetime, member_id: int, organisation_id: int) -> None:
    """One record of each kind just past its retention, and one just inside it."""
    for n, age in enumerate((OLD, RECENT)):
        at = now - age
        session.add(InboxUpdate(update_id=n, chat_key=1, payload={}, received_at=at, done_at=at))
        session.add(
            OutboxEntry(
                kind=ReminderKind.DEADLINE,
                subject_id=1,
                member_id=member_id,
                occurrence=f"o{n}",
                fire_at=at,
                send_at=at,
                expires_at=at,
                state=OutboxState.SENT,
                recorded_at=at,
            )
        )
        data = {"member_id": member_id}
        session.add(
            DialogueDraft(user_id=n, dialogue="update", step="note", touched_at=at, data=data)
        )
        session.add(
            Invite(
                code=f"code{n}",
                organisation_id=organisation_id,
                role="partner",
                created_at=at - timedelta(days=7),
                expires_at=at,
            )
        )
    for years, marker in ((7, "seven years"), (5, "five years")):
        session.add(
            AuditEntry(at=years_before(now, years), actor=marker, entity="x", change="updated")
        )


def remaining(session: Session) -> dict[str, int]:
    return {
        table.__name__: len(session.exec(select(table)).all())
        for table in (InboxUpdate, OutboxEntry, DialogueDraft, Invite)
    }


@pytest.fixture
def aged(db: Database, clock: FakeClock, people: dict[str, MemberView]) -> datetime:
    police = people["police"]
    db.call(seed, clock(), police.id, police.organisation_id)
    return clock()


def test_prune_deletes_what_outlived_its_retention(
    db: Database, aged: datetime, cli_at: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prune"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "pruned: inbox updates 2, reminders 1, drafts 1, invites 1, audit entries 1",
        "kept: handled updates 7 days; reminders, drafts and invites 90 days; "
        "the audit trail 6 years",
    ]
    assert db.call(remaining) == {
        "InboxUpdate": 0,
        "OutboxEntry": 1,
        "DialogueDraft": 1,
        "Invite": 1,
    }
    audit = db.call(lambda s: s.exec(select(AuditEntry)).all())
    actors = {entry.actor for entry in audit}
    assert "five years" in actors and "seven years" not in actors
    [entry] = [e for e in audit if e.change == "pruned"]
    assert entry.actor == "retention" and entry.after is not None
    assert entry.after["invites"] == 1 and entry.after["kept_audit_years"] == 6
    assert main(["prune"]) == 0
    assert capsys.readouterr().out.startswith("nothing old enough to prune\n")


def test_retention_is_configurable(
    db: Database, aged: datetime, cli_at: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSPBOT_RETENTION_DAYS", "60")
    monkeypatch.setenv("CSPBOT_AUDIT_YEARS", "4")
    assert main(["prune"]) == 0
    assert db.call(remaining) == {
        "InboxUpdate": 0,
        "OutboxEntry": 0,
        "DialogueDraft": 0,
        "Invite": 0,
    }
    audit = db.call(lambda s: s.exec(select(AuditEntry.actor)).all())
    assert "five years" not in audit


@pytest.mark.parametrize(("name", "value"), [("RETENTION_DAYS", "30"), ("AUDIT_YEARS", "0")])
def test_retention_too_short_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"CSPBOT_{name}", value)
    with pytest.raises(SettingsError, match=f"CSPBOT_{name} is invalid"):
        load_settings()


async def test_the_daily_job_applies_retention(
    app: CspApplication, db: Database, aged: datetime
) -> None:
    assert app.job_queue is not None
    [job] = app.job_queue.get_jobs_by_name(RETENTION_JOB)
    assert job.job.trigger.interval == timedelta(days=1)
    await job.run(app)
    assert db.call(remaining) == {
        "InboxUpdate": 0,
        "OutboxEntry": 1,
        "DialogueDraft": 1,
        "Invite": 1,
    }
