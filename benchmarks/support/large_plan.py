"""A large, plausible plan written straight into a migrated database, for benchmarks.

Rows go in through SQLAlchemy Core in batches (the ORM would take minutes for 250,000
updates). The data is random but seeded, so every run measures the same plan.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection, Engine

from csp_bot.models.enums import FundingStatus, OrgKind, Recurrence, Role, Status
from csp_bot.models.tables import (
    Action,
    Deadline,
    DeadlineOrganisation,
    FundingDecision,
    FundingStream,
    Meeting,
    Member,
    Organisation,
    PlanInfo,
    Priority,
    ProgressUpdate,
)

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
BATCH = 10_000
# Roughly how a mature plan looks: most actions on track or done, a few in trouble.
STATUS_WEIGHTS = {
    Status.GREEN: 55,
    Status.COMPLETE: 15,
    Status.AMBER: 12,
    Status.RED: 5,
    Status.NOT_STARTED: 13,
}
RAG = (Status.GREEN, Status.AMBER, Status.RED)
LONG_AGO = NOW - timedelta(days=400)


@dataclass(frozen=True)
class PlanSize:
    """How big a plan to build."""

    priorities: int = 40
    actions: int = 10_000
    updates: int = 250_000
    members: int = 2_000
    organisations: int = 60


def plan_size(actions: int) -> PlanSize:
    """The large plan's proportions at `actions` actions (25 updates an action)."""
    scale = actions / 10_000
    return PlanSize(actions=actions, updates=actions * 25, members=max(100, int(2_000 * scale)))


@dataclass(frozen=True)
class BuiltPlan:
    """What was built, for the benchmark to drive."""

    size: PlanSize
    now: datetime
    chair_telegram_id: int
    priority_codes: list[str]


def build_large_plan(engine: Engine, size: PlanSize | None = None, seed: int = 2021) -> BuiltPlan:
    """Fill an empty, migrated database with a plan of `size`; returns how to reach it."""
    size = size or PlanSize()
    rng = random.Random(seed)
    with engine.begin() as connection:
        _insert(connection, PlanInfo, [_plan_info()])
        _insert(connection, Organisation, _organisations(size))
        _insert(connection, Member, _members(size))
        codes = [f"P{number:02d}" for number in range(1, size.priorities + 1)]
        _insert(connection, Priority, _priorities(codes, size, rng))
        _actions(connection, size, codes, rng)
        _insert(connection, Meeting, _meetings())
        _funding(connection, rng)
        _deadlines(connection)
    return BuiltPlan(size, NOW, chair_telegram_id=_telegram_id(1), priority_codes=codes)


def _insert(connection: Connection, model: Any, rows: Iterable[dict[str, Any]]) -> None:
    table: Table = model.__table__
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            connection.execute(insert(table), batch)
            batch = []
    if batch:
        connection.execute(insert(table), batch)


def _plan_info() -> dict[str, Any]:
    return {
        "id": 1,
        "title": "Benchmarkshire Community Safety Partnership Plan 2025-26",
        "area": "Benchmarkshire",
        "board": "Benchmarkshire CSP Board",
        "starts_on": date(2025, 4, 1),
        "ends_on": date(2026, 3, 31),
    }


def _organisations(size: PlanSize) -> Iterator[dict[str, Any]]:
    for number in range(1, size.organisations + 1):
        kind = OrgKind.RESPONSIBLE if number <= 6 else OrgKind.WIDER
        yield {
            "id": number,
            "name": f"Partner organisation {number:02d}",
            "short_name": f"ORG{number:02d}",
            "kind": kind.value,
        }


def _telegram_id(member_id: int) -> int:
    return 500_000 + member_id


def _role(member_id: int) -> Role:
    if member_id == 1:
        return Role.CHAIR
    if member_id == 2:
        return Role.ADMIN
    if member_id <= 30:
        return Role.BOARD
    return Role.OBSERVER if member_id % 10 == 0 else Role.PARTNER


def _members(size: PlanSize) -> Iterator[dict[str, Any]]:
    for number in range(1, size.members + 1):
        yield {
            "id": number,
            "telegram_id": _telegram_id(number),
            "name": f"Member {number}",
            "organisation_id": (number - 1) % size.organisations + 1,
            "role": _role(number).value,
            "active": True,
            "joined_at": LONG_AGO,
        }


def _priorities(codes: list[str], size: PlanSize, rng: random.Random) -> Iterator[dict[str, Any]]:
    for number, code in enumerate(codes, start=1):
        yield {
            "id": number,
            "code": code,
            "title": f"Community safety theme {number}",
            "strategy": f"County-wide strategy {number}",
            "description": "",
            "lead_organisation_id": rng.randint(1, size.organisations),
        }


