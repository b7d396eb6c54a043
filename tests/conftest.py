"""Shared fixtures: a fresh database per test (SQLite, and PostgreSQL when configured),
an injected clock, the Bot API emulator, and the real Application wired to it."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

from csp_bot.bot.demo import EXAMPLE_PLAN
from csp_bot.bot.emulator import BotApiEmulator
from csp_bot.bot.settings import Settings
from csp_bot.handlers.context import CspApplication
from csp_bot.handlers.templating import Templates
from csp_bot.models.audit import CLI
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database, make_engine
from csp_bot.models.groups import Audience, link_group
from csp_bot.models.membership import MemberView, add_member
from csp_bot.models.migrate import MIGRATIONS, upgrade
from csp_bot.models.plan_checks import load_plan_file
from csp_bot.models.plan_file import PlanFile
from csp_bot.models.plan_import import import_plan
from tests.harness import PEOPLE, Harness, Person, build_test_application

POSTGRES_URL = os.environ.get("CSPBOT_TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
START = datetime(2021, 6, 10, 9, 0, tzinfo=UTC)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only: what the module or test checks does not depend on the database (access "
        "rules, input checks, button guards, faults in talking to Telegram), so a second "
        "database adds time and no evidence",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test that uses a database runs on SQLite and, when configured, PostgreSQL."""
    if "database_url" in metafunc.fixturenames:
        one = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("database_url", ["sqlite"] if one else BACKENDS, indirect=True)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of its own: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    # Only a test whose database is migrated by `db` may be given an emptied migrated schema.
    yield from postgres_schema_url(migrated_will_do="db" in request.fixturenames)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated once per run; each test's database starts as a copy of it."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    checkpoint(engine)
    engine.dispose()
    return path


def checkpoint(engine: Engine) -> None:
    """Write the WAL into the file, so that a copy of the file alone is the whole database."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


# Emptied schemas at the head revision, kept for the next test in this process: making and
# migrating a schema costs more than emptying one.
_EMPTIED_SCHEMAS: list[str] = []
# The URLs of the schemas handed out at the head revision already: `db` need not migrate them.
_AT_HEAD: set[str] = set()
# This process's schema holding the sample plan imported at START, copied into tests' schemas.
_PLANNED_SCHEMA: list[PlannedSchema] = []
HEAD_REVISION = ScriptDirectory(str(MIGRATIONS)).get_current_head()
# The tables a schema at the head revision holds: the models' and Alembic's own.
HEAD_TABLES = {*SQLModel.metadata.tables, "alembic_version"}


def postgres_schema_url(*, migrated_will_do: bool = False) -> Iterator[str]:
    """A URL whose connections use a schema of their own: a fresh one, or, when a migrated
    one will do, one a finished test left at the head revision, emptied."""
    admin = admin_engine()
    reuse = migrated_will_do and _EMPTIED_SCHEMAS
    schema = _EMPTIED_SCHEMAS.pop() if reuse else f"t_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    url = schema_url(schema)
    if reuse:
        _AT_HEAD.add(url)
    yield url
    _AT_HEAD.discard(url)
    if not _reusable(admin, schema):
        _drop_schemas(admin, [schema])


@cache
def admin_engine() -> Engine:
    """One engine per process for making, emptying and dropping schemas."""
    assert POSTGRES_URL is not None
    return create_engine(POSTGRES_URL)


def schema_url(schema: str) -> str:
    assert POSTGRES_URL is not None
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop the schemas this process kept: the database is left as it was found."""
    kept = _EMPTIED_SCHEMAS + [planned.name for planned in _PLANNED_SCHEMA]
    if not kept:
        return
    _drop_schemas(admin_engine(), kept)
    _EMPTIED_SCHEMAS.clear()
    _PLANNED_SCHEMA.clear()
    admin_engine().dispose()


def _drop_schemas(admin: Engine, schemas: list[str]) -> None:
    with admin.begin() as connection:
        for schema in schemas:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def _reusable(admin: Engine, schema: str) -> bool:
    try:
        return _emptied(admin, schema)
    except OperationalError:  # the lock timeout: something still has the schema open
        return False


def _emptied(admin: Engine, schema: str) -> bool:
    """Empty the schema for reuse if it holds the head revision's tables, and no more."""
    with admin.begin() as connection:
        tables = set(
            connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"),
                {"schema": schema},
            ).scalars()
        )
        if tables != HEAD_TABLES:
            return False
        revision = connection.execute(text(f"SELECT version_num FROM {schema}.alembic_version"))
        if revision.scalar() != HEAD_REVISION:
            return False
        # A connection the test left open must not hold the run up: drop the schema instead.
        connection.execute(text("SET LOCAL lock_timeout = '2s'"))
        # Not DELETE, which is quicker: a heap whose space is reused returns rows in another
        # order, and a test reading rows without ORDER BY would fail now and then.
        data = ", ".join(f"{schema}.{table}" for table in sorted(tables - {"alembic_version"}))
        connection.execute(text(f"TRUNCATE {data} RESTART IDENTITY CASCADE"))
    _EMPTIED_SCHEMAS.append(schema)
    return True


