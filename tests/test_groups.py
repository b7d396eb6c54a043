"""Groups are linked, not assumed: the bot answers plan data only in groups the coordinator
has linked, only to members, and only what the group's audience may see."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser, SentMessage
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.groups import list_groups
from csp_bot.models.membership import MemberView
from csp_bot.models.tables import AuditEntry
from tests.conftest import link
from tests.harness import OUTSIDER, PEOPLE, Harness
from tests.reminder_helpers import schedule
from tests.test_cli import env, run_cli  # noqa: F401  (the command-line test setup)

pytestmark = pytest.mark.sqlite_only
GROUP = -100777
NOT_SET_UP = "This bot is not set up for this chat."
READS = [
    "/my",
    "/action SOC-1",
    "/history SOC-1",
    "/status",
    "/priority SOC",
    "/summary",
    "/report",
    "/meetings",
    "/funding",
    "/deadlines",
    "/help",
    "/whoami",
]
# What observers may not see, so a partnership group is not shown it.
BOARD_ONLY = {"/summary", "/report", "/funding"}
COORDINATOR = PEOPLE["coordinator"].user
CHAIR = PEOPLE["chair"].user


def seen(sent: list[SentMessage]) -> list[tuple[str, str | None]]:
    """What a reply shows: each message's text and any file's name."""
    return [(message.text, message.filename) for message in sent]


async def in_group(bot: Harness, user: EmulatedUser, text: str) -> list[SentMessage]:
    return await bot.send(user, text, chat_id=GROUP, chat_type="supergroup")


@pytest.fixture
def meeting(db: Database, clock: FakeClock, people: dict[str, MemberView]) -> None:
    schedule(db, clock, "2021-06-24T10:00")


@pytest.mark.parametrize("command", READS)
@pytest.mark.parametrize("person", ["chair", "outsider"])
async def test_an_unlinked_group_gets_one_line(
    bot: Harness, meeting: None, command: str, person: str
) -> None:
    user = OUTSIDER if person == "outsider" else PEOPLE[person].user
    sent = await in_group(bot, user, command)
    assert [message.text for message in sent] == [NOT_SET_UP]


@pytest.mark.parametrize("command", READS)
@pytest.mark.parametrize("audience", ["board", "partnership"])
async def test_a_linked_group_answers_its_members_for_its_audience(
    bot: Harness, db: Database, clock: FakeClock, meeting: None, command: str, audience: str
) -> None:
    link(db, clock, GROUP, audience)
    assert [m.text for m in await in_group(bot, OUTSIDER, command)] == [NOT_SET_UP]
    answer = await in_group(bot, CHAIR, command)
    assert answer and all(message.chat_id == GROUP for message in answer)
    if audience == "partnership" and command in BOARD_ONLY:
        word = command.split()[0]
        assert seen(answer) == [
            (f"{word} is not shown in this group. Ask me in a private chat.", None)
        ]
    else:
        # The chair's group gets what the chair gets in private: the group may see it all.
        assert seen(answer) == seen(await bot.send(CHAIR, command))


async def test_a_member_sees_in_a_group_only_what_their_own_role_may(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    link(db, clock, GROUP, "board")
    text = await bot.reply(PEOPLE["observer"].user, "/summary", chat_id=GROUP, chat_type="group")
    assert text.startswith("Sorry, /summary isn't available to a")


async def test_buttons_in_a_group_are_checked_against_the_link(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    link(db, clock, GROUP, "board")
    [history] = await in_group(bot, CHAIR, "/history SOC-1")
    update = emulator.build_callback_update(
        OUTSIDER, history.message_id, "h:SOC-1:0", chat_id=GROUP
    )
    assert await bot.process(update) == []
    assert emulator.callback_answers[-1]["text"] == NOT_SET_UP


async def test_the_coordinator_links_and_the_link_is_audited(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    assert (
        await bot.reply(PEOPLE["police"].user, "/link board", chat_id=GROUP, chat_type="group")
        == NOT_SET_UP
    )
    assert await bot.reply(OUTSIDER, "/link board", chat_id=GROUP, chat_type="group") == NOT_SET_UP
    assert "/link board" in await bot.reply(COORDINATOR, "/link", chat_id=GROUP, chat_type="group")
    assert "in the group itself" in await bot.reply(COORDINATOR, "/link board")
    linked = await bot.reply(COORDINATOR, "/link partnership", chat_id=GROUP, chat_type="group")
    assert linked.startswith("✅ This group is linked as the partnership's group.")
    assert [(g.chat_id, g.audience.value) for g in db.call(list_groups)] == [(GROUP, "partnership")]
    await bot.reply(COORDINATOR, "/link board", chat_id=GROUP, chat_type="group")
    assert [g.audience.value for g in db.call(list_groups)] == ["board"]
    entries = db.call(
        lambda s: s.exec(
            select(AuditEntry).where(AuditEntry.entity == "group_link").order_by(col(AuditEntry.id))
        ).all()
    )
    assert [(e.change, e.member_id, (e.after or {}).get("audience")) for e in entries] == [
        ("created", people["coordinator"].id, "partnership"),
        ("updated", people["coordinator"].id, "board"),
    ]
    # A partner in the now linked group may still not link it.
    refused = await bot.reply(
        PEOPLE["police"].user, "/link partnership", chat_id=GROUP, chat_type="group"
    )
    assert refused.startswith("Sorry, /link isn't available to a")


@pytest.mark.parametrize("person", ["police", "outsider"])
async def test_added_by_anyone_but_the_coordinator_it_says_so_and_leaves(
    bot: Harness, emulator: BotApiEmulator, people: dict[str, MemberView], person: str
) -> None:
    user = OUTSIDER if person == "outsider" else PEOPLE[person].user
    sent = await bot.process(emulator.build_bot_added_update(user, GROUP))
    assert [m.text for m in sent] == [
        "Only the partnership's coordinator can add me to a group, so I am leaving."
    ]
    assert emulator.left_chat(GROUP)
    # Telegram tells the bot it has left; that changes nothing and says nothing.
    [left] = emulator.pending_updates()
    assert left["my_chat_member"]["new_chat_member"]["status"] == "left"
    assert await bot.process(left) == []


async def test_added_by_the_coordinator_it_stays_until_removed(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    [hello] = await bot.process(emulator.build_bot_added_update(COORDINATOR, GROUP))
    assert "/link board" in hello.text and not emulator.left_chat(GROUP)
    assert await bot.reply(CHAIR, "/status", chat_id=GROUP, chat_type="group") == NOT_SET_UP
    await bot.send(COORDINATOR, "/link board", chat_id=GROUP, chat_type="group")
    assert (await in_group(bot, CHAIR, "/status"))[0].text.startswith("<b>Plan status</b>")
    removed = emulator.build_bot_added_update(COORDINATOR, GROUP, removed=True)
    assert await bot.process(removed) == []
    assert db.call(list_groups) == []  # added again, it must be linked again


async def test_what_is_not_for_this_bot_gets_no_reply(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    link(db, clock, GROUP, "board")
    assert await in_group(bot, CHAIR, "/status@otherbot") == []
    assert await in_group(bot, CHAIR, "/nonsense@otherbot") == []
    assert await in_group(bot, OUTSIDER, "/status@otherbot") == []
    assert (await in_group(bot, CHAIR, "/status@csp_demo_bot"))[0].text.startswith("<b>Plan")
    post = {
        "update_id": 90001,
        "channel_post": {
            "message_id": 1,
            "date": 1623315600,
            "chat": {"id": -1009000, "type": "channel", "title": "News"},
            "text": "/status",
            "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
        },
    }
    assert await bot.process(post) == []


async def test_start_update_in_a_group_points_to_the_private_chat(
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    link(db, clock, GROUP, "board")
    [link_message] = await in_group(bot, PEOPLE["police"].user, "/start update")
    assert emulator.buttons(link_message) == [
        ("Update in a private chat", "https://t.me/csp_demo_bot?start=update")
    ]


def test_the_command_line_links_lists_and_unlinks(
    env: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    db: Database,
) -> None:
    code, out, _ = run_cli(
        capsys, "group", "link", str(GROUP), "--audience", "partnership", "--title", "CSP partners"
    )
    assert code == 0 and out.strip() == f"linked group {GROUP} for the partnership"
    code, out, _ = run_cli(capsys, "group", "list")
    assert code == 0 and f"{GROUP}  partnership" in out and "CSP partners" in out
    code, out, _ = run_cli(capsys, "group", "unlink", str(GROUP))
    assert code == 0 and "unlinked" in out
    code, _, err = run_cli(capsys, "group", "unlink", str(GROUP))
    assert code == 2 and err.strip() == f"csp-bot: no linked group {GROUP}"
    code, out, _ = run_cli(capsys, "group", "list")
    assert out.startswith("no linked groups")
    entries = db.call(
        lambda s: s.exec(
            select(AuditEntry).where(AuditEntry.entity == "group_link").order_by(col(AuditEntry.id))
        ).all()
    )
    assert [(e.change, e.actor) for e in entries] == [
        ("created", "command line"),
        ("deleted", "command line"),
    ]
