"""What members receive (/reminders), and the one-tap check-in buttons reminders carry."""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler

from csp_bot.handlers.context import Ctx
from csp_bot.handlers.guard import button as guarded_button
from csp_bot.handlers.guard import command, refuse_forged
from csp_bot.handlers.keyboards import button, number, parts
from csp_bot.handlers.replies import edit_in_place, send, send_text
from csp_bot.handlers.templating import STATUS_MARKS
from csp_bot.models.access import CHAIRS, UPDATERS, is_invited
from csp_bot.models.enums import Status
from csp_bot.models.errors import DomainError
from csp_bot.models.membership import MemberView
from csp_bot.models.owners import may_update_action
from csp_bot.models.progress import ActionView, action_by_id, log_progress, refusal
from csp_bot.models.reminder_types import Topic
from csp_bot.models.reminders import Preferences, get_preferences, set_topic, snooze, snooze_action

log = logging.getLogger(__name__)

CHECKIN = "ck"
SETTINGS = "rm"
CHECKIN_STATUSES = {"g": Status.GREEN, "a": Status.AMBER, "r": Status.RED, "c": Status.COMPLETE}
SNOOZE_CODE = "z"
SNOOZE_ACTION = timedelta(days=7)
SNOOZE_CHOICES = {1: "1 day", 7: "1 week", 14: "2 weeks"}
CHAIR_TOPICS = frozenset({Topic.DIGEST})


# --- the check-in keyboard and its buttons -------------------------------------------------------


def checkin_keyboard(action_id: int, *, snooze: bool) -> InlineKeyboardMarkup:
    """On track / at risk / off track / complete, and (for check-ins) snooze a week."""
    codes = {status: code for code, status in CHECKIN_STATUSES.items()}
    statuses = [
        button(f"{STATUS_MARKS[status]} {status.label}", CHECKIN, action_id, codes[status])
        for status in CHECKIN_STATUSES.values()
    ]
    rows = [statuses[:2], statuses[2:]]
    if snooze:
        rows.append([button("💤 Snooze a week", CHECKIN, action_id, SNOOZE_CODE)])
    return InlineKeyboardMarkup(rows)


async def on_checkin_button(update: Update, context: Ctx) -> None:
    """ck:ACTION:CODE: record the status in one tap, or put the prompt off for a week."""
    query = update.callback_query
    assert query is not None
    pieces = parts(query.data, 3)
    action_id = number(pieces[1]) if pieces else None
    if pieces is None or action_id is None or pieces[2] not in {*CHECKIN_STATUSES, SNOOZE_CODE}:
        await refuse_forged(update, context)
        return
    view = await context.db.run(
        action_by_id, action_id=action_id, at=context.now(), quiet_after=context.quiet_after
    )
    if view is None:
        await refuse_forged(update, context)
        return
    if pieces[2] == SNOOZE_CODE:
        await _snooze_checkin(update, context, view)
    else:
        await _record_checkin(update, context, view.ref, CHECKIN_STATUSES[pieces[2]])


async def _record_checkin(update: Update, context: Ctx, ref: str, status: Status) -> None:
    query = update.callback_query
    assert query is not None
    try:
        logged = await context.db.run(
            log_progress,
            ref=ref,
            member_id=context.acting_member.id,
            status=status,
            note=f"One-tap check-in: {status.label}.",
            at=context.now(),
            telegram_update_id=update.update_id,
            quiet_after=context.quiet_after,
        )
    except DomainError as refused:
        await query.answer(str(refused), show_alert=True)
        return
    await query.answer(f"Recorded: {status.label}")
    await query.edit_message_reply_markup(reply_markup=None)
    await send(update, context, "reminder_checkin_recorded.html", logged=logged, status=status)


async def _snooze_checkin(update: Update, context: Ctx, view: ActionView) -> None:
    """The snooze silences the action's prompts for all its owners, so it needs the right
    to update that action, as /update would (checked now, not when the button was sent)."""
    query = update.callback_query
    assert query is not None
    member = context.acting_member
    allowed = await context.db.run(
        may_update_action,
        member=member,
        action_id=view.id,
        lead_organisation_id=view.lead_organisation_id,
        at=context.now(),
    )
    if not allowed:
        log.warning("refused check-in snooze of %s from member %s", view.ref, member.id)
        await query.answer(refusal(member, view), show_alert=True)
        return
    until = context.now() + SNOOZE_ACTION
    await context.db.run(
        snooze_action, action_id=view.id, member_id=member.id, until=until, at=context.now()
    )
    await query.answer("Snoozed for a week")
    await query.edit_message_reply_markup(reply_markup=None)
    await send(update, context, "reminder_checkin_snoozed.html", ref=view.ref, until=until)


