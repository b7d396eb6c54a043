"""Joining with an invite, /help, /whoami, and what outsiders see."""

from __future__ import annotations

import logging

import pytest
from markupsafe import escape
from sqlmodel import select

from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser
from csp_bot.models.audit import CLI
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView, create_invite, get_member
from csp_bot.models.tables import AuditEntry, Invite, Member
from tests.harness import OUTSIDER, PEOPLE, Harness

NEWCOMER = EmulatedUser(2001, "Jo", "Constable")


def new_invite(db: Database, clock: FakeClock, *, role: str = "partner", days: int = 7) -> str:
    invite = db.call(
        create_invite,
        organisation="Northants Police",
        role=role,
        at=clock(),
        days=days,
        actor=CLI,
    )
    return invite.code


def member_count(db: Database) -> int:
    return len(db.call(lambda session: session.exec(select(Member)).all()))


async def test_invite_registers_and_greets_by_name(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    code = new_invite(db, clock)
    text = await bot.reply(NEWCOMER, f"/start {code}")
    assert "Welcome, Jo Constable!" in text
    assert "partner for <b>Northants Police</b>" in text
    assert "/whoami – your name, organisation and role" in text
    member = db.call(get_member, telegram_id=NEWCOMER.id)
    assert member is not None
    assert (member.organisation, member.role.value) == ("Northants Police", "partner")
    assert "Organisation: Northants Police" in await bot.reply(NEWCOMER, "/whoami")


async def test_invite_works_once(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    code = new_invite(db, clock)
    await bot.send(NEWCOMER, f"/start {code}")
    second = EmulatedUser(2002, "Sam")
    text = await bot.reply(second, f"/start {code}")
    assert "already been used" in text
    assert "Nothing has been registered." in text
    assert db.call(get_member, telegram_id=second.id) is None


async def test_invite_expires_after_seven_days(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    code = new_invite(db, clock)
    before = member_count(db)
    clock.advance(days=7, seconds=1)
    text = await bot.reply(NEWCOMER, f"/start {code}")
    assert "has expired" in text and "last 7 days" in text
    assert member_count(db) == before
    used = db.call(lambda s: s.exec(select(Invite).where(Invite.code == code)).one())
    assert used.used_at is None


async def test_made_up_code_registers_nothing(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    before = member_count(db)
    text = await bot.reply(NEWCOMER, "/start not-a-real-code")
    assert "isn't one I know" in text
    assert member_count(db) == before


async def test_redeeming_writes_the_audit_trail(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    code = new_invite(db, clock)
    await bot.send(NEWCOMER, f"/start {code}")
    entries = db.call(
        lambda s: s.exec(
            select(AuditEntry).where(AuditEntry.entity.in_(["member", "invite"]))
        ).all()  # type: ignore[attr-defined]
    )
    changes = [(entry.entity, entry.change) for entry in entries]
    assert ("member", "created") in changes
    assert ("invite", "updated") in changes
    redeemed = next(e for e in entries if e.entity == "invite" and e.change == "updated")
    assert redeemed.before is not None and redeemed.before["used_at"] is None
    assert redeemed.after is not None and redeemed.after["used_at"] is not None


async def test_command_menus(
    bot: Harness, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    from csp_bot.handlers.policy import COMMANDS

    assert [c["command"] for c in emulator.get_commands()] == [spec.name for spec in COMMANDS]
    await bot.send(PEOPLE["observer"].user, "/start")
    scope = {"type": "chat", "chat_id": PEOPLE["observer"].user.id}
    observer_menu = [c["command"] for c in emulator.get_commands(scope)]
    assert "help" in observer_menu and "update" not in observer_menu


async def test_start_greets_an_existing_member(bot: Harness, people: dict[str, MemberView]) -> None:
    text = await bot.reply(PEOPLE["chair"].user, "/start")
    assert text.startswith("Hello again, Sarah.")
    assert "board chair" in text


@pytest.mark.parametrize("role_key", sorted(PEOPLE))
async def test_help_lists_the_role_commands_and_the_case_data_rule(
    bot: Harness, people: dict[str, MemberView], role_key: str
) -> None:
    from csp_bot.handlers.policy import commands_for

    member = people[role_key]
    text = await bot.reply(PEOPLE[role_key].user, "/help")
    for spec in commands_for(member.role):
        assert f"{escape(spec.usage)} – {escape(spec.summary)}" in text
    assert "Never send case details about victims or offenders" in text
    assert "E-Cins" in text


async def test_whoami_shows_name_organisation_and_role(
    bot: Harness, people: dict[str, MemberView]
) -> None:
    text = await bot.reply(PEOPLE["police"].user, "/whoami")
    assert text == "<b>Dan</b>\nOrganisation: Northants Police\nRole: partner"


async def test_typed_text_is_escaped_when_echoed(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    sly = EmulatedUser(2003, "<b>Ann</b> & <i>co</i>")
    await bot.send(sly, f"/start {new_invite(db, clock)}")
    text = await bot.reply(sly, "/whoami")
    assert text.startswith("<b>&lt;b&gt;Ann&lt;/b&gt; &amp; &lt;i&gt;co&lt;/i&gt;</b>")


@pytest.mark.parametrize(
    "text", ["hello", "/help", "/whoami", "/start", "/status", "/update SOC-1 red", "/summary"]
)
async def test_outsiders_learn_how_to_join_and_nothing_else(
    bot: Harness, people: dict[str, MemberView], text: str
) -> None:
    reply = await bot.reply(OUTSIDER, text)
    assert reply.startswith("Hello Stranger. I'm the assistant for the members")
    assert "ask your partnership coordinator for an invite link" in reply
    assert "SOC" not in reply and "Citadel" not in reply


async def test_outsiders_sending_a_file_learn_how_to_join(
    bot: Harness, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [reply] = await bot.process(emulator.build_photo_update(OUTSIDER, content=b"\x89PNG"))
    assert "ask your partnership coordinator for an invite link" in reply.text


async def test_outsider_pressing_a_button_gets_nothing(
    bot: Harness, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    sent = await bot.send(PEOPLE["police"].user, "/help")
    replies = await bot.press(OUTSIDER, sent[0], "anything")
    assert [m.text for m in replies] == [replies[0].text]
    assert "invite link" in replies[0].text
    assert emulator.callback_answers[-1]["text"] == "Only partnership members can use this bot."


async def test_deactivated_member_is_an_outsider(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    def deactivate(session):  # type: ignore[no-untyped-def]
        member = session.exec(select(Member).where(Member.telegram_id == 1004)).one()
        member.active = False

    db.call(deactivate)
    assert "invite link" in await bot.reply(PEOPLE["police"].user, "/whoami")


async def test_unknown_command_gives_a_hint(bot: Harness, people: dict[str, MemberView]) -> None:
    text = await bot.reply(PEOPLE["police"].user, "/frobnicate now")
    assert text == "I don't know /frobnicate. Send /help for the commands you can use."


async def test_stray_text_points_to_help(bot: Harness, people: dict[str, MemberView]) -> None:
    text = await bot.reply(PEOPLE["police"].user, "what's going on?")
    assert "Send /help" in text


async def test_group_chatter_gets_no_reply(bot: Harness, people: dict[str, MemberView]) -> None:
    sent = await bot.send(PEOPLE["police"].user, "morning all", chat_id=-100, chat_type="group")
    assert sent == []


async def test_an_error_is_apologised_for_and_the_next_update_served(
    bot: Harness,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import csp_bot.handlers.membership

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database fell over")

    monkeypatch.setattr(csp_bot.handlers.membership, "commands_for", broken)
    with caplog.at_level(logging.ERROR):
        text = await bot.reply(PEOPLE["police"].user, "/help")
    assert text.startswith("Sorry, something went wrong on my side")
    assert "database fell over" in caplog.text
    monkeypatch.undo()
    assert "Organisation" in await bot.reply(PEOPLE["police"].user, "/whoami")
