"""Backup and restore of the whole database, consistent while the bot runs.

SQLite: the online backup API copies a snapshot of the database, the write-ahead log
included, while others go on writing (copying the file would miss what is still in the
log). PostgreSQL: `pg_dump`, which reads one snapshot, and `pg_restore`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlmodel import SQLModel

import csp_bot.models.tables  # noqa: F401  (registers every table, for the emptiness check)
from csp_bot.models.db import is_sqlite
from csp_bot.models.errors import DomainError

NO_PG_DUMP = (
    "pg_dump is not installed, so a PostgreSQL database cannot be backed up from here: "
    "install the PostgreSQL client tools of the server's version (e.g. `apt install "
    "postgresql-client`), or use your database service's own backups"
)
NO_PG_RESTORE = NO_PG_DUMP.replace("pg_dump", "pg_restore").replace("backed up", "restored")
# Tables that are bookkeeping, not data: a database holding only these counts as empty.
BOOKKEEPING = frozenset({"alembic_version"})


class BackupError(DomainError):
    """A backup or restore that cannot be done, and why; nothing has been written."""


@dataclass(frozen=True)
class Held:
    """How many rows each table of the bot holds, in a database or a backup."""

    rows: dict[str, int]

    @property
    def empty(self) -> bool:
        return not any(self.rows.values())

    def summary(self) -> str:
        shown = [f"{_SHOWN[table]} {n}" for table, n in self.rows.items() if n and table in _SHOWN]
        return ", ".join(shown) or "no data"


# The tables a summary names, in its order, as people call them.
_SHOWN = {
    "member": "members",
    "action": "actions",
    "progress_update": "progress updates",
    "meeting": "meetings",
    "audit_entry": "audit entries",
    "inbox_update": "updates in the inbox",
}


def held(engine: Engine) -> Held:
    """Rows per table of the bot's own tables that exist in this database."""
    present = set(sa.inspect(engine).get_table_names())
    rows = {}
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in present and table.name not in BOOKKEEPING:
                count = connection.execute(sa.select(sa.func.count()).select_from(table))
                rows[table.name] = int(count.scalar_one())
    return Held(dict(sorted(rows.items(), key=lambda item: _order(item[0]))))


def _order(table: str) -> int:
    names = list(_SHOWN)
    return names.index(table) if table in names else len(names)


# --- backup ----------------------------------------------------------------------------------


def backup(engine: Engine, target: Path) -> Held:
    """Write a consistent copy of the database to `target` (whole, or not at all)."""
    partial = target.with_name(f".{target.name}.partial")
    if not target.parent.is_dir():
        raise BackupError(f"cannot write {target}: no folder {target.parent}")
    try:
        if is_sqlite(engine):
            _sqlite_backup(engine, partial)
        else:
            _pg_dump(engine.url, partial)
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as problem:
        raise BackupError(f"cannot write {target}: {problem}") from None
    finally:
        partial.unlink(missing_ok=True)
    return held(engine)


def _sqlite_backup(engine: Engine, partial: Path) -> None:
    partial.unlink(missing_ok=True)
    source = engine.raw_connection()
    try:
        copy = sqlite3.connect(partial)
        try:
            # All pages in one step: one read snapshot, however busy the writers are.
            source.driver_connection.backup(copy)  # type: ignore[union-attr]
            # One self-contained file: the copy is in WAL mode like the bot's database, and
            # a WAL file opened elsewhere leaves -wal and -shm files beside it.
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()
    finally:
        source.close()


def _pg_dump(url: URL, partial: Path) -> None:
    program = shutil.which("pg_dump")
    if program is None:
        raise BackupError(NO_PG_DUMP)
    command = [program, "--format=custom", "--no-owner", f"--file={partial}"]
    command += [f"--schema={schema}" for schema in _schemas(url)]
    _run([*command, _libpq_url(url)], url)


# --- restore ---------------------------------------------------------------------------------


def restore(engine: Engine, source: Path) -> Held:
    """Load a backup into this database, which must hold no data."""
    if not source.is_file():
        raise BackupError(f"no backup file {source}")
    found = held(engine)
    if not found.empty:
        raise BackupError(
            f"the database at CSPBOT_DATABASE_URL is not empty ({found.summary()}): a backup is "
            "restored only into an empty database (a new SQLite file, or a new PostgreSQL "
            "database); nothing was changed"
        )
    if is_sqlite(engine):
        _sqlite_restore(engine, source)
    else:
        _pg_restore(engine.url, source)
    return held(engine)


def _sqlite_restore(engine: Engine, source: Path) -> None:
    try:
        backup_file = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    except sqlite3.Error as problem:
        raise BackupError(f"cannot read {source}: {problem}") from None
    try:
        _check_sqlite_backup(backup_file, source)
        target = engine.raw_connection()
        try:
            backup_file.backup(target.driver_connection)  # type: ignore[arg-type]
        finally:
            target.close()
    finally:
        backup_file.close()
    engine.dispose()  # pooled connections still hold the empty database's pages


def _check_sqlite_backup(connection: sqlite3.Connection, source: Path) -> None:
    try:
        found = connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'"
        ).fetchone()
    except sqlite3.DatabaseError:
        found = None
    if not found or not found[0]:
        raise BackupError(f"{source} is not a CSP Bot backup (a SQLite copy of its database)")


def _pg_restore(url: URL, source: Path) -> None:
    program = shutil.which("pg_restore")
    if program is None:
        raise BackupError(NO_PG_RESTORE)
    # --clean drops what an empty, migrated database already has (checked empty above).
    command = [program, "--no-owner", "--clean", "--if-exists", "--single-transaction"]
    _run([*command, "--exit-on-error", f"--dbname={_libpq_url(url)}", str(source)], url)


# --- PostgreSQL's tools ---------------------------------------------------------------------


def _libpq_url(url: URL) -> str:
    """The URL as libpq reads it: no driver name, and no password (that goes by PGPASSWORD,
    so it is never on a command line other users can list)."""
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False)


def _schemas(url: URL) -> list[str]:
    """The schema a `search_path` option in the URL confines the bot to, if any."""
    options = url.query.get("options", "")
    text = options if isinstance(options, str) else " ".join(options)
    for part in text.split():
        if part.startswith("-csearch_path="):
            return [part.removeprefix("-csearch_path=").split(",")[0]]
    return []


def _run(command: list[str], url: URL) -> None:
    environment = dict(os.environ)
    if url.password:
        environment["PGPASSWORD"] = str(url.password)
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[0]
        raise BackupError(f"{Path(command[0]).name} failed: {reason}")