# --- /reminders --------------------------------------------------------------------------------


ACTION_TOPICS = (Topic.ACTIONS, Topic.CHECKINS)


def topics_for(member: MemberView) -> list[Topic]:
    """The kinds of reminder this member can get."""
    topics = list(Topic)
    if member.role not in CHAIRS:
        topics = [topic for topic in topics if topic not in CHAIR_TOPICS]
    if not is_invited(member.role):
        topics.remove(Topic.MEETINGS)
    if member.role not in UPDATERS:  # they own no actions, so are never asked about one
        topics = [topic for topic in topics if topic not in ACTION_TOPICS]
    return topics


def settings_keyboard(
    member: MemberView, preferences: Preferences, snoozed: bool
) -> InlineKeyboardMarkup:
    rows = [
        [
            button(
                f"{'🔔' if preferences.receives(topic) else '🔕'} {topic.label}",
                SETTINGS,
                "t",
                topic.value,
            )
        ]
        for topic in topics_for(member)
    ]
    snoozes = [button(f"💤 {label}", SETTINGS, "s", days) for days, label in SNOOZE_CHOICES.items()]
    rows.append(snoozes)
    if snoozed:
        rows.append([button("⏰ End the snooze", SETTINGS, "s", 0)])
    return InlineKeyboardMarkup(rows)


async def reminders_command(update: Update, context: Ctx) -> None:
    """Show what the member receives, with buttons to change it."""
    member = context.acting_member
    preferences = await context.db.run(get_preferences, member_id=member.id)
    await _show_settings(update, context, preferences, edit=False)


async def _show_settings(
    update: Update, context: Ctx, preferences: Preferences, *, edit: bool
) -> None:
    member = context.acting_member
    snoozed = preferences.snoozed(context.now())
    text = context.templates.render(
        "reminder_settings.html",
        topics=[(topic, preferences.receives(topic)) for topic in topics_for(member)],
        snoozed_until=preferences.snoozed_until if snoozed else None,
        quiet_hours=context.settings.quiet_hours,
    )
    markup = settings_keyboard(member, preferences, snoozed)
    if edit and update.callback_query is not None:
        await edit_in_place(update.callback_query, text, markup)
    else:
        await send_text(update, context, text, keyboard=markup)


async def on_settings_button(update: Update, context: Ctx) -> None:
    """rm:t:TOPIC turns a kind on or off; rm:s:DAYS snoozes everything (0 ends a snooze)."""
    query = update.callback_query
    assert query is not None
    pieces = parts(query.data, 3)
    member = context.acting_member
    if (
        pieces is not None
        and pieces[1] == "t"
        and pieces[2] in {t.value for t in topics_for(member)}
    ):
        current = await context.db.run(get_preferences, member_id=member.id)
        topic = Topic(pieces[2])
        preferences = await context.db.run(
            set_topic,
            member_id=member.id,
            topic=topic,
            on=not current.receives(topic),
            at=context.now(),
        )
        await query.answer(f"{topic.label}: {'on' if preferences.receives(topic) else 'off'}")
    elif pieces is not None and pieces[1] == "s" and pieces[2] in {"0", *map(str, SNOOZE_CHOICES)}:
        days = int(pieces[2])
        until = context.now() + timedelta(days=days) if days else None
        preferences = await context.db.run(
            snooze, member_id=member.id, until=until, at=context.now()
        )
        await query.answer("Snoozed" if until else "Snooze ended")
    else:
        await refuse_forged(update, context)
        return
    await _show_settings(update, context, preferences, edit=True)


HANDLERS: list[BaseHandler[Update, Ctx, None]] = [
    command("reminders", reminders_command),
    guarded_button(rf"^{SETTINGS}:", "reminders", on_settings_button),
    guarded_button(rf"^{CHECKIN}:", "reminders", on_checkin_button),
]
