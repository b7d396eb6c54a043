"""The `csp-bot` command line: run the bot, the demo, and the coordinator's tools."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from csp_bot.bot.cli_groups import add_group_commands
from csp_bot.models.clock import system_clock  # light: the standard library only

# Only what building the parser needs is imported here: `csp-bot --help` (and a mistyped
# command) answers at once, and each command imports what it uses when it runs. The
# database layer and python-telegram-bot take about a second to import.
if TYPE_CHECKING:
    from sqlmodel import Session

    from csp_bot.bot.settings import Settings
    from csp_bot.handlers.templating import Templates
    from csp_bot.models.lifecycle import MemberLine
    from csp_bot.models.meetings import MeetingView
    from csp_bot.models.summary import BoardPaper

EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3
P = ParamSpec("P")
T = TypeVar("T")

Command = Callable[[argparse.Namespace, "Settings"], int]
# The report's formats as `handlers.report.FORMATS` names them (a test keeps them the same).
REPORT_FORMATS = ("html", "csv", "png")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `csp-bot` console script."""
    args = build_parser().parse_args(argv)
    from sqlalchemy.exc import OperationalError

    from csp_bot.bot.settings import SettingsError, load_settings
    from csp_bot.models.errors import DomainError
    from csp_bot.models.plan_checks import PlanError

    try:
        check_ids(args)
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
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else "no answer"
        print(f"csp-bot: cannot use the database at CSPBOT_DATABASE_URL: {reason}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def check_ids(args: argparse.Namespace) -> None:
    """The ids a command was given, refused beyond what the database holds: a bigger one
    names nothing, and would overflow the query rather than find nothing."""
    from csp_bot.models.limits import check_record_id, check_telegram_id

    if getattr(args, "id", None) is not None:
        check_record_id(args.id, what="an id")
    for name, what in (("telegram_id", "a Telegram id"), ("chat_id", "a chat id")):
        if getattr(args, name, None) is not None:
            check_telegram_id(getattr(args, name), what=what)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csp-bot", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the bot (long polling, or webhook when CSPBOT_WEBHOOK_URL is set); "
        "migrates the database first",
    )
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
    add_lifecycle_commands(member)

    invite = commands.add_parser("invite", help="invites").add_subparsers(required=True)
    invite_create = invite.add_parser("create", help="print a one-time invite code and link")
    invite_create.add_argument("--org", required=True, help="organisation name or short name")
    invite_create.add_argument(
        "--role", required=True, help="admin, chair, board, partner, observer"
    )
    invite_create.add_argument("--days", type=int, help="days the code stays valid (default 7)")
    invite_create.set_defaults(command=invite_create_command)
    add_schedule_commands(commands)
    add_report_command(commands)
    add_data_commands(commands)
    add_group_commands(commands)
    return parser


def add_data_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`prune`, `backup FILE`, `restore FILE`."""
    commands.add_parser(
        "prune", help="delete what has outlived its retention period (the bot does it daily)"
    ).set_defaults(command=prune_command)
    backup = commands.add_parser(
        "backup", help="write a consistent copy of the database to FILE (safe while the bot runs)"
    )
    backup.add_argument("file", type=Path)
    backup.set_defaults(command=backup_command)
    restore = commands.add_parser(
        "restore", help="load a backup FILE into an empty database (stop the bot first)"
    )
    restore.add_argument("file", type=Path)
    restore.set_defaults(command=restore_command)


def add_lifecycle_commands(member: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`member list|deactivate|remove`."""
    member_list = member.add_parser("list", help="every member: id, Telegram id, standing")
    member_list.add_argument("--active", action="store_true", help="only active members")
    member_list.set_defaults(command=member_list_command)
    deactivate = member.add_parser(
        "deactivate", help="end a member's access (records stay; `member add` restores it)"
    )
    deactivate.add_argument("id", type=int, help="the member's id (see `member list`)")
    deactivate.set_defaults(command=member_deactivate_command)
    remove = member.add_parser(
        "remove", help="delete a member with nothing on record (e.g. added by mistake)"
    )
    remove.add_argument("id", type=int, help="the member's id (see `member list`)")
    remove.set_defaults(command=member_remove_command)
    export = member.add_parser(
        "export", help="everything held about a member: FILE.json and a readable FILE.html"
    )
    export.add_argument("id", type=int, help="the member's id (see `member list`)")
    export.add_argument("--out", type=Path, required=True, help="e.g. member-7.json")
    export.set_defaults(command=member_export_command)
    erase = member.add_parser(
        "erase", help='replace a member\'s name and Telegram id with "former member N"'
    )
    erase.add_argument("id", type=int, help="the member's id (see `member list`)")
    erase.add_argument("--yes", action="store_true", help="confirm: erasure cannot be undone")
    erase.set_defaults(command=member_erase_command)


