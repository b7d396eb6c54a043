"""The statutory calendar: the yearly deadlines a CSP has by regulation, each with its source.

A plan file with `statutory_calendar: england` (or `wales`) gets these as yearly deadlines
for the responsible partners, imported like the file's own (`models.plan_import`), so
/deadlines, the summary and the deadline reminders show them. The regulations require each
of these once a year but fix no calendar date for most: the dates are settings
(`StatutoryDates`, from `CSPBOT_STATUTORY_*`), and docs/plan-format.md says which are defaults
chosen here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from csp_bot.models.enums import Recurrence
from csp_bot.models.plan_file import RESPONSIBLE_PARTNERS, DeadlineEntry, Nation

_MONTH_DAY = re.compile(r"(?P<month>[0-9]{2})-(?P<day>[0-9]{2})")

STRATEGY_REGULATIONS = {
    Nation.ENGLAND: "Crime and Disorder (Formulation and Implementation of Strategy) "
    "Regulations 2007 (SI 2007/1830)",
    Nation.WALES: "Crime and Disorder (Formulation and Implementation of Strategy) (Wales) "
    "Regulations 2007 (SI 2007/3076)",
}
CRIME_AND_DISORDER_ACT = "Crime and Disorder Act 1998, ss.5 to 7"
# The duty of the responsible authorities and the commissioner to have regard to each
# other's priorities (England and Wales alike).
POLICE_REFORM_ACT = "Police Reform and Social Responsibility Act 2011, s.10"
DOMESTIC_ABUSE_ACT = "Domestic Abuse Act 2021, Part 4 (England only)"
WALES_VAWDASV_ACT = "Violence against Women, Domestic Abuse and Sexual Violence (Wales) Act 2015"
SERIOUS_VIOLENCE_DUTY = (
    "Police, Crime, Sentencing and Courts Act 2022, Part 2 (serious violence duty)"
)


@dataclass(frozen=True)
class MonthDay:
    """A day of the year, written `MM-DD` (`03-31`)."""

    month: int
    day: int

    @classmethod
    def parse(cls, text: str) -> MonthDay:
        match = _MONTH_DAY.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"not a day of the year: {text!r} (write MM-DD, e.g. 03-31)")
        month, day = int(match["month"]), int(match["day"])
        try:
            date(2000, month, day)  # a leap year: 02-29 is a day of some years
        except ValueError:
            raise ValueError(f"not a day of the year: {text!r} (write MM-DD, e.g. 03-31)") from None
        return cls(month, day)

    def first_on_or_after(self, start: date) -> date:
        """The first such day from `start` on (29 February falls on the 28th in other years)."""
        for year in (start.year, start.year + 1, start.year + 2):
            try:
                candidate = date(year, self.month, self.day)
            except ValueError:
                candidate = date(year, self.month, 28)
            if candidate >= start:
                return candidate
        raise AssertionError("a day of the year recurs within two years")


@dataclass(frozen=True)
class StatutoryDates:
    """When each yearly statutory deadline falls (none of these dates is in the regulations,
    except as "each year"): the defaults are the settings' (bot/settings.py)."""

    strategic_assessment: MonthDay = MonthDay(12, 31)
    plan_refresh: MonthDay = MonthDay(3, 31)
    public_meeting: MonthDay = MonthDay(10, 31)
    plan_to_commissioner: MonthDay = MonthDay(4, 30)
    domestic_abuse_report: MonthDay = MonthDay(7, 31)
    serious_violence_review: MonthDay = MonthDay(1, 31)


@dataclass(frozen=True)
class StatutoryItem:
    """One statutory deadline: its title, what it asks, its source, and its date's setting."""

    title: str
    what: str
    source: str
    setting: str  # the StatutoryDates field


def statutory_items(nation: Nation) -> list[StatutoryItem]:
    """The yearly deadlines under `nation`'s regulations, in the order of the year's work."""
    regulations = STRATEGY_REGULATIONS[nation]
    return [
        StatutoryItem(
            "Strategic assessment",
            "The strategy group prepares the year's strategic assessment of crime, disorder, "
            "substance misuse and reoffending in the area, to inform the plan.",
            regulations,
            "strategic_assessment",
        ),
        StatutoryItem(
            "Partnership plan refresh",
            "The partnership plan is revised for the coming year in the light of the strategic "
            "assessment.",
            f"{regulations}; {CRIME_AND_DISORDER_ACT}",
            "plan_refresh",
        ),
        StatutoryItem(
            "Public consultation meeting",
            "At least one public meeting a year, at which senior officers of the responsible "
            "authorities answer on the partnership's work (community engagement).",
            regulations,
            "public_meeting",
        ),
        StatutoryItem(
            "Partnership plan sent to the Police and Crime Commissioner",
            "A copy of the revised partnership plan goes to the Police and Crime Commissioner, "
            "whose police and crime objectives the partnership must have regard to.",
            f"{regulations}; {POLICE_REFORM_ACT}",
            "plan_to_commissioner",
        ),
        _domestic_abuse_item(nation),
        StatutoryItem(
            "Serious violence strategy review",
            "The specified authorities review the serious violence strategic needs assessment "
            "and strategy (the CSP's strategy also covers serious violence).",
            SERIOUS_VIOLENCE_DUTY,
            "serious_violence_review",
        ),
    ]


def _domestic_abuse_item(nation: Nation) -> StatutoryItem:
    if nation is Nation.WALES:
        return StatutoryItem(
            "VAWDASV local strategy review",
            "Part 4 of the Domestic Abuse Act 2021 does not apply in Wales: the local authority "
            "and local health board review their joint local strategy instead.",
            WALES_VAWDASV_ACT,
            "domestic_abuse_report",
        )
    return StatutoryItem(
        "Domestic abuse local partnership board annual report",
        "The tier one authority, advised by its domestic abuse local partnership board, "
        "reports on the year's delivery of safe accommodation support.",
        DOMESTIC_ABUSE_ACT,
        "domestic_abuse_report",
    )


def statutory_titles(nation: Nation) -> list[str]:
    return [item.title for item in statutory_items(nation)]


def statutory_deadlines(
    nation: Nation | None, dates: StatutoryDates, *, plan_starts_on: date
) -> list[DeadlineEntry]:
    """The calendar's deadlines as plan-file deadlines: yearly, for the responsible partners,
    first falling on or after the plan's start."""
    if nation is None:
        return []
    return [
        DeadlineEntry(
            title=item.title,
            date=getattr(dates, item.setting).first_on_or_after(plan_starts_on),
            repeats=Recurrence.YEARLY,
            organisations=[RESPONSIBLE_PARTNERS],
            description=f"{item.what} Source: {item.source}.",
        )
        for item in statutory_items(nation)
    ]
