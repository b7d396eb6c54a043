"""/owners REF: the coordinator sees an action's or a measure's owners, and links or unlinks
members (`/owners SOC-1 add 12`, `/owners ASB-M1 remove 12`; the ids are those /members
shows)."""

from __future__ import annotations

from sqlmodel import Session
from telegram import Update
from telegram.ext import BaseHandler

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.guard import command
from csp_bot.handlers.replies import send
from csp_bot.models.audit import Actor
from csp_bot.models.errors import DomainError
from csp_bot.models.limits import check_record_id
from csp_bot.models.membership import MemberView
from csp_bot.models.owners import Owned, add_owner, find_owned, owners_of_owned, remove_owner

VERBS = ("add", "remove")


def _owners(session: Session, *, ref: str) -> tuple[Owned, list[MemberView]]:
    owned = find_owned(session, ref)
    return owned, owners_of_owned(session, owned)


def _read_id(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise DomainError(f"{text!r} is not a member id (/members lists them)")
    return check_record_id(int(text), what="a member id")


async def owners_command(update: Update, context: Ctx) -> None:
    """Show an action's or a measure's owners, or add or remove one (audited)."""
    args = list(context.args or [])
    if not args or len(args) not in (1, 3) or (len(args) == 3 and args[1].lower() not in VERBS):
        await send(update, context, "owners_usage.html")
        return
    done = None
    try:
        if len(args) == 3:
            member_id = _read_id(args[2])
            change = add_owner if args[1].lower() == "add" else remove_owner
            actor = Actor.member(context.acting_member.id)
            done = await context.db.run(
                change, ref=args[0], member_id=member_id, at=context.now(), actor=actor
            )
        owned, owners = await context.db.run(_owners, ref=args[0])
    except DomainError as problem:
        await send(update, context, "owners_refused.html", problem=str(problem))
        return
    await send(
        update,
        context,
        "owners_list.html",
        done=done,
        ref=owned.ref,
        posts=owned.posts,
        measure=owned.kind == "measure",
        owners=owners,
    )


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [command("owners", owners_command)]