def add_report_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`report --format html|csv|png --out PATH`."""
    report = commands.add_parser(
        "report", help="write the board paper (html), the actions (csv) or the RAG chart (png)"
    )
    report.add_argument("--format", choices=REPORT_FORMATS, default="html", help="default: html")
    report.add_argument("--out", type=Path, help="file to write (default: named by date)")
    report.set_defaults(command=report_command)


def add_schedule_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`meeting add|list|ics|cancel`, `deadline add`, `figures import`, `action owner`."""
    meeting = commands.add_parser("meeting", help="board meetings").add_subparsers(required=True)
    meeting_add = meeting.add_parser("add", help="schedule a board meeting")
    meeting_add.add_argument("--title", required=True)
    meeting_add.add_argument("--at", required=True, help="start, UK time: 2026-12-10T14:00")
    meeting_add.add_argument("--location", default="", help="place or link")
    meeting_add.add_argument(
        "--agenda",
        action="extend",
        nargs="+",
        default=[],
        metavar="ITEM",
        help='agenda items: --agenda "Item one" "Item two" (may repeat)',
    )
    meeting_add.set_defaults(command=meeting_add_command)
    meeting.add_parser("list", help="the coming meetings").set_defaults(
        command=meeting_list_command
    )
    meeting_ics = meeting.add_parser("ics", help="write calendar (.ics) files")
    meeting_ics.add_argument("id", nargs="?", type=int, help="one meeting (default: all coming)")
    meeting_ics.add_argument("--out", type=Path, help="file to write")
    meeting_ics.set_defaults(command=meeting_ics_command)
    meeting_cancel = meeting.add_parser("cancel", help="cancel a meeting (no more reminders)")
    meeting_cancel.add_argument("id", type=int)
    meeting_cancel.set_defaults(command=meeting_cancel_command)

    deadline = commands.add_parser("deadline", help="deadlines").add_subparsers(required=True)
    deadline_add = deadline.add_parser("add", help="add a deadline (reminded before it)")
    deadline_add.add_argument("--title", required=True)
    deadline_add.add_argument("--date", help="YYYY-MM-DD (for a yearly one, the first)")
    deadline_add.add_argument("--yearly", action="store_true", help="repeats every year")
    deadline_add.add_argument(
        "--org", action="append", default=[], help="organisation, or responsible/all (repeat)"
    )
    deadline_add.add_argument("--description", default="")
    deadline_add.set_defaults(command=deadline_add_command)

    figures = commands.add_parser("figures", help="measures' figures").add_subparsers(required=True)
    figures_import = figures.add_parser(
        "import", help="load figures from a CSV file: measure, period, value, note (all or nothing)"
    )
    figures_import.add_argument("file", type=Path)
    figures_import.set_defaults(command=figures_import_command)
    action = commands.add_parser("action", help="actions").add_subparsers(required=True)
    action_owner = action.add_parser("owner", help="the members who own an action or a measure")
    action_owner.add_argument("ref", help="an action's reference or a measure's code")
    owner = action_owner.add_mutually_exclusive_group(required=True)
    owner.add_argument("--add", type=int, metavar="ID", help="link a member (see `member list`)")
    owner.add_argument("--remove", type=int, metavar="ID", help="unlink a member")
    owner.add_argument("--telegram-id", type=int, help="make this member the only owner")
    owner.add_argument("--clear", action="store_true", help="no owners: the lead's partners")
    action_owner.set_defaults(command=action_owner_command)


def local_now(settings: Settings) -> datetime:
    """Now, in the partnership's zone (dates are the partners' dates)."""
    return system_clock().astimezone(settings.tz)


