"""Planning from what changed: the reminders the full planner records, for far less work.

The full planner (`scheduler.rounds.plan_reminders`) reads every fact and every recorded key
and works out every subject, every minute. `Planner` keeps between rounds the facts it last
read and, for each subject, the next moment it may have a reminder due (`scheduler.wakes`).
A round reads the planning data version (`models.data_version`); only when it has moved are
the facts read again and compared with those kept. It then works out, exactly as the full
planner would, the subjects whose facts changed (or whose people did: a member's role,
organisation, settings or snooze), those whose next moment has come and those that failed
last time, reading the recorded keys of those subjects only.

The first round, and any after a failure, a change of rules or a clock that went back, works
out every subject: in chunks, each in a transaction of its own, so that memory stays
bounded, the write lock is held briefly, and users' commands get the interpreter between
chunks. What is kept is in memory only; a restarted bot plans everything once more, from the
database, which stays the source of truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from csp_bot.models.access import ORGANISATION_CONTACTS
from csp_bot.models.data_version import planning_version
from csp_bot.models.outbox import record_due, recorded_keys_about, sweep_interrupted
from csp_bot.models.reminder_facts import ActionReading, load_facts, read_actions, snooze_at
from csp_bot.models.reminder_types import (
    ABOUT_ACTION,
    ABOUT_DEADLINE,
    ABOUT_DIGEST,
    ABOUT_MEASURE,
    ABOUT_MEETING,
    ABOUT_RETURNS,
    ActionFacts,
    DeadlineFacts,
    Due,
    Facts,
    MeasureFacts,
    MeetingFacts,
    Recipient,
    Subject,
)
from csp_bot.scheduler.due import (
    DIGEST_SUBJECT,
    Occasion,
    People,
    Rules,
    Work,
    Worked,
    action_occasions,
    deadline_occasions,
    digest_occasions,
    figure_occasions,
    meeting_occasions,
    previous_meeting,
    returns_occasions,
    stale_actions,
    usable_recipients,
    work_out,
)
from csp_bot.scheduler.wakes import WakeTimes

if TYPE_CHECKING:  # a session is only passed through to the domain operations in `models`
    from sqlmodel import Session

    from csp_bot.models.db import Database

# Subjects worked out per transaction in a round that works out many (the first one).
CHUNK = 500
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Known:
    """The facts of one reading, indexed the ways a round looks them up."""

    facts: Facts
    actions_read: ActionReading
    people: People
    meetings: dict[int, MeetingFacts]
    deadlines: dict[int, DeadlineFacts]
    actions: dict[int, ActionFacts]
    by_owner: dict[int, list[int]]
    by_lead: dict[int, list[int]]
    measures: dict[int, MeasureFacts]

    @classmethod
    def read(
        cls,
        session: Session,
        *,
        rules: Rules,
        now: datetime,
        reported: set[Subject],
        since: Known | None = None,
    ) -> Known:
        """The facts now (given the last reading, only changed actions are built again)."""
        last = None if since is None else since.actions_read
        actions = read_actions(session, reported=reported, since=last)
        facts = load_facts(
            session,
            now=now,
            zone=rules.zone,
            reported=reported,
            actions=list(actions.facts.values()),
        )
        return cls.of(facts, actions, rules, reported)

    @classmethod
    def of(
        cls, facts: Facts, actions_read: ActionReading, rules: Rules, reported: set[Subject]
    ) -> Known:
        by_owner: dict[int, list[int]] = {}
        by_lead: dict[int, list[int]] = {}
        for action in facts.actions:
            by_lead.setdefault(action.lead_organisation_id, []).append(action.id)
            for owner in action.owner_member_ids:
                by_owner.setdefault(owner, []).append(action.id)
        return cls(
            facts=facts,
            actions_read=actions_read,
            people=People(usable_recipients(facts.recipients, rules, reported)),
            meetings={meeting.id: meeting for meeting in facts.meetings},
            deadlines={deadline.id: deadline for deadline in facts.deadlines},
            actions={action.id: action for action in facts.actions},
            by_owner=by_owner,
            by_lead=by_lead,
            measures={measure.id: measure for measure in facts.measures},
        )

    def subjects(self) -> list[Subject]:
        """Every subject, in the full planner's order."""
        return [
            *((ABOUT_MEETING, meeting_id) for meeting_id in self.meetings),
            *((ABOUT_DEADLINE, deadline_id) for deadline_id in self.deadlines),
            *((ABOUT_ACTION, action_id) for action_id in self.actions),
            *((ABOUT_RETURNS, meeting_id) for meeting_id in self.meetings),
            (ABOUT_DIGEST, DIGEST_SUBJECT),
            *((ABOUT_MEASURE, measure_id) for measure_id in self.measures),
        ]

    def returns_subjects(self) -> set[Subject]:
        return {(ABOUT_RETURNS, meeting_id) for meeting_id in self.meetings}

    def has(self, subject: Subject) -> bool:
        about, subject_id = subject
        if about in (ABOUT_MEETING, ABOUT_RETURNS):
            return subject_id in self.meetings
        if about == ABOUT_DEADLINE:
            return subject_id in self.deadlines
        if about == ABOUT_ACTION:
            return subject_id in self.actions
        if about == ABOUT_MEASURE:
            return subject_id in self.measures
        return subject == (ABOUT_DIGEST, DIGEST_SUBJECT)

    def work(self, subject: Subject, rules: Rules, now: datetime) -> Work:
        """The subject with the way `scheduler.due` works out its occasions."""
        return subject, self._occasions_of(subject, rules, now)

    def _occasions_of(
        self, subject: Subject, rules: Rules, now: datetime
    ) -> Callable[[], Iterable[Occasion]]:
        about, subject_id = subject
        people = self.people
        if about == ABOUT_MEETING:
            return partial(meeting_occasions, self.meetings[subject_id], people, rules, now)
        if about == ABOUT_DEADLINE:
            return partial(deadline_occasions, self.deadlines[subject_id], people, rules, now)
        if about == ABOUT_ACTION:
            return partial(action_occasions, self.actions[subject_id], people, rules, now)
        if about == ABOUT_RETURNS:
            meeting = self.meetings[subject_id]
            return partial(returns_occasions, self.facts, meeting, people, rules, now)
        if about == ABOUT_MEASURE:
            measure, starts = self.measures[subject_id], self.facts.plan_starts_at
            return partial(figure_occasions, measure, people, rules, now, starts)
        return partial(digest_occasions, people, rules, now)

    def wake_times(self, rules: Rules, now: datetime) -> WakeTimes:
        return WakeTimes(
            self.meetings, self.deadlines, self.actions, self.people, rules, now, self.measures
        )

    def after_snoozes(self, now: datetime, rules: Rules, reported: set[Subject]) -> Known:
        """These facts as a reading at `now` would give them: snoozes and absences that
        ended are none."""
        recipients = self.facts.recipients
        if not any(ended(recipient, now) for recipient in recipients):
            return self
        woken = [back_at(recipient, now) for recipient in recipients]
        return Known.of(replace(self.facts, recipients=woken), self.actions_read, rules, reported)


