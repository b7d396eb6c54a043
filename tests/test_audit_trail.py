"""Every state-changing command, in chat and on the command line, writes its audit entry:
what changed, and who did it (members by id only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import col, select

from csp_bot.bot.cli import main
from csp_bot.bot.emulator import EmulatedUser, SentMessage
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from csp_bot.models.tables import Action, AuditEntry, DialogueDraft
from tests.harness import PEOPLE, Harness
from tests.reminder_helpers import schedule
from tests.test_membership import new_invite

CHAIR = PEOPLE["chair"].user
COORDINATOR = PEOPLE["coordinator"].user
NEWCOMER = EmulatedUser(2001, "Jo", "Constable")
EXAMPLE = Path(__file__).parent.parent / "examples" / "north-northants-csp-2021-22.yaml"


@dataclass(frozen=True)
class Expected:
    entity: str
    change: str
    actor: str  # "chair", "coordinator", "newcomer" (member ids), or a tool's label


def tap(bot: Harness, message: SentMessage, label: str) -> str:
    return dict(bot.emulator.buttons(message))[label]


def entries(db: Database) -> list[AuditEntry]:
    return list(db.call(lambda s: s.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()))


async def test_every_state_changing_command_is_audited(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView], cli_at: None
) -> None:
    soc1 = db.call(lambda s: s.exec(select(Action).where(Action.ref == "SOC-1")).one()).id
    meeting = schedule(db, clock, "2021-07-15T10:00")
    code = new_invite(db, clock)

    async def guided_meeting() -> None:
        first = (await bot.send(CHAIR, "/meeting"))[0]
        await bot.press(CHAIR, first, tap(bot, first, "North Northants CSP Board"))
        for typed in ("9/12/2021 14:00", "Kettering"):
            await bot.send(CHAIR, typed)
        [summary] = await bot.send(CHAIR, "Exception report")
        await bot.press(CHAIR, summary, tap(bot, summary, "💾 Save"))

    async def decide() -> None:
        await bot.send(CHAIR, "/decide")
        for typed in ("ipv", "police", "2023/24", "10000", "agreed"):
            await bot.send(CHAIR, typed)
        [summary] = await bot.send(CHAIR, "Subject to the PCC's precept")
        await bot.press(CHAIR, summary, tap(bot, summary, "💾 Save"))

    async def press(user: EmulatedUser, command: str, data: str) -> None:
        [shown] = await bot.send(user, command)
        await bot.press(user, shown, data)

    async def deactivate_from_chat() -> None:
        [listing] = await bot.send(COORDINATOR, "/members")
        await bot.press(COORDINATOR, listing, f"mb:y:{people['observer'].id}")

    def cli_step(*args: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            assert main(list(args)) == 0, args

        return run

    async def say(user: EmulatedUser, text: str) -> None:
        await bot.send(user, text)

    steps: list[tuple[str, Callable[[], Awaitable[None]], list[Expected]]] = [
        (
            "/start CODE",
            lambda: say(NEWCOMER, f"/start {code}"),
            [Expected("member", "created", "invite"), Expected("invite", "updated", "newcomer")],
        ),
        (
            "/update one line",
            lambda: say(CHAIR, "/update SOC-1 green On track"),
            [
                Expected("progress_update", "created", "chair"),
                Expected("action", "updated", "chair"),
            ],
        ),
        ("/undo", lambda: say(CHAIR, "/undo"), [Expected("progress_update", "updated", "chair")]),
        ("/meeting", guided_meeting, [Expected("meeting", "created", "chair")]),
        ("/decide", decide, [Expected("funding_decision", "created", "chair")]),
        (
            "meeting reply",
            lambda: press(CHAIR, "/meetings", f"mt:r:{meeting.id}:a"),
            [Expected("meeting_reply", "created", "chair")],
        ),
        (
            "meeting reply changed",
            lambda: press(CHAIR, "/meetings", f"mt:r:{meeting.id}:p"),
            [Expected("meeting_reply", "updated", "chair")],
        ),
        (
            "reminders: a kind off",
            lambda: press(CHAIR, "/reminders", "rm:t:deadlines"),
            [Expected("reminder_preference", "created", "chair")],
        ),
        (
            "reminders: snooze",
            lambda: press(CHAIR, "/reminders", "rm:s:7"),
            [Expected("reminder_preference", "updated", "chair")],
        ),
        (
            "check-in status",
            lambda: press(CHAIR, "/meetings", f"ck:{soc1}:a"),
            [Expected("progress_update", "created", "chair")],
        ),
        (
            "check-in snooze",
            lambda: press(CHAIR, "/meetings", f"ck:{soc1}:z"),
            [Expected("action_snooze", "created", "chair")],
        ),
        (
            "/members deactivate",
            deactivate_from_chat,
            [Expected("member", "updated", "coordinator")],
        ),
        (
            "plan import",
            cli_step("plan", "import", str(EXAMPLE)),
            [],  # the plan is unchanged: nothing to record (tested in test_plan_import)
        ),
        (
            "member add",
            cli_step(
                "member",
                "add",
                "--telegram-id",
                "3001",
                "--name",
                "Ali",
                "--org",
                "Police",
                "--role",
                "board",
            ),
            [Expected("member", "created", "command line")],
        ),
        (
            "invite create",
            cli_step("invite", "create", "--org", "Police", "--role", "partner"),
            [Expected("invite", "created", "command line")],
        ),
        (
            "meeting add",
            cli_step("meeting", "add", "--title", "Extra board", "--at", "2021-08-02T10:00"),
            [Expected("meeting", "created", "command line")],
        ),
        (
            "meeting cancel",
            cli_step("meeting", "cancel", str(meeting.id)),
            [Expected("meeting", "deleted", "command line")],
        ),
        (
            "deadline add",
            cli_step("deadline", "add", "--title", "Returns", "--date", "2021-09-30"),
            [Expected("deadline", "created", "command line")],
        ),
        (
            "action owner",
            cli_step("action", "owner", "SOC-1", "--telegram-id", "1004"),
            [Expected("action", "updated", "command line")],
        ),
        (
            "member deactivate",
            cli_step("member", "deactivate", str(people["board"].id)),
            [Expected("member", "updated", "command line")],
        ),
        (
            "member erase",
            cli_step("member", "erase", str(people["board"].id), "--yes"),
            [Expected("member", "erased", "command line")],
        ),
        (
            "member remove",
            cli_step("member", "remove", str(people["observer"].id)),  # nothing on record
            [Expected("member", "deleted", "command line")],
        ),
    ]
    actors = {
        "chair": f"member {people['chair'].id}",
        "coordinator": f"member {people['coordinator'].id}",
        "newcomer": f"member {max(p.id for p in people.values()) + 1}",
    }
    for name, step, expected in steps:
        seen = len(entries(db))
        await step()
        new = {(e.entity, e.change, _tool(e.actor)) for e in entries(db)[seen:]}
        wanted = {(x.entity, x.change, actors.get(x.actor, x.actor)) for x in expected}
        assert wanted <= new, (name, new)
    # Every form was finished: at most a closed one is left, kept to answer a replay.
    draft = db.call(lambda s: s.get(DialogueDraft, CHAIR.id))
    assert draft is None or draft.step == "closed"


def _tool(actor: str) -> str:
    """Invites act as "invite N": the number is the invite's, not checked here."""
    return "invite" if actor.startswith("invite ") else actor
