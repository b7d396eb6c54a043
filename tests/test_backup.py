"""`csp-bot backup` while updates are being written, and `csp-bot restore` into an empty
database: every update committed before the backup began is there, in an unbroken run."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from csp_bot.bot.cli import main
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database, make_engine
from csp_bot.models.inbox import Received, store_received
from csp_bot.models.membership import MemberView
from csp_bot.models.tables import InboxUpdate, Member
from tests.conftest import POSTGRES_URL, postgres_schema_url

WRITTEN_BEFORE_BACKUP = 50


def use(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("CSPBOT_DATABASE_URL", url)


class Writer(threading.Thread):
    """Stores updates one transaction each, as the bot's intake does, until stopped;
    `committed` holds the id of each update once its commit has returned."""

    def __init__(self, url: str, clock: FakeClock) -> None:
        super().__init__(daemon=True)
        self.database = Database(make_engine(url))
        self.clock = clock
        self.committed: list[int] = []
        self.warmed_up = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        update_id = 0
        while not self.stop.is_set():
            update_id += 1
            received = Received(update_id, 4242, {"update_id": update_id, "n": update_id})
            self.database.call(store_received, updates=[received], at=self.clock())
            self.committed.append(update_id)
            if len(self.committed) >= WRITTEN_BEFORE_BACKUP:
                self.warmed_up.set()
        self.database.close()


def stored_ids(url: str) -> list[int]:
    engine = make_engine(url)
    with engine.connect() as connection:
        ids = connection.execute(sa.select(InboxUpdate.update_id).order_by("update_id"))
        found = [int(row[0]) for row in ids]
    engine.dispose()
    return found


def backup_under_load(url: str, clock: FakeClock, target: Path) -> tuple[list[int], list[int]]:
    """Back up while a writer commits; the ids committed before and after the backup ran."""
    writer = Writer(url, clock)
    writer.start()
    assert writer.warmed_up.wait(timeout=60)
    before = list(writer.committed)
    assert main(["backup", str(target)]) == 0
    after = list(writer.committed)
    writer.stop.set()
    writer.join(timeout=60)
    return before, after


def assert_consistent(restored: list[int], before: list[int], after: list[int]) -> None:
    assert set(before) <= set(restored) <= set(after)
    assert restored == list(range(1, len(restored) + 1))  # a snapshot: no gaps


def test_sqlite_backup_under_load_restores_every_committed_update(
    db: Database,
    clock: FakeClock,
    people: dict[str, MemberView],
    database_url: str,
    cli_at: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the PostgreSQL case is the test below")
    use(monkeypatch, database_url)
    before, after = backup_under_load(database_url, clock, cli_at / "csp.backup")
    assert "wrote " in capsys.readouterr().out
    assert sorted(p.name for p in cli_at.iterdir() if p.name.startswith("csp.backup")) == [
        "csp.backup"
    ]
    fresh = f"sqlite:///{cli_at / 'restored.db'}"
    use(monkeypatch, fresh)
    assert main(["restore", str(cli_at / "csp.backup")]) == 0
    assert capsys.readouterr().out.startswith(
        f"restored {cli_at / 'csp.backup'}: members 5, actions 17"
    )
    assert_consistent(stored_ids(fresh), before, after)
    assert not (cli_at / "csp.backup-wal").exists()  # the backup is one file, read in place
    restored = Database(make_engine(fresh))
    names = restored.call(lambda s: sorted(m.name for m in s.exec(select(Member)).all()))
    restored.close()
    assert names == sorted(p.name for p in people.values())


def test_restore_refuses_a_database_with_data(
    db: Database,
    people: dict[str, MemberView],
    database_url: str,
    cli_at: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the PostgreSQL case is the test below")
    use(monkeypatch, database_url)
    assert main(["backup", str(cli_at / "csp.backup")]) == 0
    assert main(["restore", str(cli_at / "csp.backup")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("csp-bot: the database at CSPBOT_DATABASE_URL is not empty (members 5")
    assert "nothing was changed" in err


@pytest.mark.parametrize("content", [b"", b"not a database at all", b"SQLite format 3\x00junk"])
def test_restore_refuses_a_file_that_is_not_a_backup(
    cli_at: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
) -> None:
    (cli_at / "odd.backup").write_bytes(content)
    use(monkeypatch, f"sqlite:///{cli_at / 'fresh.db'}")
    assert main(["restore", str(cli_at / "odd.backup")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("csp-bot: ") and "odd.backup" in err and "Traceback" not in err
    assert main(["restore", str(cli_at / "missing.backup")]) == 2
    assert "no backup file" in capsys.readouterr().err


def test_backup_to_a_folder_that_does_not_exist(
    db: Database,
    database_url: str,
    cli_at: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use(monkeypatch, database_url)
    assert main(["backup", str(cli_at / "no" / "such" / "file")]) == 2
    assert capsys.readouterr().err.startswith("csp-bot: cannot write ")


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("CSPBOT_TEST_DATABASE_URL is not set: no PostgreSQL to back up")
    yield from postgres_schema_url()


def test_postgres_backup_under_load_restores_every_committed_update(
    pg_url: str,
    clock: FakeClock,
    cli_at: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed (the message is tested below)")
    use(monkeypatch, pg_url)
    assert main(["db", "upgrade"]) == 0
    before, after = backup_under_load(pg_url, clock, cli_at / "csp.dump")
    # An empty database to restore into: the same schema, emptied.
    schema = pg_url.rsplit("%3D", 1)[1]
    engine = make_engine(pg_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    capsys.readouterr()
    assert main(["restore", str(cli_at / "csp.dump")]) == 0, capsys.readouterr().err
    assert_consistent(stored_ids(pg_url), before, after)
    assert main(["restore", str(cli_at / "csp.dump")]) == 2
    assert "is not empty" in capsys.readouterr().err


def test_postgres_without_pg_dump_says_so(
    pg_url: str, cli_at: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, pg_url)
    monkeypatch.setattr("csp_bot.models.backup.shutil.which", lambda name: None)
    assert main(["backup", str(cli_at / "csp.dump")]) == 2
    assert capsys.readouterr().err.startswith("csp-bot: pg_dump is not installed, so a PostgreSQL")
    assert not (cli_at / "csp.dump").exists()
