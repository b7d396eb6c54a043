"""The access matrix: every command, as every role and as a non-member.

The expectations are written out here, not computed from the rules under test: changing
who may do something must change this file too.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from csp_bot.handlers.policy import COMMANDS
from csp_bot.handlers.registry import all_handlers
from csp_bot.handlers.reminders import topics_for
from csp_bot.models import access
from csp_bot.models.enums import Role
from csp_bot.models.membership import MemberView
from csp_bot.models.reminder_types import Topic
from tests.harness import OUTSIDER, PEOPLE, Harness

pytestmark = pytest.mark.sqlite_only
ROLE_PEOPLE = {person.role: key for key, person in PEOPLE.items()}
REFUSAL = "isn't available to a"
JOIN = "ask your partnership coordinator for an invite link"

ROLES = ("admin", "chair", "board", "partner", "observer")
# command × role: y may use it, . is refused.
COMMAND_TABLE = """
command    admin chair board partner observer
start        y     y     y     y       y
help         y     y     y     y       y
whoami       y     y     y     y       y
my           y     y     y     y       y
update       y     y     .     y       .
cancel       y     y     .     y       .
undo         y     y     .     y       .
action       y     y     y     y       y
history      y     y     y     y       y
status       y     y     y     y       y
priority     y     y     y     y       y
summary      y     y     y     .       .
report       y     y     y     .       .
meeting      y     y     .     .       .
meetings     y     y     y     y       y
funding      y     y     y     y       .
decide       y     y     .     .       .
figure       y     y     .     y       .
measure      y     y     y     y       y
deadlines    y     y     y     y       y
reminders    y     y     y     y       y
away         y     y     y     y       y
back         y     y     y     y       y
members      y     .     .     .       .
owners       y     .     .     .       .
link         y     .     .     .       .
"""
# The rules beyond the command table, role × rule, the same way.
RULE_TABLE = """
rule                               admin chair board partner observer
update any action                    y     y     .     .       .
update own organisation's action     y     y     .     y       .
send own organisation's figures      y     y     .     y       .
send another organisation's figures  y     y     .     .       .
invited to board meetings            y     y     y     .       .
get the weekly digest                y     y     .     .       .
get meeting reminders                y     y     y     .       .
asked about unowned actions          .     .     .     y       .
"""
# A partner's own organisation, and another's, for the update rules.
OWN, OTHER = 1, 2
RULES: dict[str, Callable[[Role], bool]] = {
    "update any action": lambda role: access.may_update(
        role, organisation_id=OWN, lead_organisation_id=OTHER
    ),
    "update own organisation's action": lambda role: access.may_update(
        role, organisation_id=OWN, lead_organisation_id=OWN
    ),
    "send own organisation's figures": lambda role: access.may_supply(
        role, organisation_id=OWN, supplier_organisation_id=OWN
    ),
    "send another organisation's figures": lambda role: access.may_supply(
        role, organisation_id=OWN, supplier_organisation_id=OTHER
    ),
    "invited to board meetings": access.is_invited,
    "get the weekly digest": lambda role: Topic.DIGEST in topics_for(member_as(role)),
    "get meeting reminders": lambda role: Topic.MEETINGS in topics_for(member_as(role)),
    "asked about unowned actions": lambda role: role in access.ORGANISATION_CONTACTS,
}


def read_table(text: str) -> dict[tuple[str, str], bool]:
    """(row, role) -> allowed, from a table written as above."""
    header, *rows = text.strip().splitlines()
    assert header.split()[-len(ROLES) :] == list(ROLES)
    cells = {}
    for row in rows:
        name, *marks = row.rsplit(maxsplit=len(ROLES))
        for role, mark in zip(ROLES, marks, strict=True):
            assert mark in ("y", "."), row
            cells[name, role] = mark == "y"
    return cells


def member_as(role: Role) -> MemberView:
    return MemberView(
        id=1, telegram_id=1, name="Test", role=role, organisation_id=OWN, organisation="Test"
    )


def names(cells: dict[tuple[str, str], bool]) -> list[str]:
    return [f"{row} as {role}" for row, role in sorted(cells)]


COMMAND_CELLS = read_table(COMMAND_TABLE)
RULE_CELLS = read_table(RULE_TABLE)


def test_every_role_has_a_test_member() -> None:
    assert set(ROLE_PEOPLE) == {role.value for role in Role} == set(ROLES)


def test_every_registered_command_is_in_the_policy() -> None:
    registered = {
        command
        for handler in all_handlers()
        for command in getattr(handler, "commands", frozenset())
    }
    assert registered == {spec.name for spec in COMMANDS}
    assert {command for command, _ in COMMAND_CELLS} == registered


@pytest.mark.parametrize(("command", "role"), sorted(COMMAND_CELLS), ids=names(COMMAND_CELLS))
async def test_member_access(
    bot: Harness, people: dict[str, MemberView], command: str, role: str
) -> None:
    sent = await bot.send(PEOPLE[ROLE_PEOPLE[role]].user, f"/{command}")
    texts = " ".join(message.text for message in sent)
    assert sent, "every command answers"
    assert JOIN not in texts
    if COMMAND_CELLS[command, role]:
        assert REFUSAL not in texts
    else:
        assert f"Sorry, /{command} {REFUSAL}" in texts


@pytest.mark.parametrize(("rule", "role"), sorted(RULE_CELLS), ids=names(RULE_CELLS))
def test_rule(rule: str, role: str) -> None:
    assert RULES[rule](Role(role)) is RULE_CELLS[rule, role]


@pytest.mark.parametrize("command", [spec.name for spec in COMMANDS])
async def test_non_member_access(bot: Harness, people: dict[str, MemberView], command: str) -> None:
    sent = await bot.send(OUTSIDER, f"/{command}")
    assert len(sent) == 1
    assert JOIN in sent[0].text
