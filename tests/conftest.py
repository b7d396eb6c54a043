"""Shared fixtures: a fresh database per test (SQLite, and PostgreSQL when configured),
an injected clock, the Bot API emulator, and the real Application wired to it."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import cache
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, text
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
from csp_bot.models.membership import MemberView, add_member, get_member
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the PostgreSQL runs of parameters marked `sqlite_only` (more seeds of a
    comparison that one seed on PostgreSQL already shows the SQL of)."""
    extra = [item for item in items if _sqlite_only_parameter_on_postgresql(item)]
    if extra:
        config.hook.pytest_deselected(items=extra)
        items[:] = [item for item in items if item not in extra]


def _sqlite_only_parameter_on_postgresql(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    on_postgresql = callspec is not None and callspec.params.get("database_url") == "postgresql"
    return on_postgresql and item.get_closest_marker("sqlite_only") is not None


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
# The kept schemas whose tables autovacuum leaves alone (see keep_heaps_in_insertion_order).
_KEPT_STILL: set[str] = set()
# This process's schemas holding each sample, copied into tests' schemas.
_TEMPLATE_SCHEMAS: dict[Sample, TemplateSchema] = {}
HEAD_REVISION = ScriptDirectory(str(MIGRATIONS)).get_current_head()
# The tables a schema at the head revision holds: the models' and Alembic's own.
HEAD_TABLES = {*SQLModel.metadata.tables, "alembic_version"}


def postgres_schema_url(*, migrated_will_do: bool = False) -> Iterator[str]:
    """A URL whose connections use a schema of their own: a fresh one, or, when a migrated
    one will do, one a finished test left at the head revision, emptied."""
    admin = admin_engine()
    reuse = migrated_will_do and bool(_EMPTIED_SCHEMAS)  # a bool: pop() empties the list
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


def migrated_postgres_url() -> Iterator[str]:
    """A URL to an empty schema of its own at the head revision, for a test's second
    database: one a finished test left emptied, or a fresh one migrated now."""
    urls = postgres_schema_url(migrated_will_do=True)
    url = next(urls)
    migrated_postgres_engine(url)
    yield url
    next(urls, None)


def migrated_postgres_engine(url: str) -> Engine:
    """The schema's engine, the schema migrated first unless it is at the head already."""
    engine = postgres_engine(url)
    if url not in _AT_HEAD:
        upgrade(engine)
    return engine


@cache
def postgres_engine(url: str) -> Engine:
    """One engine per schema URL in a process. A reused schema keeps its URL, so the next
    test on it finds its statements compiled already (SQLAlchemy caches them per engine;
    compiling them again was a quarter of a test's database time). Each test's `Database`
    still closes the engine's connections when it ends."""
    return make_engine(url)


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
    kept = _EMPTIED_SCHEMAS + [template.name for template in _TEMPLATE_SCHEMAS.values()]
    if not kept:
        return
    _drop_schemas(admin_engine(), kept)
    _EMPTIED_SCHEMAS.clear()
    _TEMPLATE_SCHEMAS.clear()
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
        if schema not in _KEPT_STILL:
            keep_heaps_in_insertion_order(connection, schema)
        connection.exec_driver_sql(emptying_sql(schema))
    _EMPTIED_SCHEMAS.append(schema)
    _KEPT_STILL.add(schema)
    return True


def keep_heaps_in_insertion_order(connection: Connection, schema: str) -> None:
    """Stop autovacuum in a schema kept for reuse. The schema is emptied with DELETE, ten
    times quicker than TRUNCATE; a vacuum would let new rows into the freed space, and a
    test reading without ORDER BY would see its rows in another order now and then."""
    for table in sorted(HEAD_TABLES):
        connection.execute(
            text(
                f"ALTER TABLE {schema}.{table} SET"
                " (autovacuum_enabled = false, toast.autovacuum_enabled = false)"
            )
        )


# Foreign keys unchecked until the transaction ends (triggers off, PostgreSQL's superuser
# setting): for emptying a schema, and for filling it with rows known to be consistent.
SKIP_FOREIGN_KEY_CHECKS = "SET LOCAL session_replication_role = replica"


def emptying_sql(schema: str) -> str:
    """Delete every row, children first, and set every sequence back to its start."""
    deletes = [
        f"DELETE FROM {schema}.{table.name}" for table in reversed(SQLModel.metadata.sorted_tables)
    ]
    restart = (
        "SELECT setval(schemaname || '.' || sequencename, 1, false) FROM pg_sequences"
        f" WHERE schemaname = '{schema}'"
    )
    # Every row goes: checking the foreign keys of each deleted row is wasted work.
    return "; ".join([SKIP_FOREIGN_KEY_CHECKS, *deletes, restart])


class Sample(Enum):
    """What a test's database starts with, besides the tables: each is imported or
    registered once per process into a template, and copied into each test's database."""

    NOTHING = "migrated"
    PLAN = "planned"  # the sample plan imported at START
    PLAN_AND_PEOPLE = "peopled"  # and one member of each role registered at START

    @classmethod
    def wanted_by(cls, request: pytest.FixtureRequest) -> Sample:
        if "people" in request.fixturenames:
            return cls.PLAN_AND_PEOPLE
        return cls.PLAN if "plan" in request.fixturenames else cls.NOTHING


def fill_with_sample(database: Database, sample: Sample, plan: PlanFile) -> None:
    """Import the plan and register the people at START, as the fixtures that ask for
    them would (no test moves the clock before its plan and people are there)."""
    if sample is Sample.NOTHING:
        return
    database.call(import_plan, plan=plan, at=START)
    if sample is Sample.PLAN_AND_PEOPLE:
        for person in PEOPLE.values():
            register(database, FakeClock(START), person)


def sqlite_template(request: pytest.FixtureRequest, sample: Sample) -> Path:
    """A file at the head revision holding the sample, made once per process."""
    migrated = request.getfixturevalue("migrated_sqlite")
    if sample is Sample.NOTHING:
        return migrated
    path = migrated.with_name(f"{sample.value}.db")
    if not path.exists():
        shutil.copyfile(migrated, path)
        database = Database(make_engine(f"sqlite:///{path}"))
        fill_with_sample(database, sample, request.getfixturevalue("sample_plan"))
        checkpoint(database.engine)
        database.close()
    return path


@dataclass(frozen=True)
class TemplateSchema:
    """This process's schema holding a sample, and its tables that hold rows, in the order
    they can be copied (parents first)."""

    name: str
    tables: tuple[str, ...]


def postgres_template(request: pytest.FixtureRequest, sample: Sample) -> TemplateSchema:
    """The PostgreSQL counterpart of `sqlite_template`, made on first use."""
    if sample not in _TEMPLATE_SCHEMAS:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with admin_engine().begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {name}"))
        database = Database(make_engine(schema_url(name)))
        upgrade(database.engine)
        fill_with_sample(database, sample, request.getfixturevalue("sample_plan"))
        with database.engine.connect() as connection:
            tables = tuple(
                table.name
                for table in SQLModel.metadata.sorted_tables
                if connection.execute(text(f"SELECT EXISTS (SELECT FROM {table.name})")).scalar()
            )
        database.close()
        _TEMPLATE_SCHEMAS[sample] = TemplateSchema(name, tables)
    return _TEMPLATE_SCHEMAS[sample]


def copy_tables(engine: Engine, source: TemplateSchema) -> None:
    """Copy the source's rows into the engine's empty schema at the same revision, and set
    its sequences where the source's stand: one round trip."""
    copies = [f"INSERT INTO {table} SELECT * FROM {source.name}.{table}" for table in source.tables]
    sequences = (
        "SELECT setval(sequencename::regclass, last_value) FROM pg_sequences"
        f" WHERE schemaname = '{source.name}' AND last_value IS NOT NULL"
    )
    # The template's rows already satisfy every foreign key: checking them row by row was
    # most of the copy's time.
    with engine.begin() as connection:
        connection.exec_driver_sql("; ".join([SKIP_FOREIGN_KEY_CHECKS, *copies, sequences]))


@pytest.fixture
def db(request: pytest.FixtureRequest, database_url: str) -> Iterator[Database]:
    """The migrated database the test and the bot share; with the sample plan (and people)
    in it already when the test asks for `plan` (or `people`): a copy of a template."""
    sample = Sample.wanted_by(request)
    if database_url.startswith("sqlite:///"):
        template = sqlite_template(request, sample)
        shutil.copyfile(template, database_url.removeprefix("sqlite:///"))
        database = Database(make_engine(database_url))
    else:
        database = Database(migrated_postgres_engine(database_url))
        if sample is not Sample.NOTHING:
            copy_tables(database.engine, postgres_template(request, sample))
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
def people(db: Database, plan: None) -> dict[str, MemberView]:
    """One member of each role, registered to the sample plan's organisations at START:
    `db` copies them in with the plan."""
    members = db.call(
        lambda session: {
            key: get_member(session, telegram_id=person.user.id) for key, person in PEOPLE.items()
        }
    )
    assert all(members.values())
    return members


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
    # A test that ran the reminder job took the leader lease: the next test on this schema
    # (schemas are reused) must be able to take it.
    application.services.leader.release()


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
