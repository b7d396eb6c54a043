"""A kept /summary is never stale: any write, or the clock passing a moment that matters,
makes the next one read the plan again."""

from __future__ import annotations

import pytest
from sqlalchemy import event, update
from sqlmodel import Session

from csp_bot.handlers.summary import SECTIONS, first_screen, section_pages
from csp_bot.handlers.templating import Templates
from csp_bot.models.audit import Actor
from csp_bot.models.clock import FakeClock
from csp_bot.models.data_version import data_version, history_version
from csp_bot.models.db import Database
from csp_bot.models.enums import Status
from csp_bot.models.measures import MeasureCache, MeasureView, record_figure
from csp_bot.models.membership import MemberView
from csp_bot.models.progress import undo_last_update
from csp_bot.models.summary import BoardSummary, SummaryCache, board_summary
from csp_bot.models.tables import Action, DialogueDraft, MeasureTarget, Member, ProgressUpdate
from csp_bot.models.values import parse_period
from tests.harness import PEOPLE, Harness
from tests.test_summary import QUIET, at, log, section, seed_exceptions, summary_section


def version(db: Database) -> int:
    return db.call(data_version)


def every_screen(templates: Templates, summary: BoardSummary) -> list[str]:
    """The first screen and every page of every section, as the buttons would show them."""
    text, _ = first_screen(templates, summary)
    return [text] + [
        page for section in SECTIONS.values() for page in section_pages(templates, summary, section)
    ]


def fresh(
    db: Database, templates: Templates, clock: FakeClock, code: str | None = None
) -> list[str]:
    summary = db.call(board_summary, at=clock(), quiet_after=QUIET, code=code, shown=10)
    return every_screen(templates, summary)


def kept(
    db: Database,
    templates: Templates,
    cache: SummaryCache,
    clock: FakeClock,
    code: str | None = None,
) -> list[str]:
    summary = db.call(cache.summary, at=clock(), quiet_after=QUIET, code=code, shown=10)
    return every_screen(templates, summary)


def statements(db: Database, job: object) -> int:
    seen: list[object] = []

    def record(*args: object) -> None:
        seen.append(args[2])

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert callable(job)
        job()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return len(seen)


