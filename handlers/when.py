"""Saying when something is, relative to now, the way people say it."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo


def day_phrase(today: date, day: date) -> str:
    """`today`, `tomorrow`, `in 7 days`; `2 days ago` for a day gone."""
    days = (day - today).days
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days > 1:
        return f"in {days} days"
    return "yesterday" if days == -1 else f"{-days} days ago"


def moment_phrase(now: datetime, then: datetime, zone: ZoneInfo) -> str:
    """`in 45 minutes`, `in 2 hours`, `today at 14:00`, `tomorrow at 10:00`, `in 7 days`."""
    minutes = int((then - now).total_seconds() // 60)
    if minutes < 60:
        return f"in {max(minutes, 1)} minute{'s' if minutes != 1 else ''}"
    if minutes < 6 * 60:
        hours = round(minutes / 60)
        return f"in {hours} hour{'s' if hours != 1 else ''}"
    local = then.astimezone(zone)
    phrase = day_phrase(now.astimezone(zone).date(), local.date())
    return f"{phrase} at {local:%H:%M}" if phrase in ("today", "tomorrow") else phrase
