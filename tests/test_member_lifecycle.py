"""Members over time: invites redeemed once even by a crowd, /members and the command
line's list, deactivate and remove, and what a deactivated member meets afterwards."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from csp_bot.bot.cli import main
from csp_bot.bot.demo import EXAMPLE_PLAN
from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser, SentMessage
from csp_bot.bot.settings import Settings
from csp_bot.handlers.context import CspApplication
from csp_bot.models.audit import CLI
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database, make_engine
from csp_bot.models.enums import Role, Status
from csp_bot.models.errors import DomainError
from csp_bot.models.lifecycle import deactivate_member, remove_member
from csp_bot.models.membership import InviteError, MemberView, create_invite, redeem_invite
from csp_bot.models.migrate import upgrade
from csp_bot.models.plan_import import import_plan_file
from csp_bot.models.tables import AuditEntry, DialogueDraft, Invite, Member
from tests.conftest import POSTGRES_URL, START, link, postgres_schema_url, register
from tests.harness import PEOPLE, Harness, Person
from tests.reminder_helpers import set_clock, texts, tick
from tests.test_membership import new_invite
from tests.test_summary import log

COORDINATOR = PEOPLE["coordinator"].user
CHAIR = PEOPLE["chair"].user
POLICE = PEOPLE["police"].user
CROWD = 20


def buttons(message: SentMessage) -> dict[str, str]:
    """A message's inline buttons: label to callback data."""
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    return {b["text"]: b["callback_data"] for row in rows for b in row}


def member_row(db: Database, telegram_id: int) -> Member:
    return db.call(lambda s: s.exec(select(Member).where(Member.telegram_id == telegram_id)).one())


def audit_of(db: Database, entity: str, entity_id: int | None = None) -> list[AuditEntry]:
    def read(session: Session) -> list[AuditEntry]:
        query = select(AuditEntry).where(AuditEntry.entity == entity)
        if entity_id is not None:
            query = query.where(AuditEntry.entity_id == entity_id)
        return list(session.exec(query.order_by(col(AuditEntry.id))).all())

    return db.call(read)


# --- one code, one member, however many redeem it at once --------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def crowd_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database with the sample plan, on each backend (PostgreSQL when configured)."""
    if request.param == "postgresql":
        if not POSTGRES_URL:
            pytest.skip("CSPBOT_TEST_DATABASE_URL is not set: no PostgreSQL to redeem against")
        urls: Iterator[str] = postgres_schema_url()
        url = next(urls)
    else:
        urls, url = iter(()), f"sqlite:///{tmp_path / 'crowd.db'}"
    database = Database(make_engine(url))
    upgrade(database.engine)
    database.call(import_plan_file, path=EXAMPLE_PLAN, at=START)
    database.close()
    yield url
    for _ in urls:  # drops the PostgreSQL schema
        pass


def test_twenty_people_redeeming_one_code_at_once_register_one(crowd_url: str) -> None:
    setup = Database(make_engine(crowd_url))
    invite = setup.call(
        create_invite,
        organisation="Northants Police",
        role="partner",
        at=START,
        days=7,
        actor=CLI,
    )
    start_line = threading.Barrier(CROWD)
    outcomes: dict[int, str] = {}

    def redeem(telegram_id: int) -> None:
        # Each person on a connection of their own, all released at the same instant.
        database = Database(make_engine(crowd_url))
        try:
            start_line.wait(timeout=30)
            database.call(
                redeem_invite, code=invite.code, telegram_id=telegram_id, name="N", at=START
            )
            outcomes[telegram_id] = "joined"
        except InviteError as refused:
            outcomes[telegram_id] = str(refused)
        finally:
            database.close()

    people = [threading.Thread(target=redeem, args=(5000 + n,)) for n in range(CROWD)]
    for person in people:
        person.start()
    for person in people:
        person.join(timeout=60)
    assert sorted(outcomes.values()) == ["joined"] + ["used"] * (CROWD - 1)
    members = setup.call(lambda s: s.exec(select(Member)).all())
    [joined] = [telegram_id for telegram_id, outcome in outcomes.items() if outcome == "joined"]
    assert [m.telegram_id for m in members] == [joined]
    stored = setup.call(lambda s: s.exec(select(Invite)).one())
    assert stored.used_by_member_id == members[0].id
    setup.close()


# --- a deactivated member cannot come back through an invite ---------------------------------


