"""Who may use which command: the one place access is decided.

Every command handler is registered through `handlers.guard`, which consults this table,
so a command that is not listed here cannot be reached at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.enums import Role

EVERYONE = frozenset(Role)


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