def _actions(connection: Connection, size: PlanSize, codes: list[str], rng: random.Random) -> None:
    """Actions with their histories; an action's status is what its last live update said."""
    per_priority = size.actions // size.priorities
    weights = list(STATUS_WEIGHTS.values())
    finals = rng.choices(list(STATUS_WEIGHTS), weights=weights, k=size.actions)
    # Actions not started have no updates; the others share the updates between them.
    reporting = sum(final != Status.NOT_STARTED for final in finals)
    per_action = size.updates // reporting
    extra = size.updates - per_action * reporting
    actions, history = [], []
    for number, final in enumerate(finals, start=1):
        count = 0
        if final != Status.NOT_STARTED:
            count, extra = per_action + (1 if extra > 0 else 0), max(extra - 1, 0)
        rows = list(_history(number, final, count, size, rng))
        live = [row for row in rows if row[_WITHDRAWN] is None]
        priority = (number - 1) // per_priority
        actions.append(
            {
                "id": number,
                "ref": f"{codes[priority]}-{(number - 1) % per_priority + 1}",
                "priority_id": priority + 1,
                "title": f"Deliver workstream {number} with the partners named in the strategy",
                "description": "",
                "lead_organisation_id": rng.randint(1, size.organisations),
                "owner": f"Lead officer {number % 97}",
                "due_on": (NOW + timedelta(days=rng.randint(-60, 400))).date(),
                "status": live[-1][_STATUS] if live else final.value,
                "status_at": live[-1][_CREATED] if live else LONG_AGO,
                "last_update_at": max((row[_CREATED] for row in live), default=None),
            }
        )
        history.extend(rows)
    _insert(connection, Action, actions)
    # In time order, as a running bot appends them: recent updates sit together on disk.
    history.sort(key=lambda row: row[_CREATED])
    _insert(
        connection, ProgressUpdate, (dict(zip(_UPDATE_FIELDS, row, strict=True)) for row in history)
    )
    history.clear()


# Updates are generated as tuples (250,000 dicts would double the builder's memory).
_UPDATE_FIELDS = (
    "action_id",
    "member_id",
    "status",
    "note",
    "mitigation",
    "forecast",
    "created_at",
    "previous_status",
    "previous_status_at",
    "withdrawn_at",
)
_STATUS, _CREATED, _WITHDRAWN = 2, 6, 9
Update = tuple[Any, ...]


def _history(
    action_id: int, final: Status, count: int, size: PlanSize, rng: random.Random
) -> Iterator[Update]:
    """`count` updates over the last year, a random walk through RAG ending at `final`.

    Most actions were last updated within a fortnight; about one in ten went quiet months ago.
    """
    if count == 0:
        return
    last = rng.uniform(30, 150) if rng.random() < 0.1 else rng.uniform(0, 14)
    times = sorted(NOW - timedelta(days=rng.uniform(last, 365)) for _ in range(count - 1))
    times.append(NOW - timedelta(days=last))
    walk = [rng.choice(RAG) for _ in range(count - 1)] + [final]
    previous, previous_at = Status.NOT_STARTED, LONG_AGO
    for index, (at, status) in enumerate(zip(times, walk, strict=True)):
        # The final update always stands, so the action keeps the status it reported.
        withdrawn = index < count - 1 and rng.random() < 0.02
        yield (
            action_id,
            rng.randint(31, size.members),
            status.value,
            f"Progress note {index + 1}: work continues with partners as planned.",
            _mitigation(status),
            None if status == Status.GREEN else "Expected to recover by the due date",
            at,
            previous.value,
            previous_at,
            at + timedelta(minutes=5) if withdrawn else None,
        )
        if not withdrawn:
            previous, previous_at = status, at


def _mitigation(status: Status) -> str | None:
    if status != Status.RED:
        return None
    return "Escalated to the lead officer; a recovery plan is agreed with the partners."


def _meetings() -> Iterator[dict[str, Any]]:
    """A board meeting every eight weeks: the last one six weeks before NOW."""
    start = datetime(2025, 1, 16, 10, 0, tzinfo=UTC)
    for number in range(12):
        yield {
            "title": "Benchmarkshire CSP Board",
            "starts_at": start + timedelta(days=56 * number),
            "location": "Council Offices",
            "agenda": "Highlight report",
        }


def _funding(connection: Connection, rng: random.Random) -> None:
    streams = range(1, 11)
    _insert(
        connection,
        FundingStream,
        (
            {"id": s, "code": f"FS{s}", "name": f"Funding stream {s}", "description": ""}
            for s in streams
        ),
    )
    decisions = (
        {
            "stream_id": stream,
            "organisation_id": organisation,
            "financial_year": year,
            "amount_pence": rng.randint(1_000, 50_000) * 100,
            "status": rng.choice(list(FundingStatus)).value,
            "note": "",
            "decided_at": NOW - timedelta(days=rng.randint(0, 300)),
        }
        for stream in streams
        for organisation in range(1, 31)
        for year in (2024, 2025, 2026)
    )
    _insert(connection, FundingDecision, decisions)


def _deadlines(connection: Connection) -> None:
    deadlines = range(1, 11)
    _insert(
        connection,
        Deadline,
        (
            {
                "id": number,
                "title": f"Annual deadline {number}",
                "due_on": date(2025, number, 10 + number),
                "recurrence": (Recurrence.YEARLY if number % 3 else Recurrence.ONCE).value,
                "description": "",
            }
            for number in deadlines
        ),
    )
    links = (
        {"deadline_id": deadline, "organisation_id": organisation}
        for deadline in deadlines
        for organisation in range(1, 7)
    )
    _insert(connection, DeadlineOrganisation, links)
