"""Measures for the benchmarks: a performance framework spread over a plan's priorities."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, select
from sqlmodel import Session

from csp_bot.models.tables import Measure, MeasureFigure, MeasureTarget, Organisation, Priority
from csp_bot.models.values import Period


def quarters_before(now: datetime, count: int = 8) -> list[Period]:
    """The `count` quarters that ended before the one holding `now`, oldest first."""
    current = Period.containing(now.date(), quarterly=True)
    return [current.shifted(step - count) for step in range(count)]


def add_measures(session: Session, *, count: int, quarters: list[Period], now: datetime) -> None:
    """`count` quarterly measures, taken in turn by each priority and supplied by the first
    organisation: a baseline the quarter before `quarters`, targets for the last four, and a
    figure for every one (sent 30 days before `now`)."""
    priorities = session.execute(select(Priority.id, Priority.code)).all()
    supplier = session.execute(select(Organisation.id)).first()[0]
    rows = [
        {
            "code": f"{code}-M{100 + n}",
            "priority_id": priority_id,
            "title": f"Measure {n}",
            "description": "",
            "unit": "count",
            "frequency": "quarterly",
            "supplier_organisation_id": supplier,
            "lower_is_better": n % 2 == 0,
            "baseline_value": 400.0,
            "baseline_period": str(quarters[0].shifted(-1)),
            "tolerance": 10.0,
        }
        for n, (priority_id, code) in zip(
            range(count), (priorities[n % len(priorities)] for n in range(count)), strict=True
        )
    ]
    if not rows:
        return
    session.execute(insert(Measure), rows)
    new = select(Measure.id).where(Measure.title.like("Measure %"))
    ids = [row[0] for row in session.execute(new).all()]
    targets = [
        {"measure_id": i, "period": str(q), "value": 400.0 - 5 * k}
        for i in ids
        for k, q in enumerate(quarters[-4:])
    ]
    session.execute(insert(MeasureTarget), targets)
    figures = [
        {
            "measure_id": i,
            "period": str(q),
            "value": float(380 + (i * 7 + k * 13) % 50),
            "note": "",
            "created_at": now - timedelta(days=30),
        }
        for i in ids
        for k, q in enumerate(quarters)
    ]
    session.execute(insert(MeasureFigure), figures)
