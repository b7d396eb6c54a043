"""The `csp-bot` command line: run the bot, the demo, and the coordinator's tools."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from sqlmodel import Session

from bot.settings import Settings, SettingsError, load_settings
from models.audit import CLI
from models.clock import system_clock
from models.db import Database
from models.errors import DomainError
from models.membership import add_member, create_invite
from models.migrate import upgrade
from models.plan import PlanError, import_plan_file

EXIT_BAD_INPUT = 2
P = ParamSpec("P")
T = TypeVar("T")

Command = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `csp-bot` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        command: Command = args.command
        return command(args, settings)
    except (SettingsError, DomainError) as error:
        print(f"csp-bot: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PlanError as error:
        print(
            f"csp-bot: the plan file was rejected; nothing was written:\n{error}", file=sys.stderr
        )
        return EXIT_BAD_INPUT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csp-bot", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the bot (long polling); migrates the database first")
    run.set_defaults(command=run_bot)

    demo = commands.add_parser("demo", help="run the bot offline with a terminal chat")
    demo.add_argument("--as", dest="member", help="start as this demo member (number or name)")
    demo.add_argument("--plan", type=Path, help="plan file to load (default: the sample plan)")
    demo.set_defaults(command=run_demo)

    db = commands.add_parser("db", help="database tools").add_subparsers(required=True)
    db.add_parser("upgrade", help="apply pending migrations").set_defaults(command=db_upgrade)

    plan = commands.add_parser("plan", help="the plan file").add_subparsers(required=True)
    plan_import = plan.add_parser("import", help="load or update a plan file (all or nothing)")
    plan_import.add_argument("file", type=Path)
    plan_import.set_defaults(command=plan_import_command)

    member = commands.add_parser("member", help="members").add_subparsers(required=True)
    member_add = member.add_parser("add", help="register a member")
    member_add.add_argument("--telegram-id", type=int, required=True)
    member_add.add_argument("--name", required=True)
    member_add.add_argument("--org", required=True, help="organisation name or short name")
    member_add.add_argument("--role", required=True, help="admin, chair, board, partner, observer")
    member_add.set_defaults(command=member_add_command)

    invite = commands.add_parser("invite", help="invites").add_subparsers(required=True)
    invite_create = invite.add_parser("create", help="print a one-time invite code and link")
    invite_create.add_argument("--org", required=True, help="organisation name or short name")
    invite_create.add_argument(
        "--role", required=True, help="admin, chair, board, partner, observer"
    )
    invite_create.add_argument("--days", type=int, help="days the code stays valid (default 7)")
    invite_create.set_defaults(command=invite_create_command)
    return parser


def call_in_database(
    settings: Settings, op: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run one domain operation in the configured database, migrated to the latest schema."""
    database = Database.from_url(settings.database_url)
    try:
        upgrade(database.engine)
        return database.call(op, *args, **kwargs)
    finally:
        database.close()


def run_bot(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot run`."""
    from bot.runner import run_polling

    settings.require_token()
    return run_polling(settings)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot demo`."""
    from bot.demo import EXAMPLE_PLAN, run_demo

    return run_demo(settings, member=args.member, plan=args.plan or EXAMPLE_PLAN)


def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot db upgrade`."""
    database = Database.from_url(settings.database_url)
    applied = upgrade(database.engine)
    database.close()
    print(f"applied {', '.join(applied)}" if applied else "the database is up to date")
    return 0


def plan_import_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot plan import FILE`."""
    result = call_in_database(settings, import_plan_file, path=args.file, at=system_clock())
    print(result.summary())
    return 0


def member_add_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot member add`."""
    member = call_in_database(
        settings,
        add_member,
        telegram_id=args.telegram_id,
        name=args.name,
        organisation=args.org,
        role=args.role,
        at=system_clock(),
        actor=CLI,
    )
    print(f"registered {member.name} ({member.role.value}, {member.organisation})")
    return 0


def invite_create_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot invite create`."""
    days = args.days if args.days is not None else settings.invite_days
    if days < 1:
        raise DomainError("--days must be at least 1")
    invite = call_in_database(
        settings,
        create_invite,
        organisation=args.org,
        role=args.role,
        at=system_clock(),
        valid_for=timedelta(days=days),
        actor=CLI,
    )
    username = settings.bot_username or "<your_bot_username>"
    print(f"invite code: {invite.code}")
    print(f"link: https://t.me/{username}?start={invite.code}")
    print(f"valid once, for {days} days, for a {args.role} of {args.org}")
    if not settings.bot_username:
        print("(set CSPBOT_BOT_USERNAME to your bot's username to complete the link)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
