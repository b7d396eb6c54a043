"""When a subject may next have a reminder due, if its data does not change meanwhile.

`scheduler.incremental` works a subject out again at that moment (or as soon as its data
changes) and leaves it alone until then. The moment must never be late: a reminder found a
round late could be recorded in another state than the full planner records it in (expired,
or superseded). Early costs only a little work, so every candidate below errs early.

A subject's reminders can become due in two ways:

- an occasion it has now reaches its moment for a member not yet recorded: its send time,
  or its expiry (a reminder held past it is recorded as expired). A snoozed member's held
  time comes after their snooze ends, and a snooze that ends changes the member's facts
  (`models.reminder_facts` reads an ended snooze as none), which works the subject out then;
- an occasion it has not got now appears: an offset's moment enters the window planning
  looks ahead over, the next week of an overdue action, the next check-in, the next Monday's
  digest, a new year's occurrence of a yearly deadline.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time, timedelta

from csp_bot.models.localtime import Offset, local_moment
from csp_bot.models.reminder_types import (
    ABOUT_ACTION,
    ABOUT_DEADLINE,
    ABOUT_DIGEST,
    ABOUT_MEASURE,
    ABOUT_MEETING,
    ABOUT_RETURNS,
    ActionFacts,
    DeadlineFacts,
    MeasureFacts,
    MeetingFacts,
    Recorded,
    Subject,
)
from csp_bot.scheduler.due import (
    CHAIR_RETURNS_OFFSETS,
    DAY_TIME,
    LOOKAHEAD,
    RETURNS_AHEAD,
    RETURNS_OFFSETS,
    Occasion,
    People,
    Rules,
    figure_due_day,
    figure_due_moment,
    figure_period,
    occurrences_near,
    weekly_moment,
)


class WakeTimes:
    """Works out subjects' next moments from the facts and people of one round."""

    def __init__(
        self,
        meetings: dict[int, MeetingFacts],
        deadlines: dict[int, DeadlineFacts],
        actions: dict[int, ActionFacts],
        people: People,
        rules: Rules,
        now: datetime,
        measures: dict[int, MeasureFacts] | None = None,
    ) -> None:
        self.meetings, self.deadlines, self.actions = meetings, deadlines, actions
        self.people, self.rules, self.now = people, rules, now
        self.measures = measures or {}

    def __call__(
        self, subject: Subject, occasions: Sequence[Occasion], recorded: Recorded
    ) -> datetime | None:
        """The earliest moment after now at which the subject may have something new due."""
        candidates = [*self._occasion_moments(occasions, recorded), *self._appearing(subject)]
        return min((moment for moment in candidates if moment > self.now), default=None)

    def _occasion_moments(
        self, occasions: Iterable[Occasion], recorded: Recorded
    ) -> Iterator[datetime]:
        calendar = self.rules.calendar
        for occasion in occasions:
            done = recorded.get((occasion.kind, occasion.subject_id, occasion.occurrence), ())
            if all(recipient.id in done for recipient in occasion.recipients):
                continue
            yield calendar.send_time(occasion.fire_at, occasion.expires_at)
            yield occasion.expires_at

    def _appearing(self, subject: Subject) -> Iterable[datetime]:
        """The moments at which the subject gains an occasion it has not got now."""
        about, subject_id = subject
        if about == ABOUT_MEETING:
            return self._entering(self.meetings[subject_id].starts_at, self.rules.meeting_offsets)
        if about == ABOUT_RETURNS:
            return self._returns_appearing(self.meetings[subject_id])
        if about == ABOUT_DEADLINE:
            return self._deadline_appearing(self.deadlines[subject_id])
        if about == ABOUT_ACTION:
            return self._action_appearing(self.actions[subject_id])
        if about == ABOUT_DIGEST:
            return [self._next_monday_morning()]
        if about == ABOUT_MEASURE:
            return self._figure_appearing(self.measures[subject_id])
        raise ValueError(f"no such subject: {about}")

    def _entering(self, anchor: datetime, offsets: Iterable[Offset]) -> Iterator[datetime]:
        """When each offset's reminder before `anchor` comes within planning's look-ahead."""
        for offset in offsets:
            yield offset.before(anchor, self.rules.zone) - LOOKAHEAD

    def _returns_appearing(self, meeting: MeetingFacts) -> Iterator[datetime]:
        yield meeting.starts_at - RETURNS_AHEAD
        yield from self._entering(meeting.starts_at, RETURNS_OFFSETS)
        yield from self._entering(meeting.starts_at, CHAIR_RETURNS_OFFSETS)

    def _deadline_appearing(self, deadline: DeadlineFacts) -> Iterator[datetime]:
        zone = self.rules.zone
        for day in occurrences_near(deadline, self.now, zone):
            yield from self._entering(
                local_moment(day, DAY_TIME, zone), self.rules.deadline_offsets
            )
        if deadline.yearly:  # the occurrences looked at move on at the new year
            next_year = self.now.astimezone(zone).year + 1
            yield local_moment(date(next_year, 1, 1), time(0), zone)

    def _action_appearing(self, action: ActionFacts) -> Iterator[datetime]:
        if action.complete or not self.people.for_action(action):
            return  # no reminders at all until its data or its people change
        zone = self.rules.zone
        if action.due_on is not None:
            anchor = local_moment(action.due_on, DAY_TIME, zone)
            yield from self._entering(anchor, self.rules.action_offsets)
            yield self._next_overdue_week(action.due_on)
        yield self._next_checkin(action)

    def _next_overdue_week(self, due_on: date) -> datetime:
        """The first weekly overdue moment after now (weekly from the day after `due_on`)."""
        first = due_on + timedelta(days=1)
        zone = self.rules.zone
        today = self.now.astimezone(zone).date()
        week = max(0, (today - first).days // 7)
        while weekly_moment(first, week, zone) <= self.now:
            week += 1
        return weekly_moment(first, week, zone)

    def _figure_appearing(self, measure: MeasureFacts) -> Iterator[datetime]:
        """The next weekly chase of the period now due, and the next period falling due."""
        period = figure_period(measure, self.rules, self.now)
        first = figure_due_day(period, self.rules)
        zone = self.rules.zone
        week = max(0, (self.now.astimezone(zone).date() - first).days // 7)
        while weekly_moment(first, week, zone) <= self.now:
            week += 1
        yield weekly_moment(first, week, zone)
        yield figure_due_moment(period.shifted(1), self.rules)

    def _next_checkin(self, action: ActionFacts) -> datetime:
        """The first check-in moment after now, as `due.checkin_occasions` counts them."""
        quiet_after = self.rules.quiet_after
        start = action.last_activity + quiet_after
        if action.snoozed_until is not None and action.snoozed_until > start:
            start = action.snoozed_until
        if start > self.now:
            return start
        return start + ((self.now - start) // quiet_after + 1) * quiet_after

    def _next_monday_morning(self) -> datetime:
        """The next Monday 09:00 after now: a new week's digest."""
        zone = self.rules.zone
        today = self.now.astimezone(zone).date()
        monday = today - timedelta(days=today.weekday())
        moment = local_moment(monday, DAY_TIME, zone)
        if moment <= self.now:
            moment = local_moment(monday + timedelta(days=7), DAY_TIME, zone)
        return moment
