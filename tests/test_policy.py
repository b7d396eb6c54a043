"""The access matrix: every command, as every role and as a non-member."""

from __future__ import annotations

import pytest

from csp_bot.handlers.policy import COMMANDS, may_use
from csp_bot.handlers.registry import all_handlers
from csp_bot.models.enums import Role
from csp_bot.models.membership import MemberView
from tests.harness import OUTSIDER, PEOPLE, Harness

ROLE_PEOPLE = {person.role: key for key, person in PEOPLE.items()}
REFUSAL = "isn't available to a"
JOIN = "ask your partnership coordinator for an invite link"


def test_every_role_has_a_test_member() -> None:
    assert set(ROLE_PEOPLE) == {role.value for role in Role}


def test_every_registered_command_is_in_the_policy() -> None:
    registered = {
        command
        for handler in all_handlers()
        for command in getattr(handler, "commands", frozenset())
    }
    assert registered == {spec.name for spec in COMMANDS}


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.value)
@pytest.mark.parametrize("command", [spec.name for spec in COMMANDS])
async def test_member_access(
    bot: Harness, people: dict[str, MemberView], role: Role, command: str
) -> None:
    sent = await bot.send(PEOPLE[ROLE_PEOPLE[role.value]].user, f"/{command}")
    texts = " ".join(message.text for message in sent)
    assert sent, "every command answers"
    assert JOIN not in texts
    if may_use(role, command):
        assert REFUSAL not in texts
    else:
        assert f"Sorry, /{command} {REFUSAL}" in texts


@pytest.mark.parametrize("command", [spec.name for spec in COMMANDS])
async def test_non_member_access(bot: Harness, people: dict[str, MemberView], command: str) -> None:
    sent = await bot.send(OUTSIDER, f"/{command}")
    assert len(sent) == 1
    assert JOIN in sent[0].text
