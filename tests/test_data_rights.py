"""A member's data rights from the command line: export everything held, erase, export
again and find nothing personal; an erased person who writes again is a stranger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from csp_bot.bot.cli import main
from csp_bot.bot.emulator import BotApiEmulator
from csp_bot.bot.member_export import export_page
from csp_bot.handlers.templating import Templates
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from csp_bot.models.tables import AuditEntry, DialogueDraft, InboxUpdate, Member, ProgressUpdate
from tests.conftest import START
from tests.harness import PEOPLE, Harness
from tests.reminder_helpers import schedule

CHAIR = PEOPLE["chair"].user
# What identifies the chair: her name as registered, her Telegram id, her username.
PERSONAL = ("Sarah", "1002", "sarah_chair")


async def chair_uses_the_bot(
    bot: Harness, db: Database, clock: FakeClock, emulator: BotApiEmulator
) -> None:
    """An update and a note, a meeting reply, a reminder setting, a draft and an inbox row."""
    await bot.send(CHAIR, "/update SOC-1 amber Waiting on the PFCC framework")
    await bot.press(CHAIR, emulator.last_message(CHAIR.id), "u:f:yes")
    meeting = schedule(db, clock, "2021-07-15T10:00")
    [listing] = await bot.send(CHAIR, "/meetings")
    await bot.press(CHAIR, listing, f"mt:r:{meeting.id}:a")
    [settings] = await bot.send(CHAIR, "/reminders")
    await bot.press(CHAIR, settings, "rm:t:deadlines")
    await bot.send(CHAIR, "/update")  # left open: a draft
    db.call(store_inbox_row)


def store_inbox_row(session: Session) -> None:
    """A message of the chair's in the inbox, as Telegram sent it (with her username)."""
    payload = {
        "update_id": 77,
        "message": {
            "message_id": 5,
            "date": 0,
            "chat": {"id": -100500, "type": "group"},
            "from": {"id": 1002, "is_bot": False, "first_name": "Sarah", "username": "sarah_chair"},
            "text": "/status",
        },
    }
    session.add(InboxUpdate(update_id=77, chat_key=-100500, payload=payload, received_at=START))


def export(cli_at: Path, member_id: int, name: str) -> tuple[dict[str, Any], str]:
    assert main(["member", "export", str(member_id), "--out", str(cli_at / f"{name}.json")]) == 0
    data = json.loads((cli_at / f"{name}.json").read_text())
    return data, (cli_at / f"{name}.html").read_text()


