"""Turning a reminder's content into the message a member receives: text and buttons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from telegram import InlineKeyboardMarkup

from csp_bot.handlers.meetings import reply_keyboard
from csp_bot.handlers.reminders import checkin_keyboard
from csp_bot.handlers.templating import Templates
from csp_bot.models.localtime import day_phrase, moment_phrase
from csp_bot.models.reminder_types import ReminderKind
from csp_bot.models.values import Period, format_money
from csp_bot.scheduler.content import (
    ActionNotice,
    Content,
    DeadlineNotice,
    DigestNotice,
    FigureNotice,
    MeetingNotice,
    ReturnsReport,
    ReturnsRequest,
)


@dataclass(frozen=True)
class Composed:
    text: str
    keyboard: InlineKeyboardMarkup | None = None


def compose(content: Content, *, templates: Templates, now: datetime) -> Composed:
    """The message for one reminder, as of `now`."""
    zone = templates.timezone
    match content:
        case MeetingNotice(meeting=meeting, reply=reply):
            text = templates.render(
                "reminder_meeting.html",
                meeting=meeting,
                reply=reply,
                soon=moment_phrase(now, meeting.starts_at, zone),
            )
            return Composed(text, reply_keyboard(meeting.id))
        case DeadlineNotice(deadline=deadline):
            soon = day_phrase(now.astimezone(zone).date(), deadline.due_on)
            return Composed(
                templates.render("reminder_deadline.html", deadline=deadline, soon=soon)
            )
        case ActionNotice(kind=kind, action=action, quiet_days=quiet_days):
            soon = day_phrase(now.astimezone(zone).date(), action.due_on) if action.due_on else ""
            text = templates.render(
                "reminder_action.html",
                kind=kind.value,
                action=action,
                soon=soon,
                quiet_days=quiet_days,
            )
            snooze = kind == ReminderKind.CHECKIN
            return Composed(text, checkin_keyboard(action.id, snooze=snooze))
        case ReturnsRequest(meeting=meeting, actions=actions, since=since, figures=figures):
            soon = moment_phrase(now, meeting.starts_at, zone)
            text = templates.render(
                "reminder_returns.html",
                meeting=meeting,
                actions=actions,
                since=since,
                soon=soon,
                figures=figures,
            )
            return Composed(text)
        case ReturnsReport(meeting=meeting, missing=missing, since=since, figures=figures):
            soon = moment_phrase(now, meeting.starts_at, zone)
            text = templates.render(
                "reminder_returns_chair.html",
                meeting=meeting,
                missing=missing,
                since=since,
                soon=soon,
                figures=figures,
            )
            return Composed(text)
        case DigestNotice(digest=digest, figures=figures):
            text = templates.render(
                "digest.html", digest=digest, figures=figures, money=format_money
            )
            return Composed(text)
        case FigureNotice(measure=measure, period=period, chase=chase):
            text = templates.render(
                "reminder_figure.html",
                measure=measure,
                period=period,
                chase=chase,
                short=_short_period(period),
            )
            return Composed(text)


def _short_period(period: Period) -> str:
    """The period as the one-line /figure takes it most briefly: `2021-Q2`, `2021-07`."""
    text = str(period)
    return text[:4] + text[7:] if period.quarterly else text
