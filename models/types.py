"""Column types shared by the tables."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy import Enum as SAEnum
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware.

    SQLite keeps no zone, so without this a value read back would be naive.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: times must carry a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """On SQLite, read the stored UTC text straight into an aware datetime.

        SQLAlchemy's own SQLite parsing (a regular expression per value) and then making
        the result aware cost more than the query when a summary reads 10,000 actions.
        """
        if dialect.name == "sqlite":
            return _sqlite_text_as_utc
        if dialect.name == "postgresql":
            return _postgres_as_utc  # timestamptz: psycopg returns aware datetimes
        return super().result_processor(dialect, coltype)


def _sqlite_text_as_utc(value: str | None) -> datetime | None:
    # Parsing with the offset is several times faster than parsing and then replace().
    return None if value is None else datetime.fromisoformat(value + "+00:00")


def _postgres_as_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is UTC:
        return value
    return value.astimezone(UTC)


def as_utc(value: datetime | str | None) -> datetime | None:
    """A stored time as an aware UTC datetime.

    Aggregates such as max() bypass the column type, and SQLite then hands back the naive
    UTC text or datetime it stored; this reads all of these the same way.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def enum_type(enum: type[StrEnum]) -> SAEnum:
    """Stores a StrEnum by its value in a plain VARCHAR, the same on SQLite and PostgreSQL."""
    return SAEnum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=24,
        values_callable=lambda members: [member.value for member in members],
    )
