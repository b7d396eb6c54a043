"""The board's exception summary: /summary and /summary CODE, end to end."""

from __future__ import annotations

from datetime import timedelta

from models.clock import FakeClock
from models.db import Database
from models.enums import Status
from models.membership import MemberView
from models.progress import ActionView, find_action, log_progress, undo_last_update

QUIET = timedelta(days=28)


def log(
    db: Database,
    clock: FakeClock,
    member: MemberView,
    ref: str,
    status: Status,
    note: str,
    **extra: str,
) -> None:
    db.call(
        log_progress, ref=ref, member_id=member.id, status=status, note=note, at=clock(), **extra
    )


def view(db: Database, clock: FakeClock, ref: str) -> ActionView:
    return db.call(find_action, ref=ref, at=clock(), quiet_after=QUIET)


# --- the query layer: an action's last update ------------------------------------------------


def test_last_update_follows_updates_and_undo(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    police, chair = people["police"], people["chair"]
    assert view(db, clock, "SOC-1").last_update_at is None  # the plan set its status
    clock.advance(days=1)
    first = clock()
    log(db, clock, police, "SOC-1", Status.AMBER, "Provider late")
    clock.advance(days=1)
    log(db, clock, police, "SOC-1", Status.GREEN, "Provider on site")
    assert view(db, clock, "SOC-1").last_update_at == clock()
    clock.advance(minutes=5)
    db.call(undo_last_update, member_id=police.id, at=clock())
    assert view(db, clock, "SOC-1").last_update_at == first
    # Two people take back their updates in the order that leaves the action's status time
    # pointing at a withdrawn update: the last update is then found among the live ones.
    clock.advance(minutes=1)
    log(db, clock, police, "SOC-1", Status.RED, "Provider gone")
    clock.advance(minutes=1)
    log(db, clock, chair, "SOC-1", Status.AMBER, "Re-procuring")
    db.call(undo_last_update, member_id=police.id, at=clock())  # not the latest: no change
    db.call(undo_last_update, member_id=chair.id, at=clock())
    assert view(db, clock, "SOC-1").last_update_at == first
