"""The migrations build exactly the schema the tables describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import csp_bot.models.tables  # noqa: F401  (registers every table)
from csp_bot.models.db import Database
from csp_bot.models.migrate import upgrade


def test_migrations_match_the_tables(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_upgrading_twice_applies_nothing(db: Database) -> None:
    assert upgrade(db.engine) == []
