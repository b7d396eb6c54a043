"""Plan files: the sample plan, idempotent and in-place imports, every kind of bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel, select

import csp_bot.models.plan_import
from csp_bot.models.audit import record_change, snapshot
from csp_bot.models.db import Database
from csp_bot.models.enums import FundingStatus, OrgKind, Recurrence, Status
from csp_bot.models.plan_checks import PlanError, load_plan_file, parse_plan
from csp_bot.models.plan_import import Tally, import_plan, import_plan_file
from csp_bot.models.tables import (
    Action,
    AuditEntry,
    Deadline,
    DeadlineOrganisation,
    FundingDecision,
    FundingStream,
    Meeting,
    Organisation,
    PlanInfo,
    Priority,
)
from csp_bot.models.values import (
    format_financial_year,
    format_money,
    parse_date,
    parse_datetime,
    parse_financial_year,
    parse_money,
    parse_status,
)

EXAMPLE = Path(__file__).parent.parent / "examples" / "north-northants-csp-2021-22.yaml"
MINIMAL = Path(__file__).parent / "plan_fixtures" / "minimal.yaml"
AT = datetime(2021, 6, 10, 9, 0, tzinfo=UTC)
LATER = datetime(2021, 7, 1, 9, 0, tzinfo=UTC)
T = TypeVar("T", bound=SQLModel)
PLAN_TABLES = (
    PlanInfo,
    Organisation,
    Priority,
    Action,
    FundingStream,
    FundingDecision,
    Meeting,
    Deadline,
    DeadlineOrganisation,
)


def row_counts(db: Database) -> dict[str, int]:
    """Rows in every table of the database, migrations' own table included."""
    with db.engine.connect() as connection:
        names = sa.inspect(connection).get_table_names()
        count = 'SELECT count(*) FROM "{}"'
        return {
            name: connection.execute(sa.text(count.format(name))).scalar_one() for name in names
        }


def rows(db: Database, model: type[T]) -> list[T]:
    with db.session() as session:
        return list(session.exec(select(model)))