def test_every_write_transaction_counts_and_reads_do_not(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    before = version(db)
    log(db, clock, people["police"], "SOC-1", Status.AMBER, "Provider late")
    assert version(db) == before + 1  # one transaction, however many rows it wrote
    db.call(board_summary, at=clock(), quiet_after=QUIET)
    assert version(db) == before + 1
    # Plain SQL outside the ORM counts too.
    with db.engine.begin() as connection:
        connection.execute(update(Action).where(Action.ref == "SOC-2").values(owner="Someone"))
    assert version(db) == before + 2
    # A write that is rolled back does not, nor one to a table no answer reads.
    with db.engine.connect() as connection:
        connection.execute(update(Action).values(owner="Nobody"))
        connection.rollback()

    def draft(session: Session) -> None:
        session.add(DialogueDraft(user_id=1, touched_at=clock()))

    db.call(draft)
    assert version(db) == before + 2


async def test_a_summary_asked_again_after_an_update_shows_it(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    seed_exceptions(db, clock, people)
    first = await summary_section(bot, "🔴 Exceptions")
    assert first.count("<b>🔴 Off track: 2</b>") == 1
    assert first == await summary_section(bot, "🔴 Exceptions")  # served again, the same
    assert "SOC-2" not in section(first, "<b>🔴 Off track")
    log(db, clock, people["chair"], "SOC-2", Status.RED, "Venue lost")
    again = section(await summary_section(bot, "🔴 Exceptions"), "<b>🔴 Off track")
    assert again.startswith("<b>🔴 Off track: 3</b>") and "Venue lost" in again
    # The first screen is read from the same summary, and follows too.
    [screen] = await bot.send(PEOPLE["chair"].user, "/summary")
    assert "<b>Off track or overdue: 4</b>" in screen.text
    assert "🔴 <b>SOC-2</b> Bring homelessness services into #Citadel: off track," in screen.text
    # A change made by another process (plain SQL: the command line, a restore) counts too.
    with db.engine.begin() as connection:
        connection.execute(update(Action).where(Action.ref == "SOC-2").values(title="Renamed"))
    assert "<b>SOC-2</b> Renamed" in await summary_section(bot, "🔴 Exceptions")


def test_a_kept_summary_reads_one_row(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    seed_exceptions(db, clock, people)
    cache = SummaryCache()
    db.call(cache.summary, at=clock(), quiet_after=QUIET)
    clock.advance(minutes=1)
    assert statements(db, lambda: db.call(cache.summary, at=clock(), quiet_after=QUIET)) == 1


# The clock alone moves here: the reads are those the other tests run on PostgreSQL.
@pytest.mark.sqlite_only
def test_the_passing_of_time_alone_moves_a_kept_summary_on(
    db: Database, clock: FakeClock, people: dict[str, MemberView], templates: Templates
) -> None:
    """At every moment the kept summary says what a fresh one says: actions going quiet or
    overdue, midnight, a board meeting starting, updates leaving the 28-day window."""
    seed_exceptions(db, clock, people)
    cache = SummaryCache()
    # From the week before the 16 Sep meeting to seven weeks after the last update, in steps
    # that cross every midnight, the meeting's start and the moment SOC-1's update goes quiet,
    # each at another time of day.
    at(clock, "2021-09-10")
    for _ in range(60):
        for code in (None, "SOC"):
            assert kept(db, templates, cache, clock, code) == fresh(db, templates, clock, code)
        clock.advance(hours=22, minutes=14)


# The clock alone moves here: the reads are those the other tests run on PostgreSQL.
@pytest.mark.sqlite_only
def test_no_meeting_on_record_the_window_slides(
    db: Database, clock: FakeClock, people: dict[str, MemberView], templates: Templates
) -> None:
    """With no board meeting, "since" is 28 days ago: an update leaving that window changes
    the summary, and the kept one follows."""
    police = people["police"]
    cache = SummaryCache()
    log(db, clock, police, "SOC-1", Status.AMBER, "Provider late")
    clock.advance(days=2)
    log(db, clock, police, "SOC-1", Status.GREEN, "Provider on site")
    for _ in range(60):
        assert kept(db, templates, cache, clock) == fresh(db, templates, clock)
        clock.advance(hours=13)


def priority_lines(
    db: Database, cache: SummaryCache, clock: FakeClock
) -> list[tuple[str, str, str]]:
    """(priority, its RAG at the 16 Sep meeting, its RAG now), from the kept summary."""
    summary = db.call(cache.summary, at=clock(), quiet_after=QUIET, shown=10)
    return [(p.status.code, p.was.value, p.rag.value) for p in summary.priorities]


def test_the_status_at_the_meeting_follows_new_updates_and_withdrawals(
    db: Database, clock: FakeClock, people: dict[str, MemberView], templates: Templates
) -> None:
    """The actions' status at the last meeting is kept between reads (it is history), and
    found afresh for actions that move; a withdrawal makes the next read start over."""
    seed_exceptions(db, clock, people)
    police, chair = people["police"], people["chair"]
    cache = SummaryCache()
    lines = priority_lines(db, cache, clock)
    assert lines[0] == ("SOC", "amber", "red")  # SOC-1 green then, red since
    assert kept(db, templates, cache, clock) == fresh(db, templates, clock)
    # New updates add history and rewrite none.
    history = db.call(history_version)
    log(db, clock, police, "SOC-3", Status.RED, "KGH pulled out")  # amber at the meeting
    log(db, clock, chair, "DASV-2", Status.RED, "Refuge closed")  # not started then
    assert db.call(history_version) == history
    assert kept(db, templates, cache, clock) == fresh(db, templates, clock)
    clock.advance(minutes=1)
    log(db, clock, police, "SOC-3", Status.GREEN, "KGH back on board")
    assert kept(db, templates, cache, clock) == fresh(db, templates, clock)
    # Withdrawing SOC-3's updates since the meeting: the first one too.
    db.call(undo_last_update, member_id=police.id, at=clock())
    assert db.call(history_version) == history + 1
    assert kept(db, templates, cache, clock) == fresh(db, templates, clock)
    db.call(undo_last_update, member_id=police.id, at=clock())
    assert kept(db, templates, cache, clock) == fresh(db, templates, clock)
    assert priority_lines(db, cache, clock) == lines  # SOC-3 amber again, then and now
    # Plain SQL rewriting history (a restore, a correction) counts as well: SOC-1's first
    # update since the meeting now says it was red before it.
    with db.engine.begin() as connection:
        connection.execute(
            update(ProgressUpdate)
            .where(ProgressUpdate.note == "Provider pulled out")
            .values(previous_status=Status.RED)
        )
    assert db.call(history_version) == history + 3
    assert kept(db, templates, cache, clock) == fresh(db, templates, clock)
    assert priority_lines(db, cache, clock)[0] == ("SOC", "red", "red")


def asb(db: Database, cache: MeasureCache) -> MeasureView:
    [view] = [v for v in db.call(cache.latest) if v.code == "ASB-M1"]
    return view


def test_kept_measures_follow_figures_targets_and_names_but_not_updates(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    police = people["police"]
    cache = MeasureCache()
    assert asb(db, cache).latest is None
    db.call(
        record_figure,
        code="ASB-M1",
        period=parse_period("2021-Q1"),
        value=455.0,
        note="from the force",
        at=clock(),
        actor=Actor.member(police.id),
    )
    view = asb(db, cache)  # lower is better: 15 over the quarter's 440, within its 20
    assert (view.latest.value, view.latest.sent_by, view.rag()) == (455.0, "Dan", Status.AMBER)
    # A partner's update leaves the measures as they were: one statement, the version.
    log(db, clock, police, "SOC-1", Status.AMBER, "Provider late")
    assert statements(db, lambda: db.call(cache.latest)) == 1
    # A target changed (plain SQL counts), a member renamed: both are shown again.
    with db.engine.begin() as connection:
        connection.execute(
            update(MeasureTarget).where(MeasureTarget.period == "2021/22-Q1").values(value=480.0)
        )
        connection.execute(update(Member).where(Member.id == police.id).values(name="Daniel"))
    view = asb(db, cache)
    assert (view.latest.sent_by, view.rag()) == ("Daniel", Status.GREEN)
    assert [v.code for v in db.call(cache.latest, priority_code="ASB")] == ["ASB-M1", "ASB-M2"]
