"""Importing a checked plan: records created or updated by their natural keys, each audited.

Nothing is deleted; the caller's transaction makes an import all or nothing. Reading and
checking the file is `models.plan_checks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlmodel import Session, SQLModel, col, select

from csp_bot.models.audit import PLAN_IMPORT, Actor, record_change, record_removal, snapshot
from csp_bot.models.enums import Status
from csp_bot.models.plan_checks import load_plan_file
from csp_bot.models.plan_file import (
    ActionEntry,
    ContributionEntry,
    DeadlineEntry,
    Directory,
    FundingStreamEntry,
    MeasureEntry,
    MeetingEntry,
    OrganisationEntry,
    PlanDetails,
    PlanFile,
    PriorityEntry,
)
from csp_bot.models.statutory import StatutoryDates, statutory_deadlines
from csp_bot.models.tables import (
    Action,
    Deadline,
    DeadlineOrganisation,
    FundingDecision,
    FundingStream,
    Measure,
    MeasureTarget,
    Meeting,
    Organisation,
    PlanInfo,
    Priority,
)

R = TypeVar("R", bound=SQLModel)
DEFAULT_DATES = StatutoryDates()


@dataclass
class Tally:
    """How many records of one kind an import created, updated or found up to date."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged

    def count(self, change: str) -> None:
        setattr(self, change, getattr(self, change) + 1)

    def amount(self, singular: str, plural: str) -> str:
        """`16 actions`, `1 plan`."""
        return f"{self.total} {singular if self.total == 1 else plural}"

    def describe(self, singular: str, plural: str) -> str:
        """`16 actions (2 created, 14 unchanged)`, or `4 priorities (created)`."""
        states = {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}
        shown = [(state, n) for state, n in states.items() if n]
        detail = shown[0][0] if len(shown) == 1 else ", ".join(f"{n} {s}" for s, n in shown)
        return f"{self.amount(singular, plural)} ({detail})"


KINDS = {
    "plan": ("plan", "plans"),
    "organisations": ("organisation", "organisations"),
    "priorities": ("priority", "priorities"),
    "actions": ("action", "actions"),
    "measures": ("measure", "measures"),
    "targets": ("target", "targets"),
    "funding_streams": ("funding stream", "funding streams"),
    "contributions": ("contribution", "contributions"),
    "meetings": ("meeting", "meetings"),
    "deadlines": ("deadline", "deadlines"),
}


@dataclass
class ImportResult:
    """What an import did, kind by kind, and how many audit entries it wrote."""

    title: str
    plan: Tally = field(default_factory=Tally)
    organisations: Tally = field(default_factory=Tally)
    priorities: Tally = field(default_factory=Tally)
    actions: Tally = field(default_factory=Tally)
    measures: Tally = field(default_factory=Tally)
    targets: Tally = field(default_factory=Tally)
    funding_streams: Tally = field(default_factory=Tally)
    contributions: Tally = field(default_factory=Tally)
    meetings: Tally = field(default_factory=Tally)
    deadlines: Tally = field(default_factory=Tally)
    audit_entries: int = 0

    @property
    def changed(self) -> bool:
        return self.audit_entries > 0

    def tallies(self) -> dict[str, Tally]:
        """Each kind's tally, by attribute name, in import order."""
        tallies: dict[str, Tally] = {kind: getattr(self, kind) for kind in KINDS}
        return tallies

    def summary(self) -> str:
        """One paragraph for the command line."""
        present = [(tally, KINDS[kind]) for kind, tally in self.tallies().items() if tally.total]
        if not self.changed:
            amounts = ", ".join(tally.amount(*nouns) for tally, nouns in present)
            return f"Imported {self.title!r}: nothing to change ({amounts}, all up to date)."
        parts = "; ".join(tally.describe(*nouns) for tally, nouns in present)
        entries = "entry" if self.audit_entries == 1 else "entries"
        return f"Imported {self.title!r}: {parts}. {self.audit_entries} audit {entries} written."


def import_plan_file(
    session: Session,
    *,
    path: Path,
    at: datetime,
    actor: Actor = PLAN_IMPORT,
    statutory: StatutoryDates = DEFAULT_DATES,
) -> ImportResult:
    """Check the file at `path`, then import it; nothing is written if the file has a problem."""
    plan = load_plan_file(path)
    return import_plan(session, plan=plan, at=at, actor=actor, statutory=statutory)


