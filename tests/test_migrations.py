"""The migrations build exactly the schema the tables describe."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import csp_bot.models.tables  # noqa: F401  (registers every table)
from csp_bot.models.db import Database, make_engine
from csp_bot.models.migrate import upgrade


def test_migrations_match_the_tables(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_upgrading_twice_applies_nothing(db: Database) -> None:
    assert upgrade(db.engine) == []


# One `csp-bot run` starting: open the database and migrate it, printing how many
# revisions it applied.
MIGRATE_AS_RUN_DOES = (
    "import sys; from csp_bot.models.db import make_engine;"
    " from csp_bot.models.migrate import upgrade;"
    " print(len(upgrade(make_engine(sys.argv[1]))))"
)


def test_instances_starting_together_migrate_the_database_once(database_url: str) -> None:
    """Three instances started at once on an empty PostgreSQL database: one applies every
    migration, the other two wait for it and apply none; none fails."""
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (CSPBOT_TEST_DATABASE_URL): SQLite has one instance")
    starting = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE_AS_RUN_DOES, database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    finished = [(process, *process.communicate(timeout=120)) for process in starting]
    assert [(process.returncode, err) for process, _, err in finished] == [(0, "")] * 3
    applied = sorted(int(out) for _, out, _ in finished)
    assert applied[:2] == [0, 0] and applied[2] >= 11
    engine = make_engine(database_url)
    assert upgrade(engine) == []
    engine.dispose()