def call_in_database(
    settings: Settings, op: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run one domain operation in the configured database, migrated to the latest schema."""
    from csp_bot.models.db import Database
    from csp_bot.models.migrate import upgrade

    database = Database.from_url(settings.database_url)
    try:
        upgrade(database.engine)
        return database.call(op, *args, **kwargs)
    finally:
        database.close()


def run_bot(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot run`."""
    from csp_bot.bot.runner import run_bot as run

    settings.require_token()
    return run(settings)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot demo`."""
    from csp_bot.bot.demo import EXAMPLE_PLAN, run_demo

    return run_demo(settings, member=args.member, plan=args.plan or EXAMPLE_PLAN)


def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot db upgrade`."""
    from csp_bot.models.db import Database
    from csp_bot.models.migrate import upgrade

    database = Database.from_url(settings.database_url)
    applied = upgrade(database.engine)
    database.close()
    print(f"applied {', '.join(applied)}" if applied else "the database is up to date")
    return 0


def plan_import_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot plan import FILE`."""
    from csp_bot.models.plan_import import import_plan_file

    result = call_in_database(
        settings,
        import_plan_file,
        path=args.file,
        at=local_now(settings),
        statutory=settings.statutory_dates,
    )
    print(result.summary())
    return 0


def member_add_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot member add`."""
    from csp_bot.models.audit import CLI
    from csp_bot.models.membership import add_member

    member = call_in_database(
        settings,
        add_member,
        telegram_id=args.telegram_id,
        name=args.name,
        organisation=args.org,
        role=args.role,
        at=local_now(settings),
        actor=CLI,
    )
    print(f"registered {member.name} ({member.role.value}, {member.organisation})")
    return 0


def member_list_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot member list [--active]`."""
    from csp_bot.models.lifecycle import list_members

    members = call_in_database(settings, list_members, active_only=args.active)
    for line in members:
        print(_member_row(line, settings))
    if not members:
        print("no members yet: `csp-bot member add` registers the first")
    return 0


def _member_row(line: MemberLine, settings: Settings) -> str:
    standing = line.standing.value
    if line.since is not None:
        standing += f" {line.since.astimezone(settings.tz):%d %b %Y}"
    telegram = str(line.telegram_id) if line.telegram_id > 0 else "-"
    return (
        f"{line.id:>4}  {telegram:>12}  {line.name}  {line.role.value}  "
        f"{line.organisation}  {standing}"
    )


def member_deactivate_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot member deactivate ID`."""
    from csp_bot.models.audit import CLI
    from csp_bot.models.lifecycle import deactivate_member

    done = call_in_database(
        settings, deactivate_member, member_id=args.id, at=local_now(settings), actor=CLI
    )
    if not done.changed:
        print(f"member {args.id} ({done.member.name}) was already {done.member.standing.value}")
        return 0
    print(f"deactivated member {args.id} ({done.member.name}): the bot now treats them as a")
    print("stranger, their reminders stop and their unfinished forms are discarded")
    return 0


def member_remove_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot member remove ID`."""
    from csp_bot.models.audit import CLI
    from csp_bot.models.lifecycle import remove_member

    removed = call_in_database(
        settings, remove_member, member_id=args.id, at=local_now(settings), actor=CLI
    )
    print(f"removed member {removed.id} ({removed.name}, {removed.organisation})")
    return 0


def member_export_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot member export ID --out FILE`."""
    from csp_bot.bot.member_export import export_page, write_export
    from csp_bot.handlers.templating import Templates
    from csp_bot.models.rights import export_member

    data = call_in_database(settings, export_member, member_id=args.id, at=system_clock())
    page = export_page(data, Templates(settings.tz))
    json_path, html_path = write_export(data, page, args.out)
    print(f"wrote {json_path} and {html_path}: everything held about member {args.id}")
    return 0


def member_erase_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot member erase ID --yes`."""
    from csp_bot.models.audit import CLI
    from csp_bot.models.errors import DomainError
    from csp_bot.models.rights import erase_member

    if not args.yes:
        raise DomainError(
            f"erasing member {args.id} cannot be undone: export what is held first "
            f"(`csp-bot member export {args.id} --out FILE`), then run this again with --yes"
        )
    done = call_in_database(
        settings, erase_member, member_id=args.id, at=local_now(settings), actor=CLI
    )
    if not done.changed:
        print(f"member {args.id} was already erased")
        return 0
    print(f'erased member {args.id}: now "{done.member.name}" everywhere, with no Telegram id;')
    print("their updates and replies stay on record under that name and their organisation")
    return 0


def invite_create_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot invite create`."""
    from csp_bot.models.audit import CLI
    from csp_bot.models.errors import DomainError
    from csp_bot.models.membership import create_invite

    days = args.days if args.days is not None else settings.invite_days
    if days < 1:
        raise DomainError("--days must be at least 1")
    invite = call_in_database(
        settings,
        create_invite,
        organisation=args.org,
        role=args.role,
        at=local_now(settings),
        days=days,
        actor=CLI,
    )
    username = settings.bot_username or "<your_bot_username>"
    print(f"invite code: {invite.code}")
    print(f"link: https://t.me/{username}?start={invite.code}")
    print(f"valid once, for {days} days, for a {args.role} of {args.org}")
    if not settings.bot_username:
        print("(set CSPBOT_BOT_USERNAME to your bot's username to complete the link)")
    return 0


def meeting_add_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot meeting add`."""
    from csp_bot.models.audit import CLI
    from csp_bot.models.meetings import check_meeting_time, schedule_meeting

    now = local_now(settings)
    starts_at = check_meeting_time(args.at, zone=settings.tz, at=now)
    meeting = call_in_database(
        settings,
        schedule_meeting,
        title=args.title,
        starts_at=starts_at,
        location=args.location,
        agenda=args.agenda,
        at=now,
        actor=CLI,
    )
    print(f"scheduled meeting {meeting.id}: {_meeting_line(meeting, settings)}")
    print("a running bot reminds board members within a minute of each reminder falling due")
    return 0


def _meeting_line(meeting: MeetingView, settings: Settings) -> str:
    local = meeting.starts_at.astimezone(settings.tz)
    where = f", {meeting.location}" if meeting.location else ""
    return f"{meeting.title}, {local:%a %d %b %Y %H:%M}{where}"


def meeting_list_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot meeting list`."""
    from csp_bot.models.meetings import upcoming_meetings

    meetings = call_in_database(settings, upcoming_meetings, at=local_now(settings), limit=1000)
    for meeting in meetings:
        print(f"{meeting.id:>4}  {_meeting_line(meeting, settings)}")
    if not meetings:
        print("no meetings to come")
    return 0


def meeting_ics_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot meeting ics [ID] [--out FILE]`."""
    from csp_bot.models.errors import DomainError
    from csp_bot.models.meetings import get_meeting, ics_filename, meetings_ics, upcoming_meetings

    now = local_now(settings)
    if args.id is not None:
        meetings = [call_in_database(settings, get_meeting, meeting_id=args.id)]
        default = ics_filename(meetings[0], settings.tz)
    else:
        meetings = call_in_database(settings, upcoming_meetings, at=now, limit=1000)
        default = "board-meetings.ics"
    if not meetings:
        raise DomainError("no meetings to come: nothing written")
    out: Path = args.out or Path(default)
    out.write_text(meetings_ics(meetings, now=now), newline="")
    print(f"wrote {out} ({len(meetings)} meeting{'s' if len(meetings) != 1 else ''})")
    return 0


def meeting_cancel_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot meeting cancel ID`."""
    from csp_bot.models.audit import CLI
    from csp_bot.models.meetings import cancel_meeting

    meeting = call_in_database(
        settings, cancel_meeting, meeting_id=args.id, at=local_now(settings), actor=CLI
    )
    print(f"cancelled meeting {meeting.id}: {_meeting_line(meeting, settings)}")
    return 0


def deadline_add_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot deadline add`."""
    from csp_bot.models.audit import CLI
    from csp_bot.models.deadlines import add_deadline

    deadline = call_in_database(
        settings,
        add_deadline,
        title=args.title,
        due_on=args.date,
        yearly=args.yearly,
        organisations=args.org,
        description=args.description,
        at=local_now(settings),
        actor=CLI,
    )
    every = ", every year" if deadline.yearly else ""
    print(f"added deadline {deadline.id}: {deadline.title}, {deadline.due_on:%d %b %Y}{every}")
    print(f"for: {', '.join(deadline.organisations)}")
    return 0


def action_owner_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot action owner REF --add ID | --remove ID | --telegram-id N | --clear`."""
    from csp_bot.models.audit import CLI
    from csp_bot.models.limits import check_record_id
    from csp_bot.models.owners import add_owner, remove_owner
    from csp_bot.models.reminders import set_action_owner

    if args.add is not None or args.remove is not None:
        member_id = check_record_id(args.add if args.add is not None else args.remove, what="an id")
        op = add_owner if args.add is not None else remove_owner
        print(
            call_in_database(
                settings, op, ref=args.ref, member_id=member_id, at=local_now(settings), actor=CLI
            )
        )
        return 0
    owner = call_in_database(
        settings,
        set_action_owner,
        ref=args.ref,
        telegram_id=None if args.clear else args.telegram_id,
        at=local_now(settings),
        actor=CLI,
    )
    print(owner)
    return 0


def figures_import_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot figures import FILE.csv`."""
    from csp_bot.models.audit import CLI
    from csp_bot.models.measures import import_figures, read_figures_csv

    rows = read_figures_csv(args.file)
    now = local_now(settings)
    result = call_in_database(
        settings,
        import_figures,
        rows=rows,
        source=str(args.file),
        at=now,
        actor=CLI,
        today=now.date(),
    )
    replaced = f", {result.replaced} of them replacing earlier figures" if result.replaced else ""
    print(f"Imported {result.stored} figures{replaced}. Each change is in the audit trail.")
    return 0


def prune_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot prune`."""
    from csp_bot.models.retention import prune

    keep = settings.retention
    pruned = call_in_database(settings, prune, now=system_clock(), keep=keep)
    print(pruned.summary())
    print(
        f"kept: handled updates {keep.inbox_days} days; reminders, drafts and invites "
        f"{keep.records_days} days; the audit trail {keep.audit_years} years"
    )
    return 0


def backup_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot backup FILE`."""
    from csp_bot.models.backup import backup
    from csp_bot.models.db import Database

    database = Database.from_url(settings.database_url)
    try:
        copied = backup(database.engine, args.file)
    finally:
        database.close()
    print(f"wrote {args.file}: {copied.summary()}")
    print(f"to restore it: csp-bot restore {args.file} (into an empty database)")
    return 0


def restore_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot restore FILE`: into an empty database, then migrated to this version."""
    from csp_bot.models.backup import restore
    from csp_bot.models.db import Database
    from csp_bot.models.migrate import upgrade

    database = Database.from_url(settings.database_url)
    try:
        restored = restore(database.engine, args.file)
        applied = upgrade(database.engine)
    finally:
        database.close()
    print(f"restored {args.file}: {restored.summary()}")
    if applied:
        print(f"then applied migrations {', '.join(applied)}")
    return 0


def report_command(args: argparse.Namespace, settings: Settings) -> int:
    """`csp-bot report --format html|csv|png --out PATH`: the same files as /report."""
    from csp_bot.handlers.report import (
        REPORT_FILES,
        figures_file_name,
        has_figures,
        render_format,
    )
    from csp_bot.handlers.templating import Templates
    from csp_bot.models.errors import DomainError
    from csp_bot.models.summary import board_paper

    require_plan(settings)
    now = local_now(settings)
    paper = call_in_database(settings, board_paper, at=now, quiet_after=settings.quiet_after)
    templates = Templates(settings.tz)
    content = render_format(paper, templates, args.format)
    stem = REPORT_FILES[args.format]
    out: Path = args.out or Path(
        f"{stem}-{now.astimezone(settings.tz).date().isoformat()}.{args.format}"
    )
    try:
        out.write_bytes(content)
    except OSError as problem:
        raise DomainError(f"cannot write {out}: {problem.strerror}") from None
    print(f"wrote {out} ({len(paper.actions)} actions, figures at {templates.format_when(now)})")
    if args.format == "csv" and has_figures(paper):
        _write_figures(paper, templates, out.parent / figures_file_name(now.date()))
    return 0


def _write_figures(paper: BoardPaper, templates: Templates, out: Path) -> None:
    """The CSV export's second file: every figure of every measure, beside the first."""
    from csp_bot.handlers.report import figures_csv
    from csp_bot.models.errors import DomainError

    try:
        out.write_bytes(figures_csv(paper, templates.timezone))
    except OSError as problem:
        raise DomainError(f"cannot write {out}: {problem.strerror}") from None
    print(f"wrote {out} (every figure of {len(paper.summary.measures)} measures)")


NO_PLAN = (
    "no plan is loaded in the database at CSPBOT_DATABASE_URL ({where}), so there is "
    "nothing to report. Load one first: csp-bot plan import FILE "
    "(the sample: csp-bot plan import examples/north-northants-csp-2021-22.yaml). "
    "Nothing was written."
)


def require_plan(settings: Settings) -> None:
    """Refuse to write a blank paper: check for a plan without creating a database file."""
    from sqlalchemy.engine import make_url

    from csp_bot.models.errors import DomainError
    from csp_bot.models.plan_import import plan_loaded

    url = make_url(settings.database_url)
    where = url.render_as_string(hide_password=True)
    path = url.database if url.get_backend_name() == "sqlite" else None
    if path not in (None, "", ":memory:") and not Path(str(path)).exists():
        raise DomainError(NO_PLAN.format(where=where))
    if not call_in_database(settings, plan_loaded):
        raise DomainError(NO_PLAN.format(where=where))


if __name__ == "__main__":
    sys.exit(main())