def snooze_ended(recipient: Recipient, now: datetime) -> bool:
    until = recipient.snoozed_until
    return until is not None and snooze_at(until, now) is None


def absence_ended(recipient: Recipient, now: datetime) -> bool:
    return recipient.away_until is not None and recipient.away_until <= now


def ended(recipient: Recipient, now: datetime) -> bool:
    return snooze_ended(recipient, now) or absence_ended(recipient, now)


def back_at(recipient: Recipient, now: datetime) -> Recipient:
    """The recipient as read at `now`: without a snooze or an absence that has ended."""
    if snooze_ended(recipient, now):
        recipient = replace(recipient, snoozed_until=None)
    if absence_ended(recipient, now):
        recipient = replace(recipient, deputy_id=None, away_until=None)
    return recipient


def changed_subjects(old: Known, new: Known) -> set[Subject]:
    """The subjects whose reminders may differ between two readings of the facts."""
    meetings = changed_keys(old.meetings, new.meetings)
    actions = changed_keys(old.actions, new.actions)
    changed = {(ABOUT_MEETING, meeting_id) for meeting_id in meetings}
    changed |= {(ABOUT_DEADLINE, i) for i in changed_keys(old.deadlines, new.deadlines)}
    changed |= {(ABOUT_ACTION, action_id) for action_id in actions}
    changed |= {(ABOUT_MEASURE, i) for i in changed_keys(old.measures, new.measures)}
    if old.facts.plan_starts_at != new.facts.plan_starts_at:  # figures are chased from it
        changed |= {(ABOUT_MEASURE, measure_id) for measure_id in new.measures}
    if meetings or old.facts.plan_starts_at != new.facts.plan_starts_at:
        # Every meeting's returns count from the meeting before it (or the plan's start).
        changed |= new.returns_subjects()
    else:
        changed |= returns_touched(old, new, actions)
    changed |= people_touched(old, new)
    return {subject for subject in changed if new.has(subject)}