async def test_export_erase_export_shows_nothing_personal(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    cli_at: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await chair_uses_the_bot(bot, db, clock, emulator)
    chair = people["chair"].id
    data, page = export(cli_at, chair, "before")
    assert data["profile"] == data["profile"] | {
        "id": chair,
        "name": "Sarah",
        "telegram_id": 1002,
        "organisation": "North Northamptonshire Council",
        "role": "chair",
        "standing": "active",
    }
    assert [u["note"] for u in data["progress_updates"]] == ["Waiting on the PFCC framework"]
    assert data["progress_updates"][0]["forecast"] == "Expected to recover by the due date"
    assert [r["reply"] for r in data["meeting_replies"]] == ["attending"]
    assert data["reminder_settings"]["muted"] == ["deadlines"]
    assert [d["kind"] for d in data["open_drafts"]] == ["update"]
    assert [m["message"]["from"]["username"] for m in data["messages_held"]] == ["sarah_chair"]
    assert [h["role"] for h in data["role_history"]] == ["chair"]
    changes = {(e["entity"], e["change"]) for e in data["audit_entries"]}
    assert {("progress_update", "created"), ("meeting_reply", "created")} <= changes
    assert ("reminder_preference", "created") in changes and ("member", "created") in changes
    assert "<h1>What the CSP Bot holds about Sarah</h1>" in page
    assert "Waiting on the PFCC framework" in page and "Replies to board meetings" in page

    assert main(["member", "erase", str(chair)]) == 2
    assert "cannot be undone" in capsys.readouterr().err
    assert db.call(lambda s: s.get_one(Member, chair)).name == "Sarah"  # nothing done
    assert main(["member", "erase", str(chair), "--yes"]) == 0
    assert f'erased member {chair}: now "former member {chair}"' in capsys.readouterr().out

    after, page = export(cli_at, chair, "after")
    for text in (json.dumps(after), page):
        for personal in PERSONAL:
            assert personal not in text
    assert after["profile"] == after["profile"] | {
        "name": f"former member {chair}",
        "telegram_id": None,
        "standing": "erased",
    }
    # The partnership's record of what was done stays.
    assert [u["note"] for u in after["progress_updates"]] == ["Waiting on the PFCC framework"]
    assert [r["reply"] for r in after["meeting_replies"]] == ["attending"]
    assert after["open_drafts"] == [] and after["messages_held"] == []
    assert after["reminder_settings"] is None
    assert db.call(lambda s: s.get(DialogueDraft, 1002)) is None


async def test_the_audit_trail_names_nobody_once_erased(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    cli_at: Path,
) -> None:
    await chair_uses_the_bot(bot, db, clock, emulator)
    assert main(["member", "erase", str(people["chair"].id), "--yes"]) == 0
    entries = db.call(lambda s: s.exec(select(AuditEntry)).all())
    text = json.dumps([(e.actor, e.before, e.after) for e in entries], default=str)
    for personal in PERSONAL:
        assert personal not in text
    mine = [e for e in entries if e.member_id == people["chair"].id]
    assert mine and {e.actor for e in mine} == {f"member {people['chair'].id}"}
    # Her update is still the action's, and reads as the former member's.
    update = db.call(
        lambda s: s.exec(
            select(ProgressUpdate).where(col(ProgressUpdate.member_id) == people["chair"].id)
        ).one()
    )
    assert update.note == "Waiting on the PFCC framework"
    history = await bot.reply(PEOPLE["police"].user, "/history SOC-1")
    assert f"former member {people['chair'].id}, North Northamptonshire Council:" in history
    assert "Sarah" not in history


async def test_an_erased_person_who_writes_again_is_a_stranger(
    bot: Harness, db: Database, people: dict[str, MemberView], cli_at: Path
) -> None:
    assert main(["member", "erase", str(people["chair"].id), "--yes"]) == 0
    for text in ("/whoami", "/start", "/status"):
        reply = await bot.reply(CHAIR, text)
        assert reply.startswith("Hello Sarah. I'm the assistant for the members")
        assert "SOC" not in reply
    assert main(["member", "erase", str(people["chair"].id), "--yes"]) == 0  # harmless again


def test_export_and_erase_of_an_unknown_member(
    db: Database, people: dict[str, MemberView], cli_at: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["member", "export", "4242", "--out", "x.json"]) == 2
    assert "no member 4242" in capsys.readouterr().err
    assert not (cli_at / "x.json").exists() and not (cli_at / "x.html").exists()
    assert main(["member", "erase", "4242", "--yes"]) == 2
    capsys.readouterr()
    assert main(["member", "export", str(people["police"].id), "--out", "no/such/dir.json"]) == 2
    assert capsys.readouterr().err.startswith("csp-bot: cannot write no/such/dir.json")


def test_the_last_coordinator_cannot_be_erased(
    db: Database, people: dict[str, MemberView], cli_at: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["member", "erase", str(people["coordinator"].id), "--yes"]) == 2
    assert "only active coordinator" in capsys.readouterr().err


def test_the_export_page_escapes_what_it_shows(templates: Templates) -> None:
    data = {
        "exported_at": "2021-06-10T09:00:00+00:00",
        "profile": {"id": 7, "name": "<script>x()</script>"},
        "progress_updates": [{"note": "<b>bold</b> & co"}],
        "messages_held": [
            {"update_id": 1, "message": {"text": "hi"}},
            {"update_id": 2, "callback_query": {}},
        ],
    }
    page = export_page(data, templates)
    assert "<script>" not in page and "&lt;script&gt;x()&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page
    # Records of different shapes share one table: every key is a column.
    assert "<th>update id</th><th>message</th><th>callback query</th>" in page
