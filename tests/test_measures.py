"""Measures end to end: the plan's measures imported, figures sent every way they can be
(one line, guided, a spreadsheet), replaced, undone and refused, and how a measure is shown:
RAG at the tolerance's edges, trends, the chart, /priority, /status, /summary, the paper."""

from __future__ import annotations

import io
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import Session, col, select

from csp_bot.bot.cli import main
from csp_bot.bot.emulator import SentMessage
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from csp_bot.models.plan_checks import PlanError, parse_plan
from csp_bot.models.plan_import import import_plan_file
from csp_bot.models.tables import AuditEntry, Measure, MeasureFigure, MeasureTarget
from tests.conftest import EXAMPLE_PLAN
from tests.harness import PEOPLE, Harness

POLICE = PEOPLE["police"].user
CHAIR = PEOPLE["chair"].user
BOARD = PEOPLE["board"].user
OBSERVER = PEOPLE["observer"].user
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# From 10 June 2021 to Fri 8 Oct 2021, 10:00 BST: the second quarter of 2021/22 has ended.
TO_OCTOBER = 120


def figures(db: Database) -> list[tuple[str, str, float, str, bool]]:
    """Every figure row: measure, period, value, note, and whether it stands."""

    def read(session: Session) -> list[tuple[str, str, float, str, bool]]:
        rows = session.exec(
            select(MeasureFigure, Measure.code)
            .join(Measure, col(Measure.id) == MeasureFigure.measure_id)
            .order_by(col(MeasureFigure.id))
        ).all()
        return [
            (
                code,
                figure.period,
                figure.value,
                figure.note,
                figure.withdrawn_at is None and figure.superseded_at is None,
            )
            for figure, code in rows
        ]

    return db.call(read)


def audited(db: Database, entity: str) -> list[str]:
    def read(session: Session) -> list[str]:
        entries = session.exec(select(AuditEntry).where(AuditEntry.entity == entity)).all()
        return [entry.change for entry in entries]

    return db.call(read)


def last_message(bot: Harness, user: object) -> SentMessage:
    return bot.emulator.messages(user.id)[-1]  # type: ignore[attr-defined]


def tap(bot: Harness, message: SentMessage, label: str) -> str:
    return dict(bot.emulator.buttons(message))[label]


# --- 1. the plan file holds measures --------------------------------------------------------


def test_the_sample_plans_measures_are_imported_with_their_targets(
    db: Database, people: dict[str, MemberView]
) -> None:
    def read(session: Session) -> dict[str, tuple[object, ...]]:
        measures = session.exec(select(Measure).order_by(col(Measure.id))).all()
        targets = session.exec(select(MeasureTarget)).all()
        by_measure: dict[int, list[tuple[str, float]]] = {}
        for target in targets:
            by_measure.setdefault(target.measure_id, []).append((target.period, target.value))
        return {
            m.code: (
                m.unit,
                m.frequency,
                m.lower_is_better,
                m.tolerance,
                m.baseline_period,
                m.baseline_value,
                sorted(by_measure.get(m.id or 0, [])),
            )
            for m in measures
        }

    measures = db.call(read)
    assert list(measures) == ["SOC-M1", "SOC-M2", "DASV-M1", "HATE-M1", "ASB-M1", "ASB-M2"]
    assert measures["ASB-M1"] == (
        "count",
        "quarterly",
        True,
        20.0,
        "2020/21-Q4",
        450.0,
        [
            ("2021/22-Q1", 440.0),
            ("2021/22-Q2", 420.0),
            ("2021/22-Q3", 410.0),
            ("2021/22-Q4", 400.0),
        ],
    )
    assert measures["ASB-M2"][:6] == ("%", "monthly", False, 5.0, "2021-03", 70.0)