@pytest.fixture(scope="session")
def planned_sqlite(migrated_sqlite: Path, sample_plan: PlanFile) -> Path:
    """The migrated file with the sample plan imported at START, once per run: what the
    `plan` fixture gives a SQLite test (no test moves the clock before its plan is there)."""
    path = migrated_sqlite.with_name("planned.db")
    shutil.copyfile(migrated_sqlite, path)
    database = Database(make_engine(f"sqlite:///{path}"))
    database.call(import_plan, plan=sample_plan, at=START)
    checkpoint(database.engine)
    database.close()
    return path


@dataclass(frozen=True)
class PlannedSchema:
    """This process's schema with the sample plan imported at START, and its tables that
    hold rows, in the order they can be copied (parents first)."""

    name: str
    tables: tuple[str, ...]


def planned_postgres_schema(sample_plan: PlanFile) -> PlannedSchema:
    """The PostgreSQL counterpart of `planned_sqlite`, made on first use."""
    if not _PLANNED_SCHEMA:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with admin_engine().begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {name}"))
        database = Database(make_engine(schema_url(name)))
        upgrade(database.engine)
        database.call(import_plan, plan=sample_plan, at=START)
        with database.engine.connect() as connection:
            tables = tuple(
                table.name
                for table in SQLModel.metadata.sorted_tables
                if connection.execute(text(f"SELECT EXISTS (SELECT FROM {table.name})")).scalar()
            )
        database.close()
        _PLANNED_SCHEMA.append(PlannedSchema(name, tables))
    return _PLANNED_SCHEMA[0]


def copy_tables(engine: Engine, source: PlannedSchema) -> None:
    """Copy the source's rows into the engine's empty schema at the same revision, and set
    its sequences where the source's stand: one round trip."""
    copies = [f"INSERT INTO {table} SELECT * FROM {source.name}.{table}" for table in source.tables]
    sequences = (
        "SELECT setval(sequencename::regclass, last_value) FROM pg_sequences"
        f" WHERE schemaname = '{source.name}' AND last_value IS NOT NULL"
    )
    with engine.begin() as connection:
        connection.exec_driver_sql("; ".join([*copies, sequences]))


@pytest.fixture
def db(request: pytest.FixtureRequest, database_url: str) -> Iterator[Database]:
    """The migrated database the test and the bot share; with the sample plan in it already
    when the test asks for `plan` (a copy of a database it was imported into once)."""
    planned = "plan" in request.fixturenames
    if database_url.startswith("sqlite:///"):
        template = "planned_sqlite" if planned else "migrated_sqlite"
        shutil.copyfile(request.getfixturevalue(template), database_url.removeprefix("sqlite:///"))
        database = Database(make_engine(database_url))
    else:
        database = Database(make_engine(database_url))
        if database_url not in _AT_HEAD:
            upgrade(database.engine)
        if planned:
            sample_plan = request.getfixturevalue("sample_plan")
            copy_tables(database.engine, planned_postgres_schema(sample_plan))
    yield database
    database.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, telegram_token=None, bot_username="csp_demo_bot")


@pytest.fixture
def templates(settings: Settings) -> Templates:
    return Templates(settings.tz)


@pytest.fixture
def emulator(clock: FakeClock) -> BotApiEmulator:
    return BotApiEmulator(clock=clock)


@pytest.fixture
def plan(db: Database) -> None:
    """The sample plan that ships with the bot, imported at START: `db` copies it in from a
    database it was imported into once (no test moves the clock before its plan is there)."""


@pytest.fixture(scope="session")
def sample_plan() -> PlanFile:
    """The sample plan read and checked once per run (the import itself runs per test)."""
    return load_plan_file(EXAMPLE_PLAN)


@pytest.fixture
def people(db: Database, clock: FakeClock, plan: None) -> dict[str, MemberView]:
    """One member of each role, registered to the sample plan's organisations."""
    return {key: register(db, clock, person) for key, person in PEOPLE.items()}


def register(db: Database, clock: FakeClock, person: Person) -> MemberView:
    return db.call(
        add_member,
        telegram_id=person.user.id,
        name=person.user.first_name,
        organisation=person.organisation,
        role=person.role,
        at=clock(),
        actor=CLI,
    )


@pytest.fixture
async def app(
    settings: Settings, db: Database, clock: FakeClock, emulator: BotApiEmulator
) -> AsyncIterator[CspApplication]:
    """The real Application, initialised, talking to the emulator in-process."""
    application = build_test_application(settings, db, clock, emulator)
    await application.initialize()
    assert application.post_init is not None
    await application.post_init(application)  # initialize() does not run it
    yield application
    await application.shutdown()


@pytest.fixture
def bot(app: CspApplication, emulator: BotApiEmulator) -> Harness:
    """Drives the Application as Telegram users would, and reads what they see."""
    return Harness(app, emulator)


@pytest.fixture
def cli_at(
    monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path, clock: FakeClock
) -> Path:
    """The command line on the test database, at the test clock's time, in a temporary folder."""
    for name in list(os.environ):
        if name.startswith("CSPBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CSPBOT_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("csp_bot.bot.cli.system_clock", clock)
    return tmp_path


def link(db: Database, clock: FakeClock, chat_id: int, audience: str = "board") -> None:
    """Link a group chat as the coordinator would, so the bot answers there."""
    db.call(
        link_group,
        chat_id=chat_id,
        audience=Audience(audience),
        title=f"Group {chat_id}",
        at=clock(),
        actor=CLI,
    )