def returns_touched(old: Known, new: Known, actions: set[int]) -> set[Subject]:
    """The meetings' returns whose list of stale actions a change to `actions` may alter:
    those for which an action was stale before the change or is after it (a partner's update
    to an action already updated since the last meeting touches none)."""
    starts = sorted(meeting.starts_at for meeting in new.facts.meetings)
    touched = set()
    for meeting in new.facts.meetings:
        since = previous_meeting(starts, meeting.starts_at) or new.facts.plan_starts_at
        versions = [
            version
            for action_id in actions
            for version in (old.actions.get(action_id), new.actions.get(action_id))
            if version is not None
        ]
        if stale_actions(versions, since):
            touched.add((ABOUT_RETURNS, meeting.id))
    return touched


def people_touched(old: Known, new: Known) -> set[Subject]:
    """The subjects that may go to a member who changed (or came, or went).

    Meetings, deadlines, returns and the digest are few: all of them. Of the actions, those
    the member owns, and for a partner those of their organisation (old and new).
    """
    members = changed_keys(old.people.by_id, new.people.by_id)
    if not members:
        return set()
    # Those whose reminders go to a member who changed: what reaches them changed too.
    for people in (old.people, new.people):
        members |= {absent for absent, deputy in people.stand_in.items() if deputy.id in members}
    touched = {(ABOUT_MEETING, meeting_id) for meeting_id in new.meetings}
    touched |= {(ABOUT_DEADLINE, deadline_id) for deadline_id in new.deadlines}
    touched |= new.returns_subjects() | {(ABOUT_DIGEST, DIGEST_SUBJECT)}
    # Measures are few, like meetings: all of them.
    touched |= {(ABOUT_MEASURE, measure_id) for measure_id in new.measures}
    for member_id in members:
        touched |= {(ABOUT_ACTION, i) for i in new.by_owner.get(member_id, ())}
        for recipient in (old.people.by_id.get(member_id), new.people.by_id.get(member_id)):
            if recipient is not None and recipient.role in ORGANISATION_CONTACTS:
                led = new.by_lead.get(recipient.organisation_id, ())
                touched |= {(ABOUT_ACTION, action_id) for action_id in led}
    return touched


def changed_keys(old: Mapping[K, V], new: Mapping[K, V]) -> set[K]:
    """Keys added, removed, or whose value differs (most are the very same object)."""
    return {
        key
        for key in old.keys() | new.keys()
        if old.get(key) is not new.get(key) and old.get(key) != new.get(key)
    }


@dataclass
class Round:
    """One planning round: its time, the facts it works from, the subjects it works out."""

    rules: Rules
    now: datetime
    version: int
    known: Known
    subjects: list[Subject]
    whole: bool  # every subject, as in a first round
    wakes: dict[Subject, datetime | None] = field(default_factory=dict)
    failed: set[Subject] = field(default_factory=set)

    def chunks(self) -> Iterator[list[Subject]]:
        for start in range(0, len(self.subjects), CHUNK):
            yield self.subjects[start : start + CHUNK]


