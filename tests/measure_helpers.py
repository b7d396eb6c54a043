"""Figures stored through `record_figure`, the operation /figure stores them with, for the
tests that show measures."""

from __future__ import annotations

from csp_bot.models.audit import Actor
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.measures import record_figure
from csp_bot.models.membership import MemberView
from csp_bot.models.values import parse_period

# From 10 June 2021 to Fri 8 Oct 2021, 10:00 BST: the second quarter of 2021/22 has ended.
TO_OCTOBER = 120


def send_figures(db: Database, clock: FakeClock, sender: MemberView) -> None:
    """Figures sent by `sender`: ASB-M1 over three quarters (the latest off target
    beyond the tolerance), HATE-M1 within it, and three days later ASB-M2 on target."""
    clock.advance(days=TO_OCTOBER)
    for code, period, value, note in (
        ("ASB-M1", "2020-Q2", 470, ""),
        ("ASB-M1", "2021-Q1", 405, ""),
        ("ASB-M1", "2021-Q2", 445, "more calls after the summer"),
        ("HATE-M1", "2021-Q2", 98, ""),
    ):
        figure(db, clock, sender, code, period, value, note)
    clock.advance(days=3)
    figure(db, clock, sender, "ASB-M2", "2021-09", 82, "")


def figure(
    db: Database,
    clock: FakeClock,
    sender: MemberView,
    code: str,
    period: str,
    value: float,
    note: str,
) -> None:
    db.call(
        record_figure,
        code=code,
        period=parse_period(period),
        value=float(value),
        note=note,
        at=clock(),
        actor=Actor.member(sender.id),
    )
