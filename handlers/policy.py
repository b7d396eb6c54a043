"""Who may use which command: the command table, over the role sets of `models.access`.

Every command handler is registered through `handlers.guard`, which consults this table,
so a command that is not listed here cannot be reached at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from csp_bot.models.access import BOARD, COORDINATOR, EVERYONE, FUNDERS, ORGANISERS, UPDATERS
from csp_bot.models.enums import Role


@dataclass(frozen=True)
class CommandSpec:
    """A chat command: its name, how to type it, one line of help, and who may use it."""

    name: str
    usage: str
    summary: str
    roles: frozenset[Role]
    # Public commands also run for people who are not members (/start redeems an invite).
    public: bool = False


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "start", "/start", "join with an invite code, or see what you can do", EVERYONE, True
    ),
    CommandSpec("help", "/help", "the commands you can use", EVERYONE),
    CommandSpec("whoami", "/whoami", "your name, organisation and role", EVERYONE),
    CommandSpec("my", "/my", "your organisation's actions and their status", EVERYONE),
    CommandSpec("update", "/update [REF STATUS note]", "report progress on an action", UPDATERS),
    CommandSpec("cancel", "/cancel", "stop an update or form part way through", UPDATERS),
    CommandSpec(
        "undo", "/undo", "take back your last update or figure (within 15 minutes)", UPDATERS
    ),
    CommandSpec("action", "/action REF", "one action in full, with its latest updates", EVERYONE),
    CommandSpec("history", "/history REF", "every update on an action", EVERYONE),
    CommandSpec("status", "/status", "where each priority stands", EVERYONE),
    CommandSpec("priority", "/priority CODE", "one priority's actions", EVERYONE),
    CommandSpec("summary", "/summary [CODE]", "the board's exception summary", BOARD),
    CommandSpec("report", "/report", "the board paper: HTML, CSV and the RAG chart", BOARD),
    CommandSpec("meeting", "/meeting", "schedule a board meeting", ORGANISERS),
    CommandSpec(
        "meetings", "/meetings", "the coming board meetings: reply, add to calendar", EVERYONE
    ),
    CommandSpec(
        "funding",
        "/funding [YEAR]",
        "who funds what this financial year (or e.g. 2022/23)",
        FUNDERS,
    ),
    CommandSpec("decide", "/decide", "record a funding decision", ORGANISERS),
    CommandSpec(
        "figure",
        "/figure [CODE PERIOD VALUE note]",
        "send a figure for one of your organisation's measures",
        UPDATERS,
    ),
    CommandSpec(
        "measure", "/measure CODE", "a measure's latest figure, target, trend and chart", EVERYONE
    ),
    CommandSpec("deadlines", "/deadlines", "the deadlines coming up in the next year", EVERYONE),
    CommandSpec(
        "reminders", "/reminders", "choose the reminders you get, or snooze them", EVERYONE
    ),
    CommandSpec("away", "/away [DAYS]", "away for a while: name who covers for you", EVERYONE),
    CommandSpec("back", "/back", "back from being away: your reminders come to you", EVERYONE),
    CommandSpec("members", "/members", "the members, and deactivating one", COORDINATOR),
    CommandSpec(
        "owners",
        "/owners REF [add|remove ID]",
        "an action's owners, and changing them",
        COORDINATOR,
    ),
    CommandSpec(
        "link",
        "/link board|partnership",
        "in a group: answer there, for the board or the partnership",
        COORDINATOR,
    ),
)

_BY_NAME = {spec.name: spec for spec in COMMANDS}


def spec(command: str) -> CommandSpec:
    """The spec of a command; KeyError for one that is not in the table."""
    return _BY_NAME[command]


def may_use(role: Role | None, command: str) -> bool:
    """Whether a member with `role` (None: not a member) may use `command`."""
    found = _BY_NAME.get(command)
    if found is None:
        return False
    if role is None:
        return found.public
    return role in found.roles


def commands_for(role: Role) -> list[CommandSpec]:
    """The commands a role may use, in menu order."""
    return [spec for spec in COMMANDS if role in spec.roles]