class Planner:
    """What planning keeps between rounds (in memory: rebuilt by the first round).

    `begin` and `work` run in transactions and change nothing here; `absorb` and `finish`
    take their results once committed, so an operation run again after a lost connection
    (`models.db`) or a round cut short cannot leave a subject marked done that was not.
    """

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Drop what is kept: the next round works out every subject."""
        self.rules: Rules | None = None
        self.at: datetime | None = None
        self.version: int | None = None
        self.known: Known | None = None
        self.wakes: dict[Subject, datetime] = {}
        self.failing: set[Subject] = set()

    def begin(
        self, session: Session, *, rules: Rules, now: datetime, reported: set[Subject]
    ) -> Round:
        """Read what changed, and choose the subjects this round works out."""
        # Read first: a write committed after it moves the version, and the next round sees it.
        version = planning_version(session)
        known = self.known
        if known is None or rules != self.rules or self.at is None or now < self.at:
            known = Known.read(session, rules=rules, now=now, reported=reported)
            subjects = known.subjects()
            whole = True
        else:
            changed: set[Subject] = set()
            if version != self.version:
                fresh = Known.read(session, rules=rules, now=now, reported=reported, since=known)
                changed, known = changed_subjects(known, fresh), fresh
            unsnoozed = known.after_snoozes(now, rules, reported)
            changed |= people_touched(known, unsnoozed)
            known = unsnoozed
            subjects = sorted(self._chosen(changed, now, known))
            whole = False
        # Writes last: on SQLite the transaction holds the write lock from its first write.
        sweep_interrupted(session, now=now)
        return Round(rules, now, version, known, subjects, whole)

    def _chosen(self, changed: set[Subject], now: datetime, known: Known) -> Iterator[Subject]:
        woken = {subject for subject, moment in self.wakes.items() if moment <= now}
        return (subject for subject in changed | woken | self.failing if known.has(subject))

    def work(
        self, session: Session, *, round: Round, subjects: list[Subject], reported: set[Subject]
    ) -> Worked:
        """Work out `subjects` (a chunk of the round's) and record what is due."""
        known, rules, now = round.known, round.rules, round.now
        recorded = recorded_keys_about(session, now=now, subjects=subjects)
        work = (known.work(subject, rules, now) for subject in subjects)
        worked = work_out(work, rules, now, recorded, reported, known.wake_times(rules, now))
        record_due(session, dues=worked.dues, at=now)
        return worked

    def absorb(self, round: Round, worked: Worked) -> None:
        """Take a committed chunk's results into the round."""
        round.wakes.update(worked.wakes)
        round.failed |= worked.failed

    def finish(self, round: Round) -> None:
        """Keep what the round, now wholly committed, worked out."""
        if round.whole:
            self.wakes, self.failing = {}, set()
        for subject, moment in round.wakes.items():
            if moment is None:
                self.wakes.pop(subject, None)
            else:
                self.wakes[subject] = moment
        self.failing = (self.failing - round.wakes.keys()) | round.failed
        if round.known is not self.known and not round.whole:
            self._drop_gone(round.known)
        self.rules, self.at, self.version, self.known = (
            round.rules,
            round.now,
            round.version,
            round.known,
        )

    def _drop_gone(self, known: Known) -> None:
        self.wakes = {subject: at for subject, at in self.wakes.items() if known.has(subject)}
        self.failing = {subject for subject in self.failing if known.has(subject)}


def plan_round(
    db: Database,
    planner: Planner,
    *,
    rules: Rules,
    now: datetime,
    reported: set[Subject] | None = None,
) -> list[Due]:
    """A whole round in this thread (the bot runs the same steps on its planning thread)."""
    reported = set() if reported is None else reported
    recorded: list[Due] = []
    try:
        round = db.call(planner.begin, rules=rules, now=now, reported=reported)
        for chunk in round.chunks():
            worked = db.call(planner.work, round=round, subjects=chunk, reported=reported)
            planner.absorb(round, worked)
            recorded += worked.dues
        planner.finish(round)
    except BaseException:
        planner.forget()
        raise
    return recorded