async def test_a_deactivated_member_is_refused_by_an_invite_and_the_coordinator_told(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    db.call(deactivate_member, member_id=people["police"].id, at=clock(), actor=CLI)
    code = new_invite(db, clock)
    [reply, notice] = await bot.send(POLICE, f"/start {code}")
    assert reply.chat_id == POLICE.id and notice.chat_id == COORDINATOR.id
    text = reply.text
    assert "Your membership was ended by the partnership coordinator" in text
    assert "Nothing has been registered." in text
    assert member_row(db, POLICE.id).active is False
    invite = db.call(lambda s: s.exec(select(Invite).where(Invite.code == code)).one())
    assert invite.used_at is None  # still there for whoever it was meant for
    assert notice.text.startswith(
        f"<b>Dan</b> (member {people['police'].id}, partner, Northants Police), whose access"
    )
    assert "csp-bot member add --telegram-id 1004" in notice.text
    [refused] = [e for e in audit_of(db, "member") if e.change == "rejoin refused"]
    assert refused.entity_id == people["police"].id and refused.after == {"invite_id": invite.id}
    assert "invite link" in await bot.reply(POLICE, "/whoami")


async def test_the_coordinator_brings_a_deactivated_member_back(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    people: dict[str, MemberView],
    cli_at: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db.call(deactivate_member, member_id=people["police"].id, at=clock(), actor=CLI)
    args = ["--telegram-id", "1004", "--name", "Dan", "--org", "Northants Police"]
    assert main(["member", "add", *args, "--role", "partner"]) == 0
    assert "Organisation: Northants Police" in await bot.reply(POLICE, "/whoami")
    assert member_row(db, POLICE.id).deactivated_at is None


# --- /members in chat ------------------------------------------------------------------------


async def test_members_lists_everyone_for_the_coordinator(
    bot: Harness, people: dict[str, MemberView]
) -> None:
    [listing] = await bot.send(COORDINATOR, "/members")
    assert listing.text.startswith("<b>Members</b>: 5 active\n")
    police = people["police"]
    assert f"{police.id}. <b>Dan</b>, partner, Northants Police (joined Thu 10 Jun 2021)" in (
        listing.text
    )
    labels = buttons(listing)
    assert labels["🚫 Deactivate Dan"] == f"mb:d:{police.id}"
    assert "🚫 Deactivate Mike" not in labels  # not yourself


async def test_members_is_not_shown_in_a_group(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    link(db, clock, -100)
    text = await bot.reply(COORDINATOR, "/members", chat_id=-100, chat_type="group")
    assert text == "Send /members to me in a private chat."


async def test_members_come_ten_to_a_page(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    for n in range(8):
        register(
            db, clock, Person(EmulatedUser(3000 + n, f"Extra{n}"), "Northants Police", "board")
        )
    [listing] = await bot.send(COORDINATOR, "/members")
    assert listing.text.startswith("<b>Members</b>: 13 active (page 1 of 2)\n")
    assert buttons(listing)["Next ›"] == "mb:p:1"
    await bot.press(COORDINATOR, listing, "mb:p:1")
    second = bot.emulator.last_message(COORDINATOR.id)
    assert second.text.startswith("<b>Members</b>: 13 active (page 2 of 2)\n")
    assert buttons(second)["‹ Previous"] == "mb:p:0"
    assert len([b for b in buttons(second) if b.startswith("🚫")]) == 3


@pytest.mark.parametrize("who", ["chair", "board", "police", "observer"])
async def test_members_is_for_the_coordinator_only(
    bot: Harness, people: dict[str, MemberView], who: str
) -> None:
    text = await bot.reply(PEOPLE[who].user, "/members")
    assert "/members" in text and "Dan" not in text


async def test_deactivating_from_chat_ends_access_drafts_and_reminders(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    app: CspApplication,
    people: dict[str, MemberView],
) -> None:
    colleague = Person(EmulatedUser(1014, "Kim", "Sergeant"), "Northants Police", "partner")
    register(db, clock, colleague)
    await bot.send(POLICE, "/update")  # a guided update left open
    assert db.call(lambda s: s.get(DialogueDraft, POLICE.id)) is not None
    [listing] = await bot.send(COORDINATOR, "/members")
    assert await bot.press(COORDINATOR, listing, f"mb:d:{people['police'].id}") == []
    confirm = emulator.last_message(COORDINATOR.id)
    assert confirm.text.startswith(
        "Deactivate <b>Dan</b> (partner, Northants Police)?\n\nTheir access ends now"
    )
    assert buttons(confirm)["🚫 Yes, deactivate"] == f"mb:y:{people['police'].id}"
    await bot.press(COORDINATOR, confirm, f"mb:y:{people['police'].id}")
    done = emulator.last_message(COORDINATOR.id)
    assert done.text.startswith(
        "✅ <b>Dan</b> is deactivated. Their unfinished form was discarded.\n\n"
        "<b>Members</b>: 5 active"
    )
    assert "No longer active</b>\n" + f"{people['police'].id}. Dan, Northants Police: " in (
        done.text
    )
    assert emulator.callback_answers[-1]["text"] == "Dan deactivated"
    assert db.call(lambda s: s.get(DialogueDraft, POLICE.id)) is None
    [entry] = [e for e in audit_of(db, "member", people["police"].id) if e.change == "updated"]
    assert entry.member_id == people["coordinator"].id and entry.actor == (
        f"member {people['coordinator'].id}"
    )
    assert entry.before is not None and entry.after is not None
    assert (entry.before["active"], entry.after["active"]) == (True, False)
    assert "invite link" in await bot.reply(POLICE, "/my")
    # Police actions due soon remind the force's partners: the colleague, no longer Dan.
    seen = len(texts(emulator, "police"))
    set_clock(clock, "2022-03-24T09:30")
    await tick(app)
    assert any("SOC-1" in m.text for m in emulator.messages(colleague.user.id))
    assert len(texts(emulator, "police")) == seen


async def test_a_deactivate_button_is_checked_when_pressed(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    [listing] = await bot.send(COORDINATOR, "/members")
    target = people["board"].id
    # The chair was never offered it: pressing the coordinator's button is refused.
    chair_sees = await bot.send(CHAIR, "/help")
    await bot.press(CHAIR, chair_sees[0], f"mb:y:{target}")
    assert emulator.callback_answers[-1]["text"] == "Not available to your role."
    # A coordinator who lost the role since the list was shown is refused too.
    demoted = people["coordinator"]
    db.call(lambda s: s.get_one(Member, demoted.id).__setattr__("role", Role.PARTNER))
    await bot.press(COORDINATOR, listing, f"mb:y:{target}")
    assert emulator.callback_answers[-1]["text"] == "Not available to your role."
    assert member_row(db, PEOPLE["board"].user.id).active is True


@pytest.mark.parametrize(
    "data",
    ["mb:y:²", "mb:y:" + "9" * 40, "mb:x:1", "mb:y", "mb:d:424242", "mb:y:424242", "mb:dy:3"],
)
async def test_a_malformed_members_button_has_expired(
    bot: Harness, emulator: BotApiEmulator, people: dict[str, MemberView], data: str
) -> None:
    [listing] = await bot.send(COORDINATOR, "/members")
    assert await bot.press(COORDINATOR, listing, data) == []
    assert emulator.callback_answers[-1]["text"] == "That button has expired. Send /members again."


def test_the_last_coordinator_cannot_be_deactivated(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    with pytest.raises(DomainError, match="Mike is the only active coordinator"):
        db.call(deactivate_member, member_id=people["coordinator"].id, at=clock(), actor=CLI)
    with pytest.raises(DomainError, match="Mike is the only active coordinator"):
        db.call(remove_member, member_id=people["coordinator"].id, at=clock(), actor=CLI)


# --- the command line -------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_member_list_deactivate_and_remove(
    db: Database,
    clock: FakeClock,
    people: dict[str, MemberView],
    cli_at: Path,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    police, observer = people["police"], people["observer"]
    code, out, _ = run(capsys, "member", "list")
    assert code == 0
    assert f"{police.id:>4}          1004  Dan  partner  Northants Police  active" in out
    code, out, _ = run(capsys, "member", "deactivate", str(police.id))
    assert (code, out.splitlines()[0]) == (
        0,
        f"deactivated member {police.id} (Dan): the bot now treats them as a",
    )
    assert run(capsys, "member", "deactivate", str(police.id))[1] == (
        f"member {police.id} (Dan) was already deactivated\n"
    )
    _, out, _ = run(capsys, "member", "list", "--active")
    assert "Dan" not in out and "Olu" in out
    _, out, _ = run(capsys, "member", "list")
    assert "Dan  partner  Northants Police  deactivated " in out
    # The observer has nothing on record: removed outright, with an audit entry.
    code, out, _ = run(capsys, "member", "remove", str(observer.id))
    assert (code, out) == (
        0,
        f"removed member {observer.id} (Olu, East Midlands Ambulance Service)\n",
    )
    assert db.call(lambda s: s.get(Member, observer.id)) is None
    assert [e.change for e in audit_of(db, "member", observer.id)] == ["created", "deleted"]
    assert "Olu" not in str([e.before for e in audit_of(db, "member", observer.id)])


def test_remove_refuses_a_member_on_record(
    db: Database,
    clock: FakeClock,
    people: dict[str, MemberView],
    cli_at: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log(db, clock, people["police"], "SOC-1", Status.GREEN, "On track")
    code, _, err = run(capsys, "member", "remove", str(people["police"].id))
    assert code == 2
    assert err.startswith(
        f"csp-bot: member {people['police'].id} (Dan) cannot be removed: the partnership's "
        "records refer to them (1 progress updates, 2 audit entries of changes they made)."
    )
    assert f"csp-bot member deactivate {people['police'].id}" in err
    assert member_row(db, POLICE.id).active is True
    assert run(capsys, "member", "remove", "4242")[2] == (
        "csp-bot: no member 4242: `csp-bot member list` shows every member's id\n"
    )


async def test_an_outsider_invited_joins_as_before(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    newcomer = EmulatedUser(2001, "Jo", "Constable")
    assert "Welcome, Jo Constable!" in await bot.reply(newcomer, f"/start {new_invite(db, clock)}")
