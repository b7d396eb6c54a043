"""Every button is checked like a command when pressed: forged, malformed, oversized and
stale callback data gets "That button has expired", is logged, and changes nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlmodel import SQLModel, select

from csp_bot.bot.emulator import BotApiEmulator, SentMessage
from csp_bot.handlers.context import CspApplication
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from csp_bot.models.tables import Action, ActionSnooze, AuditEntry, Organisation
from tests.harness import OUTSIDER, PEOPLE, Harness
from tests.reminder_helpers import schedule, tick

pytestmark = pytest.mark.sqlite_only
COORDINATOR = PEOPLE["coordinator"].user
EXPIRED = "That button has expired"
# The command that shows each registered pattern's buttons, and the pattern's prefix.
PATTERNS = {
    "u": "/update",
    "fm:meeting": "/meeting",
    "fm:decide": "/decide",
    "dg": "/update",
    "mt": "/meetings",
    "mb": "/members",
    "rm": "/reminders",
    "ck": "/my",
    "a": "/history SOC-1",
    "h": "/history SOC-1",
    "sm": "/summary",
    "zz": "/help",  # no handler's pattern: the fallback
}


def forged_payloads(prefix: str) -> list[str]:
    """Data no button of the bot carries: wrong shapes, odd digits, huge numbers, too long."""
    tails = [
        "",
        "²",
        "١",  # an Arabic-Indic one: a decimal digit to Python, no ASCII
        "9" * 40,
        "99999999999",
        "2147483648",
        "-1",
        "1:²",
        "²:²",
        "0:²",
        "1:2:3:4:5",
        "p:²",
        "p:99999999999999999999",
        "a:NOPE-1",
        "s:purple",
        "f:maybe",
        "r:1:q",
        "r:²:a",
        "i:99999999999999",
        "w:-5",
        "d:²",
        "y:99999999999999",
        "t:nothing",
        "s:365",
        "99999:g",
        "99999999999999999999:z",
        "1:q",
        "NOPE-9",
        "SOC-1:²",
        "SOC-1:99999999999999999999",
        "x:x",
        "back:1",
        "\x00",
        "A" * 70,  # over Telegram's 64 bytes
        "é" * 40,  # 80 bytes in 40 characters
    ]
    return [f"{prefix}:{tail}" for tail in tails]


def database_rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to compare before and after."""

    def read(session: Any) -> dict[str, list[tuple[Any, ...]]]:
        rows = {}
        for table in SQLModel.metadata.sorted_tables:
            found = session.connection().execute(table.select()).all()
            rows[table.name] = sorted(tuple(map(repr, row)) for row in found)
        return rows

    return db.call(read)


async def shown_by(bot: Harness, command: str) -> SentMessage:
    sent = await bot.send(COORDINATOR, command)
    assert sent, command
    return sent[-1]


@pytest.mark.parametrize("prefix", sorted(PATTERNS))
async def test_forged_payloads_are_expired_buttons(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    caplog: pytest.LogCaptureFixture,
    prefix: str,
) -> None:
    caplog.set_level(logging.INFO)
    schedule(db, clock, "2021-06-24T10:00")
    message = await shown_by(bot, PATTERNS[prefix])
    before = database_rows(db)
    for data in forged_payloads(prefix):
        update = emulator.build_callback_update(COORDINATOR, message.message_id, data)
        sent = await bot.process(update)
        answer = emulator.callback_answers[-1]
        assert answer["data"] == data
        assert answer["text"].startswith(EXPIRED), (data, answer["text"])
        assert not [m.text for m in sent if "Sorry" in m.text], data
        assert f"callback data {data[:80]!r}" in caplog.text, data
    assert database_rows(db) == before


def _answers_for(emulator: BotApiEmulator, data: str) -> list[str]:
    return [a["text"] for a in emulator.callback_answers if a["data"] == data]


async def test_a_partner_cannot_snooze_another_organisations_check_ins(
    app: CspApplication,
    bot: Harness,
    clock: FakeClock,
    db: Database,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    caplog: pytest.LogCaptureFixture,
) -> None:
    police = PEOPLE["police"].user
    others = db.call(lambda s: s.exec(select(Action).where(Action.lead_organisation_id != 0)).all())
    own = people["police"].organisation_id
    foreign = next(a for a in others if a.lead_organisation_id != own)
    data = f"ck:{foreign.id}:z"
    # The press comes from the partner's own chat, with a button the bot never sent them.
    reply = await bot.send(police, "/help")
    update = emulator.build_callback_update(police, reply[-1].message_id, data)
    await bot.process(update)
    assert _answers_for(emulator, data) == [
        f"{foreign.ref} is led by {_lead(db, foreign)}. Partners can update only their own "
        f"organisation's actions ({people['police'].organisation})."
    ]
    assert f"refused check-in snooze of {foreign.ref}" in caplog.text
    assert db.call(lambda s: s.get(ActionSnooze, foreign.id)) is None
    # Their own action's snooze, on the check-in the bot sent them, is taken and audited.
    clock.advance(days=28)
    await tick(app)
    prompt = next(m for m in emulator.messages(police.id) if "has had no update" in m.text)
    own_data = next(data for _, data in emulator.buttons(prompt) if data.endswith(":z"))
    mine = db.call(lambda s: s.get(Action, int(own_data.split(":")[1])))
    assert mine is not None and mine.lead_organisation_id == own
    sent = await bot.press(police, prompt, own_data)
    assert _answers_for(emulator, own_data) == ["Snoozed for a week"]
    assert sent and mine.ref in sent[-1].text
    snoozed = db.call(lambda s: s.get(ActionSnooze, mine.id))
    assert snoozed is not None and snoozed.member_id == people["police"].id
    audited = db.call(
        lambda s: s.exec(select(AuditEntry).where(AuditEntry.entity == "action_snooze")).all()
    )
    assert [(entry.after or {}).get("action_id") for entry in audited] == [mine.id]
    assert [entry.member_id for entry in audited] == [people["police"].id]


def _lead(db: Database, action: Action) -> str:
    organisation = db.call(lambda s: s.get(Organisation, action.lead_organisation_id))
    assert organisation is not None
    return organisation.name


async def test_an_observer_cannot_snooze_a_check_in(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    observer = PEOPLE["observer"].user
    action = db.call(lambda s: s.exec(select(Action)).first())
    assert action is not None
    reply = await bot.send(observer, "/help")
    data = f"ck:{action.id}:z"
    await bot.process(emulator.build_callback_update(observer, reply[-1].message_id, data))
    assert _answers_for(emulator, data) == [
        "Board members and observers can read progress but not update it."
    ]
    assert db.call(lambda s: s.get(ActionSnooze, action.id)) is None


async def test_an_outsider_pressing_a_snooze_is_told_how_to_join(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    action = db.call(lambda s: s.exec(select(Action)).first())
    assert action is not None
    reply = await bot.send(OUTSIDER, "/start")
    data = f"ck:{action.id}:z"
    await bot.process(emulator.build_callback_update(OUTSIDER, reply[-1].message_id, data))
    assert _answers_for(emulator, data) == ["Only partnership members can use this bot."]
    assert db.call(lambda s: s.get(ActionSnooze, action.id)) is None
