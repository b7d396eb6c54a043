"""What `log_progress` checks before it stores, and in which order, whichever way an update
comes (chat, dashboard, command line): a copy of a Telegram update stored already first,
then an inactive member, then an unknown action."""

from __future__ import annotations

import pytest
from sqlmodel import select

from csp_bot.models.audit import CLI
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.enums import Status
from csp_bot.models.lifecycle import deactivate_member
from csp_bot.models.membership import MemberView
from csp_bot.models.progress import LoggedUpdate, NotPermitted, UnknownAction, log_progress
from csp_bot.models.tables import ProgressUpdate


def store(
    db: Database, member: MemberView, ref: str, clock: FakeClock, telegram: int
) -> LoggedUpdate:
    return db.call(
        log_progress,
        ref=ref,
        member_id=member.id,
        status=Status.GREEN,
        note="all fine",
        at=clock(),
        telegram_update_id=telegram,
    )


def stored_notes(db: Database) -> list[str]:
    return db.call(lambda session: list(session.exec(select(ProgressUpdate.note)).all()))


def test_the_same_telegram_update_stores_once_even_after_the_member_left(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    police = people["police"]
    first = store(db, police, "soc-1", clock, telegram=41)
    db.call(deactivate_member, member_id=police.id, at=clock(), actor=CLI)
    again = store(db, police, "SOC-1", clock, telegram=41)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.update.id == first.update.id
    assert stored_notes(db).count("all fine") == 1


def test_an_inactive_member_is_refused_before_an_unknown_action_is_named(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    police = people["police"]
    db.call(deactivate_member, member_id=police.id, at=clock(), actor=CLI)
    for ref in ("SOC-1", "SOC-99"):
        with pytest.raises(NotPermitted, match=r"^Only active members can log progress\.$"):
            store(db, police, ref, clock, telegram=42)
    assert "all fine" not in stored_notes(db)


def test_an_unknown_action_names_the_closest(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    with pytest.raises(UnknownAction) as unknown:
        store(db, people["police"], "SOC-9", clock, telegram=43)
    assert (unknown.value.ref, unknown.value.suggestions) == ("SOC-9", ["SOC-5", "SOC-4", "SOC-3"])
    assert "all fine" not in stored_notes(db)
