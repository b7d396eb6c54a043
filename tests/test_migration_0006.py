"""Migration 0006 takes the names out of an existing audit trail: actor labels and member
snapshots then refer to members by id alone."""

from __future__ import annotations

import json

from alembic import command
from sqlalchemy import create_engine, text

from csp_bot.models.migrate import alembic_config, upgrade


def test_names_leave_an_existing_audit_trail(database_url: str) -> None:
    # A plain engine: the bot's own counts every write in a table this old revision lacks.
    engine = create_engine(database_url)
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
    snapshot = '{"id": 1, "name": "Dan Smith", "telegram_id": 1004, "role": "partner"}'
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_entry (at, actor, member_id, entity, entity_id, change, "
                "before, after) VALUES "
                "('2021-06-10 09:00:00+00:00', 'command line', NULL, 'member', 1, 'created', "
                "NULL, :snapshot), "
                "('2021-06-11 09:00:00+00:00', 'member 1 (Dan (Police) Smith)', NULL, "
                "'progress_update', 3, 'created', NULL, '{\"note\": \"On track\"}')"
            ),
            {"snapshot": snapshot},
        )
    assert "0006" in upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT actor, after FROM audit_entry ORDER BY id")).all()
    engine.dispose()
    actors = [row[0] for row in rows]
    assert actors == ["command line", "member 1"]
    afters = [row[1] if isinstance(row[1], dict) else json.loads(row[1]) for row in rows]
    assert afters == [{"id": 1, "role": "partner"}, {"note": "On track"}]