def test_importing_the_plan_again_leaves_the_measures_as_they_were(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    before = len(audited(db, "measure")), len(audited(db, "measure_target"))
    clock.advance(days=1)
    result = db.call(import_plan_file, path=EXAMPLE_PLAN, at=clock())
    assert not result.changed
    assert result.measures.unchanged == 6 and result.targets.unchanged == 24
    assert (len(audited(db, "measure")), len(audited(db, "measure_target"))) == before


def test_an_edited_trajectory_replaces_the_stored_targets_audited(
    db: Database, clock: FakeClock, people: dict[str, MemberView], tmp_path: Path
) -> None:
    text = EXAMPLE_PLAN.read_text(encoding="utf-8")
    edited = text.replace("          - {period: 2021/22-Q2, value: 420}\n", "").replace(
        "{period: 2021/22-Q3, value: 410}", "{period: 2021/22-Q3, value: 405}"
    )
    path = tmp_path / "plan.yaml"
    path.write_text(edited, encoding="utf-8")
    result = db.call(import_plan_file, path=path, at=clock())
    assert result.measures.updated == 1 and result.targets.updated == 1
    assert sorted(audited(db, "measure_target")).count("deleted") == 1

    def targets(session: Session) -> list[tuple[str, float]]:
        asb = session.exec(select(Measure).where(Measure.code == "ASB-M1")).one()
        rows = session.exec(select(MeasureTarget).where(MeasureTarget.measure_id == asb.id))
        return sorted((row.period, row.value) for row in rows)

    assert db.call(targets) == [("2021/22-Q1", 440.0), ("2021/22-Q3", 405.0), ("2021/22-Q4", 400.0)]


MINIMAL_WITH_MEASURE = """\
plan:
  title: Test plan
  area: Testshire
  board: Test board
  starts_on: 2021-04-01
  ends_on: 2022-03-31
organisations:
  - name: Police
    kind: responsible
priorities:
  - code: ASB
    title: Anti-social behaviour
    strategy: A strategy
    lead: Police
    measures:
      - code: {code}
        title: ASB incidents
        unit: {unit}
        frequency: quarterly
        supplier: {supplier}
        better: lower
        tolerance: 20
        baseline: {{period: 2021/22-Q1, value: 450}}
        targets:
          - {{period: {target}, value: {value}}}
"""
GOOD = {
    "code": "ASB-M1",
    "unit": "count",
    "supplier": "Police",
    "target": "2021/22-Q2",
    "value": "420",
}


def test_a_good_measure_parses() -> None:
    plan = parse_plan(MINIMAL_WITH_MEASURE.format(**GOOD))
    assert plan.priorities[0].measures[0].targets[0].period == "2021/22-Q2"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"target": "2020/21-Q4"},
            "<plan>:25: priorities[0].measures[0].targets[0].period: the target for "
            "2020/21-Q4 is not after the baseline (2021/22-Q1)",
        ),
        (
            {"target": "2021-08"},
            "<plan>:25: priorities[0].measures[0].targets[0].period: 2021-08 is not a period "
            "of a quarterly measure (a quarter such as 2021/22-Q2)",
        ),
        (
            {"target": "2021/23-Q2"},
            "<plan>:25: priorities[0].measures[0].targets[0].period: not a period: "
            "'2021/23-Q2' (a month such as 2021-07, or a quarter such as 2021/22-Q2)",
        ),
        (
            {"value": "412.5"},
            "<plan>:25: priorities[0].measures[0].targets[0].value: '412.5' is not a whole "
            "number, e.g. 412: a count has no decimals",
        ),
        (
            {"value": "lots"},
            "<plan>:25: priorities[0].measures[0].targets[0].value: not a number: 'lots'",
        ),
        (
            {"supplier": "Polise"},
            "<plan>:20: priorities[0].measures[0].supplier: unknown organisation: 'Polise' "
            "(did you mean 'Police'?)",
        ),
        (
            {"code": "SOC-M1"},
            "<plan>:16: priorities[0].measures[0].code: SOC-M1 does not belong to priority "
            "ASB (expected ASB-M<number>)",
        ),
        (
            {"unit": "miles"},
            "<plan>:18: priorities[0].measures[0].unit: expected one of count, %, £, days, "
            "got 'miles'",
        ),
    ],
)
def test_a_bad_measure_is_refused_with_its_line(change: dict[str, str], problem: str) -> None:
    with pytest.raises(PlanError) as refused:
        parse_plan(MINIMAL_WITH_MEASURE.format(**(GOOD | change)))
    assert refused.value.errors == [problem]


# --- 2. partners send figures ------------------------------------------------------------------


