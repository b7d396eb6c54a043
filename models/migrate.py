"""Applying Alembic migrations from code: `csp-bot db upgrade`, and at start of run and demo."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from csp_bot.models.data_version import MIGRATING

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    url = engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser syntax
    return config


# The advisory lock instances starting together on one PostgreSQL database take in turn to
# migrate it: the first applies what is pending, the others then find nothing to apply.
MIGRATION_LOCK = 0x6373_7062_6F74_0001  # "cspbot", 1


def upgrade(engine: Engine) -> list[str]:
    """Apply pending migrations; returns the revisions applied (empty if up to date)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        connection.info[MIGRATING] = True
        try:
            command.upgrade(config, "head")
        finally:
            del connection.info[MIGRATING]
    script = ScriptDirectory.from_config(config)
    applied = [rev.revision for rev in script.iterate_revisions("head", before)]
    return list(reversed(applied))


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def make_revision(engine: Engine, message: str) -> None:
    """Autogenerate a migration from the tables (for developers: `csp-bot db revision`)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
