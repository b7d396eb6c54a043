"""Migration 0016 moves whether a dialogue's screen was shown out of the draft's JSON into
a column: a draft open across the upgrade is read back as it was, shown or not."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session

from csp_bot.models.dialogue import load_draft
from csp_bot.models.migrate import alembic_config, upgrade

AT = datetime(2021, 6, 10, 9, 0, tzinfo=UTC)


def test_the_shown_flag_leaves_the_json_of_open_drafts(database_url: str) -> None:
    # A plain engine: the bot's own counts every write in a table this old revision lacks.
    engine = create_engine(database_url)
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0015")
    shown = {"values": {"ref": "SOC-1"}, "shown": True, "what": "update on SOC-1"}
    waiting = {"values": {}, "shown": False, "what": "new board meeting"}
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO dialogue_draft (user_id, dialogue, step, touched_at, update_id, "
                "data) VALUES (1001, 'update', 'note', :at, 7, :shown), "
                "(1002, 'meeting', 'title', :at, 8, :waiting)"
            ),
            {"at": _stored(engine, AT), "shown": json.dumps(shown), "waiting": json.dumps(waiting)},
        )
    assert "0016" in upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT user_id, shown, data FROM dialogue_draft ORDER BY user_id")
        ).all()
    assert [(row[0], bool(row[1])) for row in rows] == [(1001, True), (1002, False)]
    datas = [row[2] if isinstance(row[2], dict) else json.loads(row[2]) for row in rows]
    assert datas == [
        {"values": {"ref": "SOC-1"}, "what": "update on SOC-1"},
        {"values": {}, "what": "new board meeting"},
    ]
    with Session(engine) as session:
        first = load_draft(session, user_id=1001, at=AT).draft
        second = load_draft(session, user_id=1002, at=AT).draft
    engine.dispose()
    assert first is not None and first.shown and first.values == {"ref": "SOC-1"}
    assert second is not None and not second.shown and second.step == "title"


def _stored(engine: Engine, at: datetime) -> object:
    """The time as the bot's column type keeps it: SQLite's text is UTC without an offset."""
    return at.replace(tzinfo=None).isoformat(" ") if engine.dialect.name == "sqlite" else at