async def test_one_line_figure_is_stored_and_confirmed(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    clock.advance(days=TO_OCTOBER)
    reply = await bot.reply(POLICE, "/figure asb-m1 2021-Q2 412 summer events drew more calls")
    assert reply == (
        "📈 Stored: <b>ASB-M1</b> 2021/22-Q2: <b>412</b>\n"
        "🟢 on target\n\n"
        "/measure ASB-M1 shows the trend. Send /undo within 15 minutes to take it back."
    )
    assert figures(db) == [("ASB-M1", "2021/22-Q2", 412.0, "summer events drew more calls", True)]
    assert audited(db, "measure_figure") == ["created"]


async def test_guided_figure_with_buttons_and_typing(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    clock.advance(days=TO_OCTOBER)
    [ask] = await bot.send(POLICE, "/figure")
    assert ask.plain_text.startswith("Send a figure (1 of 4)\n\nWhich measure?")
    # Only the measures the police supply are offered.
    assert [label for label, _ in bot.emulator.buttons(ask)] == [
        "SOC-M1",
        "DASV-M1",
        "HATE-M1",
        "ASB-M1",
        "Cancel",
    ]
    await bot.press(POLICE, ask, tap(bot, ask, "HATE-M1"))
    period = last_message(bot, POLICE)
    assert [label for label, _ in bot.emulator.buttons(period)] == [
        "2021/22-Q2",
        "2021/22-Q1",
        "2020/21-Q4",
        "Cancel",
    ]
    await bot.press(POLICE, period, tap(bot, period, "2021/22-Q2"))
    assert "The figure for HATE-M1, 2021/22-Q2? Type it in a whole number" in (
        last_message(bot, POLICE).plain_text
    )
    await bot.send(POLICE, "ninety")
    assert last_message(bot, POLICE).plain_text == (
        "⚠️ HATE-M1 is measured in count: 'ninety' is not a whole number, e.g. 412.\n"
        "Please type it again, or send /cancel."
    )
    await bot.send(POLICE, "97")
    note = last_message(bot, POLICE)
    await bot.press(POLICE, note, tap(bot, note, "Skip"))
    summary = last_message(bot, POLICE)
    assert summary.plain_text == (
        "Store this figure?\n\nHATE-M1 Hate crimes reported\n2021/22-Q2: 97"
    )
    assert figures(db) == []
    [stored] = await bot.press(POLICE, summary, tap(bot, summary, "💾 Save"))
    assert stored.plain_text.startswith(
        "📈 Stored: HATE-M1 2021/22-Q2: 97\n🟠 off target, within the tolerance of 5"
    )
    assert figures(db) == [("HATE-M1", "2021/22-Q2", 97.0, "", True)]


async def test_a_figure_typed_in_steps_asks_for_what_is_missing(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    clock.advance(days=TO_OCTOBER)
    [ask] = await bot.send(CHAIR, "/figure ASB-M2 2021-09")
    assert "The figure for ASB-M2, 2021-09? Type it in per cent" in ask.plain_text
    await bot.send(CHAIR, "81.5%")
    await bot.send(CHAIR, "A new case review from August")
    summary = last_message(bot, CHAIR)
    assert "2021-09: 81.5%\nNote: A new case review from August" in summary.plain_text
    await bot.press(CHAIR, summary, tap(bot, summary, "💾 Save"))
    assert figures(db) == [("ASB-M2", "2021-09", 81.5, "A new case review from August", True)]


async def test_a_replacement_shows_what_it_replaces_is_audited_and_undone(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    clock.advance(days=TO_OCTOBER)
    await bot.reply(POLICE, "/figure ASB-M1 2021-Q2 412")
    clock.advance(minutes=5)
    replaced = await bot.reply(POLICE, "/figure ASB-M1 2021-Q2 445 corrected by the data team")
    assert replaced.startswith(
        "📈 Stored: <b>ASB-M1</b> 2021/22-Q2: <b>445</b>\n"
        "It replaces 412, sent Fri 8 Oct 2021, 10:00; the audit trail keeps both.\n"
        "🔴 off target, beyond the tolerance of 20"
    )
    assert figures(db) == [
        ("ASB-M1", "2021/22-Q2", 412.0, "", False),
        ("ASB-M1", "2021/22-Q2", 445.0, "corrected by the data team", True),
    ]
    assert audited(db, "measure_figure") == ["created", "updated", "created"]
    undone = await bot.reply(POLICE, "/undo")
    assert undone == (
        "Taken back: your figure for <b>ASB-M1</b> 2021/22-Q2 (445, Fri 8 Oct 2021, 10:05).\n"
        "2021/22-Q2 is 412 again, as sent Fri 8 Oct 2021, 10:00. The audit trail keeps both."
    )
    assert [row[-1] for row in figures(db)] == [True, False]
    assert audited(db, "measure_figure") == ["created", "updated", "created", "updated", "updated"]


async def test_undo_takes_back_the_latest_of_an_update_and_a_figure(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    clock.advance(days=TO_OCTOBER)
    await bot.reply(POLICE, "/figure SOC-M1 2021-Q2 59")
    clock.advance(minutes=1)
    await bot.reply(POLICE, "/update SOC-1 green on plan")
    assert (await bot.reply(POLICE, "/undo")).startswith("Taken back: your update on <b>SOC-1</b>")
    assert (await bot.reply(POLICE, "/undo")).startswith(
        "Taken back: your figure for <b>SOC-M1</b>"
    )
    assert figures(db) == [("SOC-M1", "2021/22-Q2", 59.0, "", False)]
    clock.advance(minutes=20)
    await bot.reply(POLICE, "/figure SOC-M1 2021-Q1 61")
    clock.advance(minutes=16)
    assert await bot.reply(POLICE, "/undo") == (
        "You have no update from the last 15 minutes to undo."
    )


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("/figure ASB-M1 2021-Q2 4.5", "ASB-M1 is measured in count: '4.5' is not a whole number"),
        ("/figure ASB-M1 2021-Q2 -3", "ASB-M1 is measured in count: '-3' is not a whole number"),
        ("/figure ASB-M1 2021-Q2 £400", "ASB-M1 is measured in count: '£400' is not a whole"),
        (
            "/figure ASB-M1 2021-Q3 400",
            "2021/22-Q3 has not ended yet (it ends on 31 Dec 2021): figures are sent for "
            "periods that are over.",
        ),
        ("/figure ASB-M1 2021-Q5 400", "Not a period: '2021-Q5' (a month such as 2021-07"),
        ("/figure ASB-M1 2021-09 400", "ASB-M1 is reported quarterly: give a period such as"),
        ("/figure ASB-M1 1999-Q2 400", "1999-Q2 is outside the years 2000 to 2100"),
        (
            "/figure ASB-M2 2021-09 80",
            "ASB-M2 is supplied by North Northamptonshire Council; partners send figures "
            "only for their own organisation's measures (Northants Police).",
        ),
        (
            "/figure ASB-M9 2021-Q2 400",
            "There is no measure ASB-M9. Did you mean ASB-M2, ASB-M1, DASV-M1?",
        ),
    ],
)
async def test_bad_figures_are_refused_and_nothing_is_stored(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    people: dict[str, MemberView],
    typed: str,
    problem: str,
) -> None:
    clock.advance(days=TO_OCTOBER)
    reply = await bot.reply(POLICE, typed)
    assert problem in reply.replace("&#39;", "'")
    assert figures(db) == []


async def test_a_percentage_over_100_is_refused(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    clock.advance(days=TO_OCTOBER)
    reply = await bot.reply(CHAIR, "/figure ASB-M2 2021-09 101")
    assert "ASB-M2 is measured in %: '101' is over 100%." in reply.replace("&#39;", "'")
    assert figures(db) == []


async def test_board_members_and_observers_may_not_send_figures(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    for user in (BOARD, OBSERVER):
        assert "isn't available to" in await bot.reply(user, "/figure ASB-M1 2021-Q2 400")
    assert figures(db) == []


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_figures_import_loads_a_spreadsheet(
    cli_at: Path,
    db: Database,
    clock: FakeClock,
    people: dict[str, MemberView],
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock.advance(days=TO_OCTOBER)
    sheet = write_csv(
        cli_at / "police.csv",
        "Measure,Period,Value,Note\n"
        "asb-m1,2021-Q1,430,\n"
        "ASB-M1,2021/22-Q2,412,includes the summer\n"
        "HATE-M1,2021-Q2,99,\n\n",
    )
    assert main(["figures", "import", str(sheet)]) == 0
    assert capsys.readouterr().out == ("Imported 3 figures. Each change is in the audit trail.\n")
    assert figures(db) == [
        ("ASB-M1", "2021/22-Q1", 430.0, "", True),
        ("ASB-M1", "2021/22-Q2", 412.0, "includes the summer", True),
        ("HATE-M1", "2021/22-Q2", 99.0, "", True),
    ]
    again = write_csv(cli_at / "again.csv", "measure,period,value\nASB-M1,2021-Q2,415\n")
    assert main(["figures", "import", str(again)]) == 0
    assert capsys.readouterr().out == (
        "Imported 1 figures, 1 of them replacing earlier figures. Each change is in the audit "
        "trail.\n"
    )


def test_figures_import_is_all_or_nothing_with_file_and_line(
    cli_at: Path,
    db: Database,
    clock: FakeClock,
    people: dict[str, MemberView],
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock.advance(days=TO_OCTOBER)
    sheet = write_csv(
        cli_at / "bad.csv",
        "measure,period,value,note\n"
        "ASB-M1,2021-Q1,430,\n"
        "ASB-M1,2021-Q3,400,\n"
        "ASB-X1,2021-Q1,3,\n"
        "ASB-M1,2021-Q1,4.5,\n"
        "ASB-M1,2021-Q1,431,\n",
    )
    assert main(["figures", "import", str(sheet)]) == 2
    assert capsys.readouterr().err == (
        "csp-bot: the figures were rejected; nothing was stored:\n"
        f"{sheet}:3: 2021/22-Q3 has not ended yet (it ends on 31 Dec 2021): figures are sent "
        "for periods that are over.\n"
        f"{sheet}:4: unknown measure 'ASB-X1' (did you mean ASB-M1?)\n"
        f"{sheet}:5: ASB-M1 is measured in count: '4.5' is not a whole number, e.g. 412: a "
        "count has no decimals.\n"
        f"{sheet}:6: a second figure for ASB-M1 2021/22-Q1 (line 2)\n"
    )
    assert figures(db) == []
    no_header = write_csv(cli_at / "plain.csv", "ASB-M1,2021-Q1,430\n")
    assert main(["figures", "import", str(no_header)]) == 2
    assert (
        f"{no_header}:1: the first row must name the columns measure, period, value, note "
        "(missing: measure, period, value)"
    ) in capsys.readouterr().err
    assert figures(db) == []


# --- 3. how a measure is doing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value", "rag"),
    [
        # ASB-M1: lower is better, 2021/22-Q2 target 420, tolerance 20.
        ("ASB-M1", 419, "🟢 on target"),
        ("ASB-M1", 420, "🟢 on target"),
        ("ASB-M1", 421, "🟠 off target, within the tolerance of 20"),
        ("ASB-M1", 440, "🟠 off target, within the tolerance of 20"),
        ("ASB-M1", 441, "🔴 off target, beyond the tolerance of 20"),
        # HATE-M1: higher is better, 2021/22-Q2 target 101, tolerance 5.
        ("HATE-M1", 102, "🟢 on target"),
        ("HATE-M1", 101, "🟢 on target"),
        ("HATE-M1", 100, "🟠 off target, within the tolerance of 5"),
        ("HATE-M1", 96, "🟠 off target, within the tolerance of 5"),
        ("HATE-M1", 95, "🔴 off target, beyond the tolerance of 5"),
    ],
)
async def test_rag_at_the_tolerance_edges_in_both_directions(
    bot: Harness,
    clock: FakeClock,
    people: dict[str, MemberView],
    code: str,
    value: int,
    rag: str,
) -> None:
    clock.advance(days=TO_OCTOBER)
    assert f"\n{rag}\n" in await bot.reply(POLICE, f"/figure {code} 2021-Q2 {value}")
    [shown, _chart] = await bot.send(BOARD, f"/measure {code}")
    assert f"\n{rag}\n" in shown.plain_text


async def test_a_target_holds_until_the_next_one(
    bot: Harness, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    """ASB-M2's targets are for June, September, ...: August is judged by June's 75%."""
    clock.advance(days=TO_OCTOBER)
    await bot.reply(CHAIR, "/figure ASB-M2 2021-08 71")
    [shown, _chart] = await bot.send(BOARD, "/measure ASB-M2")
    assert "Latest: 2021-08 71%, target 75%\n🟠 off target, within the tolerance of 5%" in (
        shown.plain_text
    )


async def test_measure_shows_trends_against_the_previous_period_and_last_year(
    bot: Harness, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    clock.advance(days=TO_OCTOBER)
    for line in (
        "/figure ASB-M1 2020-Q2 470",
        "/figure ASB-M1 2021-Q1 405",
        "/figure ASB-M1 2021-Q2 412 more calls after the summer",
    ):
        await bot.reply(POLICE, line)
    [shown, chart] = await bot.send(BOARD, "/measure asb-m1")
    assert shown.plain_text == (
        "ASB-M1: ASB incidents reported to police\n"
        "Quarterly, a count, lower is better; from Northants Police.\n\n"
        "Latest: 2021/22-Q2 412, target 420\n"
        "🟢 on target\n"
        "↗️ worse than previous period (2021/22-Q1: 405, +7)\n"
        "↘️ better than same period last year (2020/21-Q2: 470, −58)\n"
        "Note: more calls after the summer\n"
        "Fri 8 Oct 2021, 10:00, Dan\n\n"
        "Baseline 2020/21-Q4: 450. Tolerance 20."
    )
    assert chart.kind == "photo" and chart.filename == "ASB-M1.png"
    assert chart.text == (
        "Trend chart of ASB-M1, ASB incidents reported to police; 3 figures from 2020/21-Q2 "
        "(470) to 2021/22-Q2 (412); target for 2021/22-Q2 420; baseline 450 (2020/21-Q4); "
        "lower is better."
    )
    assert chart.content is not None and chart.content.startswith(PNG_MAGIC)
    picture = Image.open(io.BytesIO(chart.content))
    assert picture.format == "PNG" and picture.width > picture.height


async def test_a_measure_without_figures_has_no_chart(
    bot: Harness, people: dict[str, MemberView]
) -> None:
    [shown] = await bot.send(OBSERVER, "/measure DASV-M1")
    assert shown.plain_text == (
        "DASV-M1: Domestic abuse incidents reported to police\n"
        "Quarterly, a count, higher is better; from Northants Police.\n\n"
        "No figure yet.\n\n"
        "Baseline 2020/21-Q4: 1,450. Tolerance 40."
    )
    assert await bot.reply(OBSERVER, "/measure") == (
        "Use it like this: <code>/measure CODE</code>, for example <code>/measure ASB-M1</code>."
    )
    assert await bot.reply(OBSERVER, "/measure ASB-M3") == (
        "There is no measure ASB-M3. Did you mean ASB-M2, ASB-M1, DASV-M1?"
    )


async def test_priority_status_and_summary_include_the_measures(
    bot: Harness, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    clock.advance(days=TO_OCTOBER)
    await bot.reply(POLICE, "/figure ASB-M1 2021-Q2 445")
    await bot.reply(POLICE, "/figure HATE-M1 2021-Q2 98")
    priority = (await bot.send(BOARD, "/priority ASB"))[-1].plain_text
    assert priority.endswith(
        "Measures\n"
        "📏 ASB-M1 ASB incidents reported to police: 🔴 2021/22-Q2: 445 against 420\n"
        "📏 ASB-M2 ASB cases resolved within 28 days: ⚪ no figure yet\n"
        "/measure CODE shows one with its trend and chart."
    )
    status = (await bot.send(BOARD, "/status"))[-1].plain_text
    asb = status[status.index("ASB Anti-social") :]
    assert "📏 measures: 🔴 1 · 🟠 0 · 🟢 0 · ⚪ 1 without a rated figure" in asb
    hate = status[status.index("HATE Hate") : status.index("ASB Anti-social")]
    assert "📏 measures: 🔴 0 · 🟠 1 · 🟢 0 · ⚪ 0 without a rated figure" in hate
    [summary] = await bot.send(CHAIR, "/summary")
    assert summary.plain_text.endswith(
        "Measures off target: 2\n"
        "📏 ASB-M1 ASB incidents reported to police: 🔴 2021/22-Q2: 445 against 420\n"
        "📏 HATE-M1 Hate crimes reported: 🟠 2021/22-Q2: 98 against 101"
    )
    await bot.press(CHAIR, summary, tap(bot, summary, "🔴 Exceptions"))
    exceptions = bot.emulator.messages(CHAIR.id)[-1]
    assert exceptions.plain_text.startswith("Exceptions")
    assert exceptions.plain_text.endswith(
        "Measures off target: 2\n"
        "📏 ASB-M1 ASB incidents reported to police: 🔴 2021/22-Q2: 445 against 420\n"
        "📏 HATE-M1 Hate crimes reported: 🟠 2021/22-Q2: 98 against 101"
    )


class Paper(HTMLParser):
    """A board paper's performance table and its images with their alt texts."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.images: list[tuple[str, str]] = []
        self._in_table = False
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self._in_table = found.get("id") == "performance-table"
        elif tag == "tr" and self._in_table:
            self.rows.append([])
        elif tag in ("td", "th") and self._in_table:
            self._cell = []
        elif tag == "img":
            self.images.append((str(found.get("src")), str(found.get("alt"))))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._in_table and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._in_table = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


async def test_the_paper_has_a_performance_section_and_the_figures_file(
    bot: Harness, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    clock.advance(days=TO_OCTOBER)
    for line in (
        "/figure ASB-M1 2020-Q2 470",
        "/figure ASB-M1 2021-Q1 430",
        "/figure ASB-M1 2021-Q2 445 =SUM(A1)",
        "/figure HATE-M1 2021-Q2 102",
    ):
        await bot.reply(POLICE, line)
    sent = await bot.send(CHAIR, "/report")
    files = {message.filename: message for message in sent}
    assert list(files) == [
        "board-paper-2021-10-08.html",
        "actions-2021-10-08.csv",
        "rag-chart-2021-10-08.png",
        "figures-2021-10-08.csv",
    ]
    paper = files["board-paper-2021-10-08.html"].content
    assert paper is not None
    parsed = Paper(paper.decode())
    assert "<h2>6. Performance</h2>" in paper.decode()
    assert parsed.rows == [
        [
            "Measure",
            "Period",
            "Figure",
            "Target",
            "RAG",
            "Previous period",
            "A year before",
            "Sent",
        ],
        ["SOC-M1 Knife crime offences recorded by police", "no figure yet"],
        ["SOC-M2 Referrals into treatment through #Citadel", "no figure yet"],
        ["DASV-M1 Domestic abuse incidents reported to police", "no figure yet"],
        [
            "HATE-M1 Hate crimes reported",
            "2021/22-Q2",
            "102",
            "101",
            "on track",
            "none",
            "none",
            "Fri 8 Oct 2021 (today)",
        ],
        [
            "ASB-M1 ASB incidents reported to police",
            "2021/22-Q2",
            "445",
            "420",
            "off track",
            "430",
            "470",
            "Fri 8 Oct 2021 (today)",
        ],
        ["ASB-M2 ASB cases resolved within 28 days", "no figure yet"],
    ]
    # The RAG chart, then one small chart per measure, each with its description.
    charts = parsed.images[1:]
    assert len(charts) == 6
    assert all(src.startswith("data:image/png;base64,") for src, _ in charts)
    assert charts[4][1] == (
        "Trend chart of ASB-M1, ASB incidents reported to police; 3 figures from 2020/21-Q2 "
        "(470) to 2021/22-Q2 (445); target for 2021/22-Q2 420; baseline 450 (2020/21-Q4); "
        "lower is better."
    )
    assert charts[0][1].startswith("Trend chart of SOC-M1, Knife crime offences recorded by ")
    sheet = files["figures-2021-10-08.csv"]
    assert sheet.content is not None
    assert sheet.content.decode("utf-8-sig").splitlines() == [
        "measure,priority,title,unit,period,value,target,rag,note,sent by,sent at",
        "HATE-M1,HATE,Hate crimes reported,count,2021/22-Q2,102,101,on track,,Dan,2021-10-08 10:00",
        "ASB-M1,ASB,ASB incidents reported to police,count,2020/21-Q2,470,,,,Dan,2021-10-08 10:00",
        "ASB-M1,ASB,ASB incidents reported to police,count,2021/22-Q1,430,440,on track,,Dan,"
        "2021-10-08 10:00",
        "ASB-M1,ASB,ASB incidents reported to police,count,2021/22-Q2,445,420,off track,"
        "'=SUM(A1),Dan,2021-10-08 10:00",
    ]


def test_the_csv_export_writes_the_figures_beside_the_actions(
    cli_at: Path, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    clock.advance(days=TO_OCTOBER)
    sheet = write_csv(cli_at / "in.csv", "measure,period,value\nSOC-M2,2021-Q2,9\n")
    assert main(["figures", "import", str(sheet)]) == 0
    assert main(["report", "--format", "csv", "--out", str(cli_at / "actions.csv")]) == 0
    written = (cli_at / "figures-2021-10-08.csv").read_text(encoding="utf-8-sig")
    assert written.splitlines()[1].startswith(
        "SOC-M2,SOC,Referrals into treatment through #Citadel,count,2021/22-Q2,9,12,at risk,"
    )


async def test_a_note_that_looks_like_case_data_is_asked_about_first(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    clock.advance(days=TO_OCTOBER)
    [asked] = await bot.send(POLICE, "/figure ASB-M1 2021-Q2 412 call 07911 123456 about it")
    assert asked.plain_text.startswith("⚠️ This looks like it contains a phone number.")
    assert figures(db) == []
    await bot.press(POLICE, asked, tap(bot, asked, "Store anyway"))
    summary = last_message(bot, POLICE)
    assert summary.plain_text.startswith("Store this figure?")
    await bot.press(POLICE, summary, tap(bot, summary, "💾 Save"))
    assert figures(db) == [("ASB-M1", "2021/22-Q2", 412.0, "call 07911 123456 about it", True)]


async def test_a_figure_sent_twice_by_telegram_is_stored_once(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    clock.advance(days=TO_OCTOBER)
    update = bot.emulator.build_message_update(POLICE, "/figure ASB-M1 2021-Q2 412")
    await bot.process(update)
    await bot.process(update)
    assert figures(db) == [("ASB-M1", "2021/22-Q2", 412.0, "", True)]


async def test_figure_in_a_group_points_to_a_private_chat(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    from tests.conftest import link

    link(db, clock, -700, "partnership")
    clock.advance(days=TO_OCTOBER)
    [reply] = await bot.send(POLICE, "/figure ASB-M1 2021-Q2 412", chat_id=-700, chat_type="group")
    assert "private chat" in reply.plain_text
    assert figures(db) == []
    # Answered in the group; with no figure yet there is no chart.
    [shown] = await bot.send(OBSERVER, "/measure ASB-M1", chat_id=-700, chat_type="group")
    assert shown.plain_text.startswith("ASB-M1: ASB incidents reported to police")


def test_a_members_export_holds_the_figures_they_sent(
    cli_at: Path, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    import json

    clock.advance(days=TO_OCTOBER)
    sheet = write_csv(cli_at / "in.csv", "measure,period,value\nSOC-M2,2021-Q2,9\n")
    assert main(["figures", "import", str(sheet)]) == 0

    police = people["police"]
    from csp_bot.models.audit import Actor
    from csp_bot.models.measures import record_figure
    from csp_bot.models.values import parse_period

    db.call(
        record_figure,
        code="ASB-M1",
        period=parse_period("2021-Q2"),
        value=412.0,
        note="from the force",
        at=clock(),
        actor=Actor.member(police.id),
    )
    assert main(["member", "export", str(police.id), "--out", str(cli_at / "dan")]) == 0
    data = json.loads((cli_at / "dan.json").read_text(encoding="utf-8"))
    assert [(f["measure"], f["period"], f["value"]) for f in data["figures_sent"]] == [
        ("ASB-M1", "2021/22-Q2", 412.0)
    ]
    assert "Figures you sent for the plan" in (cli_at / "dan.html").read_text(encoding="utf-8")