def import_plan(
    session: Session,
    *,
    plan: PlanFile,
    at: datetime,
    actor: Actor = PLAN_IMPORT,
    statutory: StatutoryDates = DEFAULT_DATES,
) -> ImportResult:
    """Create or update everything in `plan`, auditing each change; deletes nothing.

    The caller's transaction makes it all or nothing: any error propagates for its rollback.
    """
    if at.tzinfo is None:
        raise ValueError("import_plan needs an aware datetime")
    job = _Import(session, at, actor, ImportResult(title=plan.plan.title))
    job.plan_info(plan.plan)
    job.organisations(plan.organisations)
    job.priorities(plan.priorities)
    job.measures(plan.priorities)
    job.funding_streams(plan.funding_streams)
    job.meetings(plan.meetings)
    calendar = statutory_deadlines(
        plan.statutory_calendar, statutory, plan_starts_on=plan.plan.starts_on
    )
    job.deadlines([*plan.deadlines, *calendar])
    return job.result


class _Import:
    """One import in progress: the session, who and when, and what it has done so far."""

    def __init__(self, session: Session, at: datetime, actor: Actor, result: ImportResult):
        self.session, self.at, self.actor, self.result = session, at, actor, result
        self.directory = Directory([])
        self.organisation_ids: dict[str, int] = {}

    def upsert(
        self,
        record: R | None,
        model: type[R],
        values: Mapping[str, Any],
        first: Mapping[str, Any] | None = None,
    ) -> tuple[R, str]:
        """Create `model(**values, **first)` or set `values` on `record`; audit any change."""
        before = None if record is None else snapshot(record)
        if record is None:
            record = model(**values, **(first or {}))
        else:
            for name, value in values.items():
                setattr(record, name, value)
        entry = record_change(
            self.session, actor=self.actor, at=self.at, record=record, before=before
        )
        if entry is not None:
            self.result.audit_entries += 1
        change = "created" if before is None else "updated" if entry else "unchanged"
        return record, change

    def all(self, model: type[R]) -> list[R]:
        return list(self.session.exec(select(model)))

    def plan_info(self, details: PlanDetails) -> None:
        existing = self.session.exec(select(PlanInfo).order_by(col(PlanInfo.id))).first()
        _, change = self.upsert(existing, PlanInfo, details.model_dump())
        self.result.plan.count(change)

    def organisations(self, entries: list[OrganisationEntry]) -> None:
        self.directory = Directory(entries)
        existing = {org.name.casefold(): org for org in self.all(Organisation)}
        for entry in entries:
            values = entry.model_dump()
            record, change = self.upsert(existing.get(entry.name.casefold()), Organisation, values)
            self.organisation_ids[entry.name] = _id(record)
            self.result.organisations.count(change)

    def organisation_id(self, name: str) -> int:
        entry = self.directory.find(name)
        if entry is None:  # parse_plan rejects this; a hand-built PlanFile might not
            raise ValueError(f"unknown organisation: {name!r}")
        return self.organisation_ids[entry.name]

    def priorities(self, entries: list[PriorityEntry]) -> None:
        existing = {priority.code.upper(): priority for priority in self.all(Priority)}
        actions = {action.ref.upper(): action for action in self.all(Action)}
        for entry in entries:
            values = {
                "code": entry.code,
                "title": entry.title,
                "strategy": entry.strategy,
                "description": entry.description,
                "lead_organisation_id": self.organisation_id(entry.lead),
            }
            record, change = self.upsert(existing.get(entry.code), Priority, values)
            self.result.priorities.count(change)
            for action in entry.actions:
                self.action(action, actions.get(action.ref), entry, _id(record))

    def action(
        self, entry: ActionEntry, existing: Action | None, priority: PriorityEntry, priority_id: int
    ) -> None:
        values = {
            "ref": entry.ref,
            "priority_id": priority_id,
            "title": entry.title,
            "description": entry.description,
            "lead_organisation_id": self.organisation_id(entry.lead or priority.lead),
            "owner": "; ".join(entry.owner_titles()) or None,
            "due_on": entry.due,
        }
        # The file's status only seeds a new action; after that, progress updates own it.
        first = {
            "status": entry.status or Status.NOT_STARTED,
            "status_at": self.at,
            "status_changed_at": self.at,
        }
        _, change = self.upsert(existing, Action, values, first)
        self.result.actions.count(change)

    # Measures: each priority's `measures:`, their targets replaced by the file's -----------

    def measures(self, priorities: list[PriorityEntry]) -> None:
        priority_ids = {priority.code: _id(priority) for priority in self.all(Priority)}
        existing = {measure.code: measure for measure in self.all(Measure)}
        for priority in priorities:
            for entry in priority.measures:
                values = self.measure_values(entry, priority_ids[priority.code])
                record, change = self.upsert(existing.get(entry.code), Measure, values)
                if self.measure_targets(_id(record), entry) and change == "unchanged":
                    change = "updated"
                self.result.measures.count(change)

    def measure_values(self, entry: MeasureEntry, priority_id: int) -> dict[str, Any]:
        baseline = entry.baseline
        return {
            "code": entry.code,
            "priority_id": priority_id,
            "title": entry.title,
            "description": entry.description,
            "unit": entry.unit,
            "frequency": entry.frequency,
            "supplier_organisation_id": self.organisation_id(entry.supplier),
            "contact": entry.contact,
            "lower_is_better": entry.better == "lower",
            "baseline_value": baseline.value if baseline else None,
            "baseline_period": baseline.period if baseline else None,
            "tolerance": entry.tolerance,
        }

    def measure_targets(self, measure_id: int, entry: MeasureEntry) -> bool:
        """Make the measure's targets the file's; True if any was removed."""
        stored = self.session.exec(
            select(MeasureTarget).where(MeasureTarget.measure_id == measure_id)
        ).all()
        current = {target.period: target for target in stored}
        for target in entry.targets:
            values = {"measure_id": measure_id, "period": target.period, "value": target.value}
            _, change = self.upsert(current.get(target.period), MeasureTarget, values)
            self.result.targets.count(change)
        dropped = current.keys() - {target.period for target in entry.targets}
        for period in sorted(dropped):
            record_removal(self.session, actor=self.actor, at=self.at, record=current[period])
            self.result.audit_entries += 1
        return bool(dropped)

    def funding_streams(self, entries: list[FundingStreamEntry]) -> None:
        existing = {stream.code.upper(): stream for stream in self.all(FundingStream)}
        decisions = {
            (decision.stream_id, decision.organisation_id, decision.financial_year): decision
            for decision in self.all(FundingDecision)
        }
        for entry in entries:
            values = {"code": entry.code, "name": entry.name, "description": entry.description}
            record, change = self.upsert(existing.get(entry.code), FundingStream, values)
            self.result.funding_streams.count(change)
            for contribution in entry.contributions:
                self.contribution(contribution, _id(record), decisions)

    def contribution(
        self,
        entry: ContributionEntry,
        stream_id: int,
        decisions: dict[tuple[int, int, int], FundingDecision],
    ) -> None:
        key = (stream_id, self.organisation_id(entry.organisation), entry.year)
        values: dict[str, Any] = {
            "stream_id": key[0],
            "organisation_id": key[1],
            "financial_year": key[2],
            "amount_pence": entry.amount,
            "status": entry.status,
            "note": entry.note,
        }
        existing = decisions.get(key)
        # The decision date is the date of the figure: it moves only when the figure does.
        if existing is None or _differs(existing, values):
            values["decided_at"] = self.at
        _, change = self.upsert(existing, FundingDecision, values)
        self.result.contributions.count(change)

    def meetings(self, entries: list[MeetingEntry]) -> None:
        existing = {(meeting.title, meeting.starts_at): meeting for meeting in self.all(Meeting)}
        for entry in entries:
            values = {
                "title": entry.title,
                "starts_at": entry.at,
                "location": entry.location,
                "agenda": "\n".join(entry.agenda),
            }
            _, change = self.upsert(existing.get((entry.title, entry.at)), Meeting, values)
            self.result.meetings.count(change)

    def deadlines(self, entries: list[DeadlineEntry]) -> None:
        existing = {deadline.title: deadline for deadline in self.all(Deadline)}
        for entry in entries:
            values = {
                "title": entry.title,
                "due_on": entry.date,
                "recurrence": entry.repeats,
                "description": entry.description,
            }
            record, change = self.upsert(existing.get(entry.title), Deadline, values)
            wanted = {
                self.organisation_ids[org.name]
                for org in self.directory.expand(entry.organisations)
            }
            if self.link_organisations(_id(record), wanted) and change == "unchanged":
                change = "updated"
            self.result.deadlines.count(change)

    def link_organisations(self, deadline_id: int, wanted: set[int]) -> bool:
        """Make the deadline's organisations exactly `wanted`; True if that changed anything."""
        links = self.session.exec(
            select(DeadlineOrganisation).where(DeadlineOrganisation.deadline_id == deadline_id)
        ).all()
        current = {link.organisation_id: link for link in links}
        for organisation_id in sorted(wanted - current.keys()):
            link = {"deadline_id": deadline_id, "organisation_id": organisation_id}
            self.upsert(None, DeadlineOrganisation, link)
        for organisation_id in sorted(current.keys() - wanted):
            self.unlink(current[organisation_id])
        return wanted != current.keys()

    def unlink(self, link: DeadlineOrganisation) -> None:
        record_removal(self.session, actor=self.actor, at=self.at, record=link)
        self.result.audit_entries += 1


def _id(record: SQLModel) -> int:
    value = getattr(record, "id", None)
    if not isinstance(value, int):
        raise ValueError(f"{type(record).__name__} has no id after flush")
    return value


def _differs(record: SQLModel, values: Mapping[str, Any]) -> bool:
    return any(getattr(record, name) != value for name, value in values.items())


def plan_loaded(session: Session) -> bool:
    """Whether a plan with at least one action has been imported."""
    return session.exec(select(Action.id).limit(1)).first() is not None
