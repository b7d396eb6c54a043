"""`csp-bot group link|unlink|list`: the group chats the bot answers in."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line imports what a command needs when it runs
    from csp_bot.bot.settings import Settings

# `models.groups.Audience`'s values, written out so that `--help` imports no database code
# (a test keeps the two equal).
AUDIENCES = ("board", "partnership")


def add_group_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`group link CHAT --audience board|partnership`, `group unlink CHAT`, `group list`."""
    group = commands.add_parser("group", help="linked group chats").add_subparsers(required=True)
    link = group.add_parser("link", help="answer in a group chat, for the board or partnership")
    link.add_argument("chat_id", type=int, help="the group's chat id (negative)")
    link.add_argument("--audience", required=True, choices=AUDIENCES)
    link.add_argument("--title", default="", help="a name for the group, for `group list`")
    link.set_defaults(command=group_link_command)
    unlink = group.add_parser("unlink", help="answer no plan data in a group chat any more")
    unlink.add_argument("chat_id", type=int)
    unlink.set_defaults(command=group_unlink_command)
    group.add_parser("list", help="the linked groups").set_defaults(command=group_list_command)


def group_link_command(args: argparse.Namespace, settings: Settings) -> int:
    from csp_bot.bot.cli import call_in_database, local_now
    from csp_bot.models.audit import CLI
    from csp_bot.models.groups import Audience, link_group

    linked = call_in_database(
        settings,
        link_group,
        chat_id=args.chat_id,
        audience=Audience(args.audience),
        title=args.title,
        at=local_now(settings),
        actor=CLI,
    )
    print(f"linked group {linked.chat_id} for the {linked.audience.value}")
    return 0


def group_unlink_command(args: argparse.Namespace, settings: Settings) -> int:
    from csp_bot.bot.cli import call_in_database, local_now
    from csp_bot.models.audit import CLI
    from csp_bot.models.groups import unlink_group

    call_in_database(
        settings, unlink_group, chat_id=args.chat_id, at=local_now(settings), actor=CLI
    )
    print(f"unlinked group {args.chat_id}: the bot answers no plan data there any more")
    return 0


def group_list_command(args: argparse.Namespace, settings: Settings) -> int:
    from csp_bot.bot.cli import call_in_database
    from csp_bot.models.groups import list_groups

    groups = call_in_database(settings, list_groups)
    for group in groups:
        linked = group.linked_at.astimezone(settings.tz)
        print(f"{group.chat_id:>16}  {group.audience.value:<11}  {linked:%d %b %Y}  {group.title}")
    if not groups:
        print("no linked groups: `/link board` in a group, or `csp-bot group link`")
    return 0
