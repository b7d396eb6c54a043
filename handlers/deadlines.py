"""/deadlines: the dates the partnership must meet in the coming year."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.guard import command
from csp_bot.handlers.replies import send
from csp_bot.models.deadlines import upcoming_deadlines
from csp_bot.models.localtime import day_phrase


async def deadlines_command(update: Update, context: Ctx) -> None:
    """The coming year's deadlines, soonest first, marking those for the member's organisation."""
    today = context.now().astimezone(context.settings.tz).date()
    deadlines = await context.db.run(upcoming_deadlines, today=today)
    organisation = context.acting_member.organisation
    await send(
        update,
        context,
        "deadline_list.html",
        deadlines=[(deadline, day_phrase(today, deadline.due_on)) for deadline in deadlines],
        organisation=organisation,
        starred=any(organisation in deadline.organisations for deadline in deadlines),
    )


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [command("deadlines", deadlines_command)]