def everything(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every plan record, ids and all, in a form that compares by value."""
    return {
        str(model.__tablename__): sorted((snapshot(r) for r in rows(db, model)), key=repr)
        for model in PLAN_TABLES
    }


def by_ref(db: Database) -> dict[str, Action]:
    return {action.ref: action for action in rows(db, Action)}


def edit(source: str, *changes: tuple[str, str]) -> str:
    """`source` with each `old` text, which must occur exactly once, replaced by `new`."""
    for old, new in changes:
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    return source


def write(tmp_path: Path, content: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def line_of(content: str, marker: str) -> int:
    [line] = [n for n, line in enumerate(content.splitlines(), 1) if marker in line]
    return line


# The sample plan ---------------------------------------------------------------------------


def test_example_holds_what_the_report_says(db: Database) -> None:
    result = db.call(import_plan_file, path=EXAMPLE, at=AT)

    info = rows(db, PlanInfo)[0]
    assert (info.starts_on, info.ends_on) == (date(2021, 4, 1), date(2022, 3, 31))
    assert info.board == "North Northants CSP Board"
    orgs = {org.name: org for org in rows(db, Organisation)}
    responsible = {name for name, org in orgs.items() if org.kind is OrgKind.RESPONSIBLE}
    assert len(responsible) == 6
    assert {
        "North Northamptonshire Council",
        "Northants Police",
        "Probation Service",
    } <= responsible
    assert orgs["East Midlands Ambulance Service"].kind is OrgKind.WIDER
    assert {p.code for p in rows(db, Priority)} == {"SOC", "DASV", "HATE", "ASB"}
    citadel = by_ref(db)["SOC-1"]
    assert "#Citadel" in citadel.title and "William Knibb" in citadel.title
    assert citadel.lead_organisation_id == orgs["Northants Police"].id
    assert {s.code for s in rows(db, FundingStream)} == {"MAPPA", "IPV", "ECINS", "DHR"}
    assert result.audit_entries == len(rows(db, AuditEntry))


def test_example_gives_a_demo_every_status(db: Database) -> None:
    db.call(import_plan_file, path=EXAMPLE, at=AT)

    actions = rows(db, Action)
    assert 12 <= len(actions) <= 18
    assert {action.status for action in actions} == set(Status)
    assert {action.status_at for action in actions} == {AT}


def test_example_funding_meetings_and_deadlines(db: Database) -> None:
    db.call(import_plan_file, path=EXAMPLE, at=AT)

    decisions = rows(db, FundingDecision)
    assert {d.financial_year for d in decisions} == {2021, 2022}
    assert {d.status for d in decisions} == set(FundingStatus)
    responsible = {o.id for o in rows(db, Organisation) if o.kind is OrgKind.RESPONSIBLE}
    assert {d.organisation_id for d in decisions} == responsible
    first = min(rows(db, Meeting), key=lambda meeting: meeting.starts_at)
    assert first.starts_at == datetime(2021, 5, 20, 9, 0, tzinfo=UTC)  # 10:00 BST
    deadline = next(d for d in rows(db, Deadline) if d.title.startswith("Partner contrib"))
    assert deadline.recurrence is Recurrence.YEARLY
    links = [link for link in rows(db, DeadlineOrganisation) if link.deadline_id == deadline.id]
    assert {link.organisation_id for link in links} == responsible


# Importing again ---------------------------------------------------------------------------


def test_importing_twice_changes_nothing(db: Database) -> None:
    db.call(import_plan_file, path=EXAMPLE, at=AT)
    before = everything(db)
    audit = len(rows(db, AuditEntry))

    again = db.call(import_plan_file, path=EXAMPLE, at=LATER)

    assert not again.changed
    assert all(t.created == t.updated == 0 for t in again.tallies().values())
    assert everything(db) == before
    assert len(rows(db, AuditEntry)) == audit
    assert "nothing to change (1 plan, 12 organisations, 4 priorities, 17 actions" in (
        again.summary()
    )


def test_edited_plan_updates_rows_in_place(db: Database, tmp_path: Path) -> None:
    db.call(import_plan_file, path=EXAMPLE, at=AT)
    ids = {ref: action.id for ref, action in by_ref(db).items()}
    content = edit(
        EXAMPLE.read_text(),
        ("Run the #Citadel pilot", "Run and evaluate the #Citadel pilot"),
        ("plan year\n        status: green", "plan year\n        status: red"),
        ("  - code: ASB\n", "      - ref: hate-3\n        title: A new action\n  - code: ASB\n"),
    )

    result = db.call(import_plan_file, path=write(tmp_path, content), at=LATER)

    assert result.actions == Tally(created=1, updated=1, unchanged=16)
    actions = by_ref(db)
    assert {ref: actions[ref].id for ref in ids} == ids
    citadel = actions["SOC-1"]
    assert citadel.title.startswith("Run and evaluate")
    # The file's status seeds new actions only: progress updates own it afterwards.
    assert (citadel.status, citadel.status_at) == (Status.GREEN, AT)
    assert (actions["HATE-3"].status, actions["HATE-3"].status_at) == (Status.NOT_STARTED, LATER)
    [entry] = [e for e in rows(db, AuditEntry) if e.change == "updated"]
    assert (entry.entity, entry.entity_id, entry.at) == ("action", citadel.id, LATER)
    assert entry.before is not None and entry.after is not None
    assert entry.before["title"].startswith("Run the")
    assert entry.after["title"].startswith("Run and evaluate")


def test_changed_contribution_is_redated(db: Database, tmp_path: Path) -> None:
    db.call(import_plan_file, path=EXAMPLE, at=AT)
    content = edit(
        EXAMPLE.read_text(),
        ('amount: "£32,000", status: agreed', 'amount: "£33,000", status: confirmed'),
    )

    result = db.call(import_plan_file, path=write(tmp_path, content), at=LATER)

    assert (result.contributions.updated, result.audit_entries) == (1, 1)
    changed = [d for d in rows(db, FundingDecision) if d.decided_at == LATER]
    assert [(d.amount_pence, d.status) for d in changed] == [(3_300_000, FundingStatus.CONFIRMED)]
    [entry] = [e for e in rows(db, AuditEntry) if e.at == LATER]
    assert entry.before is not None and entry.after is not None
    assert (entry.before["amount_pence"], entry.after["amount_pence"]) == (3_200_000, 3_300_000)


def test_meeting_and_deadline_edits(db: Database, tmp_path: Path) -> None:
    db.call(import_plan_file, path=EXAMPLE, at=AT)
    meeting_ids = {m.id for m in rows(db, Meeting)}
    budget = "    description: Council budget"
    content = edit(
        EXAMPLE.read_text(),
        ("Municipal Offices, Bowling Green Road, Kettering", "Corby Cube, Corby"),
        (f"[North Northamptonshire Council]\n{budget}", f"[NNC, PFCC]\n{budget}"),
    )

    result = db.call(import_plan_file, path=write(tmp_path, content), at=LATER)

    assert (result.meetings.updated, result.deadlines.updated) == (1, 1)
    assert {m.id for m in rows(db, Meeting)} == meeting_ids
    assert "Corby Cube, Corby" in {m.location for m in rows(db, Meeting)}
    created = [e for e in rows(db, AuditEntry) if e.at == LATER and e.change == "created"]
    assert [e.entity for e in created] == ["deadline_organisation"]


def test_deadline_organisations_follow_the_file(db: Database, tmp_path: Path) -> None:
    db.call(import_plan_file, path=MINIMAL, at=AT)
    content = edit(MINIMAL.read_text(), ("organisations: responsible", "organisations: [Police]"))
    path = write(tmp_path, content)

    result = db.call(import_plan_file, path=path, at=LATER)
    again = db.call(import_plan_file, path=path, at=LATER)

    police = next(o for o in rows(db, Organisation) if o.short_name == "Police")
    assert [link.organisation_id for link in rows(db, DeadlineOrganisation)] == [police.id]
    assert result.deadlines == Tally(updated=1)
    [removal] = [e for e in rows(db, AuditEntry) if e.change == "deleted"]
    assert removal.entity == "deadline_organisation" and removal.after is None
    assert not again.changed


def test_records_missing_from_the_file_are_left_alone(db: Database, tmp_path: Path) -> None:
    db.call(import_plan_file, path=MINIMAL, at=AT)
    content = edit(MINIMAL.read_text(), ("      - ref: asb-2\n", "      - ref: asb-3\n"))

    db.call(import_plan_file, path=write(tmp_path, content), at=LATER)

    assert sorted(by_ref(db)) == ["ASB-1", "ASB-2", "ASB-3"]


# Bad input: every problem is reported with file, line and path, and nothing is written ------

BAD_INPUTS = {
    "duplicate ref": (
        "ref: asb-2",
        "ref: Asb-1",
        "priorities[0].actions[1].ref: duplicate action ref ASB-1 (first at line 23)",
    ),
    "ref of another priority": (
        "ref: asb-2",
        "ref: SOC-2",
        "priorities[0].actions[1].ref: SOC-2 does not belong to priority ASB "
        "(expected ASB-<number>)",
    ),
    "unknown organisation": (
        "lead: Police",
        "lead: Polise",
        "priorities[0].actions[1].lead: unknown organisation: 'Polise' (did you mean 'Police'?)",
    ),
    "duplicate organisation": (
        "name: Testshire Food Bank",
        "name: testshire police",
        "organisations[2].name: 'testshire police' already names another organisation "
        "(first at line 12)",
    ),
    "duplicate contribution": (
        "        status: agreed\n",
        "        status: agreed\n      - {organisation: testshire council, year: 2021, amount: 1, "
        "status: proposed}\n",
        "funding_streams[0].contributions[1]: duplicate ECINS contribution from "
        "Testshire Council for 2021/22 (first at line 35)",
    ),
    "duplicate meeting": (
        "    agenda: [Welcome, Plan progress]\n",
        "    agenda: [Welcome, Plan progress]\n  - {title: CSP Board, at: 2021-05-20 09:00Z}\n",
        "meetings[1]: duplicate meeting 'CSP Board' at 2021-05-20 09:00 UTC (first at line 40)",
    ),
    "duplicate deadline": (
        "    organisations: responsible\n",
        "    organisations: responsible\n  - {title: Partner contributions confirmed, "
        "date: 2023-01-31}\n",
        "deadlines[1].title: duplicate deadline 'Partner contributions confirmed' "
        "(first at line 45)",
    ),
    "bad date": (
        "due: 2021-09-30",
        "due: tomorrow",
        "priorities[0].actions[0].due: not a date: 'tomorrow' (expected YYYY-MM-DD)",
    ),
    "impossible date": (
        "date: 2022-01-31",
        "date: 2022-02-30",
        "deadlines[0].date: not a date: '2022-02-30' (expected YYYY-MM-DD)",
    ),
    "time lost to the clocks going forward": (
        "at: 2021-05-20T10:00",
        "at: 2021-03-28T01:30",
        "meetings[0].at: 2021-03-28 01:30 does not exist in Europe/London (clocks go forward)",
    ),
    "wrong type": (
        "area: Testshire",
        "area: 2021",
        "plan.area: expected text, got 2021 (put it in quotes)",
    ),
    "list expected": (
        "agenda: [Welcome, Plan progress]",
        "agenda: {Welcome: 1}",
        "meetings[0].agenda: expected a list, got {'Welcome': 1}",
    ),
    "unknown key": (
        "owner: ASB team leader",
        "ownr: ASB team leader",
        "priorities[0].actions[0].ownr: unknown key 'ownr' (did you mean 'owner'?)",
    ),
    "duplicate key": (
        "    location: Town Hall",
        "    location: Town Hall\n    location: Guildhall",
        "meetings[0].location: duplicate key 'location'",
    ),
    "YAML syntax error": (
        "    location: Town Hall",
        "\tlocation: Town Hall",
        "YAML syntax error: found a tab character that violates indentation"
        " (while scanning a plain scalar on line 41)",
    ),
    "bad money": (
        'amount: "£3,000"',
        "amount: £3,000.005",
        "funding_streams[0].contributions[0].amount: not an amount of money: '£3,000.005' "
        "(e.g. £12,500 or 12500.50)",
    ),
    "bad year": (
        "year: 2021/22",
        "year: 2021/23",
        "funding_streams[0].contributions[0].year: not a financial year: '2021/23' "
        "(the second year must follow the first, e.g. 2021/22)",
    ),
    "bad status": (
        "status: amber",
        "status: purple",
        "priorities[0].actions[0].status: not a status: 'purple' (use not_started "
        "(not started), green (on track), amber (at risk), red (off track), complete (done))",
    ),
    "bad funding status": (
        "status: agreed",
        "status: maybe",
        "funding_streams[0].contributions[0].status: expected one of proposed, agreed, "
        "confirmed, declined, got 'maybe'",
    ),
    "unquoted hash": (
        "title: Anti-social behaviour",
        "title: #Citadel",
        "priorities[0].title: expected text, got nothing "
        "(if the text starts with #, put it in quotes: # starts a comment)",
    ),
}


@pytest.mark.parametrize(("old", "new", "reason"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_rejected_and_nothing_written(
    db: Database, tmp_path: Path, old: str, new: str, reason: str
) -> None:
    db.call(import_plan_file, path=MINIMAL, at=AT)
    counts = row_counts(db)
    content = edit(MINIMAL.read_text(), (old, new))
    path = write(tmp_path, content, "bad.yaml")

    with pytest.raises(PlanError) as caught:
        db.call(import_plan_file, path=path, at=LATER)

    line = line_of(content, new.splitlines()[-1])
    assert caught.value.errors == [f"{path}:{line}: {reason}"]
    assert row_counts(db) == counts


def test_missing_key_points_at_its_entry(tmp_path: Path) -> None:
    content = edit(MINIMAL.read_text(), ("    strategy: Testshire ASB strategy\n", ""))

    with pytest.raises(PlanError) as caught:
        load_plan_file(write(tmp_path, content))

    line = line_of(content, "- code: ASB")
    assert caught.value.errors == [
        f"{tmp_path / 'plan.yaml'}:{line}: priorities[0].strategy: missing (this key is required)"
    ]


def test_all_problems_are_reported_in_line_order() -> None:
    content = edit(
        MINIMAL.read_text(),
        ("status: amber", "status: purple"),
        ("kind: wider", "kind: partner"),
        ("year: 2021/22", "year: soon"),
    )

    with pytest.raises(PlanError) as caught:
        parse_plan(content, source="plan.yaml")

    lines = [int(error.split(":")[1]) for error in caught.value.errors]
    assert lines == [
        line_of(content, "partner"),
        line_of(content, "purple"),
        line_of(content, "soon"),
    ]
    assert str(caught.value) == "\n".join(caught.value.errors)


def test_a_long_list_of_problems_is_cut_short() -> None:
    bad_actions = "".join(f"      - {{ref: ASB-{n}, title: T, due: never}}\n" for n in range(3, 28))
    content = edit(MINIMAL.read_text(), ("funding_streams:\n", bad_actions + "funding_streams:\n"))

    with pytest.raises(PlanError) as caught:
        parse_plan(content, source="plan.yaml")

    assert len(caught.value.errors) == 21
    assert caught.value.errors[-1] == "plan.yaml: ... and 5 more problems"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "plan.yaml:1: the file is empty (see docs/plan-format.md)"),
        ("- a\n- b\n", "plan.yaml:1: expected keys and values, got ['a', 'b']"),
        ("plan: {}\n", "plan.yaml:1: organisations: missing (this key is required)"),
    ],
)
def test_files_that_are_not_plans(content: str, reason: str) -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan(content, source="plan.yaml")

    assert reason in caught.value.errors


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"

    with pytest.raises(PlanError, match=r"nowhere\.yaml: cannot read the file: No such file"):
        load_plan_file(missing)


def test_failure_midway_through_writing_leaves_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0

    def failing_record_change(session: Session, **kwargs: Any) -> AuditEntry | None:
        nonlocal calls
        calls += 1
        if calls == 40:
            raise RuntimeError("disk full")
        return record_change(session, **kwargs)

    monkeypatch.setattr(csp_bot.models.plan_import, "record_change", failing_record_change)

    with pytest.raises(RuntimeError, match="disk full"):
        db.call(import_plan_file, path=EXAMPLE, at=AT)

    assert calls == 40
    assert {n for t, n in row_counts(db).items() if t != "alembic_version"} == {0}


def test_import_needs_an_aware_time(db: Database) -> None:
    plan = load_plan_file(MINIMAL)

    with pytest.raises(ValueError, match="aware"):
        db.call(import_plan, plan=plan, at=datetime(2021, 6, 10, 9, 0))


def test_summary_says_what_happened(db: Database, tmp_path: Path) -> None:
    first = db.call(import_plan_file, path=MINIMAL, at=AT)
    content = edit(MINIMAL.read_text(), ("title: Launch a reporting app", "title: Launch an app"))
    second = db.call(import_plan_file, path=write(tmp_path, content), at=LATER)

    assert first.summary() == (
        "Imported 'Test CSP Plan': 1 plan (created); 3 organisations (created); "
        "1 priority (created); 2 actions (created); 1 funding stream (created); "
        "1 contribution (created); 1 meeting (created); 1 deadline (created). "
        "13 audit entries written."
    )
    assert "2 actions (1 updated, 1 unchanged)" in second.summary()
    assert second.summary().endswith("1 audit entry written.")


# The parsers others reuse ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("green", Status.GREEN),
        ("On Track", Status.GREEN),
        ("AMBER", Status.AMBER),
        ("at risk", Status.AMBER),
        ("red", Status.RED),
        ("off  track", Status.RED),
        ("not_started", Status.NOT_STARTED),
        ("Not started", Status.NOT_STARTED),
        ("not-started", Status.NOT_STARTED),
        ("complete", Status.COMPLETE),
        ("completed", Status.COMPLETE),
        (" done ", Status.COMPLETE),
    ],
)
def test_parse_status(word: str, status: Status) -> None:
    assert parse_status(word) is status


@pytest.mark.parametrize("word", ["", "purple", "greenish", "on", "finished"])
def test_parse_status_lists_the_valid_words(word: str) -> None:
    with pytest.raises(ValueError, match=r"use not_started .* red \(off track\), complete"):
        parse_status(word)


@pytest.mark.parametrize(
    ("text", "pence"),
    [
        ("£12,500", 1_250_000),
        ("£12,500.00", 1_250_000),
        ("12500.50", 1_250_050),
        ("12,500.5", 1_250_050),
        ("£ 1,234,567.89", 123_456_789),
        ("0", 0),
        ("£0.05", 5),
        (" 750 ", 75_000),
    ],
)
def test_parse_money(text: str, pence: int) -> None:
    assert parse_money(text) == pence


@pytest.mark.parametrize(
    "text", ["", "£", "lots", "-£5", "12,50", "1,2345", "12.505", "£12k", "12.", "1e3", "$10"]
)
def test_parse_money_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not an amount of money"):
        parse_money(text)


@pytest.mark.parametrize(
    ("pence", "text"),
    [(1_250_000, "£12,500.00"), (5, "£0.05"), (0, "£0.00"), (-150, "-£1.50")],
)
def test_format_money(pence: int, text: str) -> None:
    assert format_money(pence) == text
    if pence >= 0:
        assert parse_money(text) == pence


@pytest.mark.parametrize(
    "text", ["2021/22", "2021-22", "2021/2022", "2021-2022", "2021", " 2021 / 22 ", "2021\u201322"]
)
def test_parse_financial_year(text: str) -> None:
    assert parse_financial_year(text) == 2021


@pytest.mark.parametrize("text", ["2021/23", "2021/2023", "2020/22", "21/22", "FY21", "", "2021/"])
def test_parse_financial_year_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a financial year"):
        parse_financial_year(text)


def test_financial_year_across_a_century() -> None:
    assert parse_financial_year("2099/00") == 2099
    assert format_financial_year(2099) == "2099/00"
    assert format_financial_year(2021) == "2021/22"
    assert format_financial_year(2009) == "2009/10"


def test_parse_date() -> None:
    assert parse_date("2022-03-31") == date(2022, 3, 31)
    for text in ("31/03/2022", "2022-3-31", "20220331", "2022-02-29", "tomorrow"):
        with pytest.raises(ValueError, match="not a date"):
            parse_date(text)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2021-04-22T14:00", datetime(2021, 4, 22, 13, 0, tzinfo=UTC)),
        ("2021-12-02 14:00", datetime(2021, 12, 2, 14, 0, tzinfo=UTC)),
        ("2021-04-22T14:00:30", datetime(2021, 4, 22, 13, 0, 30, tzinfo=UTC)),
        ("2021-04-22T14:00Z", datetime(2021, 4, 22, 14, 0, tzinfo=UTC)),
        ("2021-04-22T14:00+02:00", datetime(2021, 4, 22, 12, 0, tzinfo=UTC)),
        ("2021-10-31T01:30", datetime(2021, 10, 31, 0, 30, tzinfo=UTC)),  # the first 01:30
    ],
)
def test_parse_datetime(text: str, utc: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed == utc and parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["2021-04-22", "14:00", "2021-04-22T25:00", "2021-03-28T01:30"])
def test_parse_datetime_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a date and time|does not exist"):
        parse_datetime(text)
