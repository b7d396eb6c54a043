"""The vocabularies of meetings and reminders: replies, reminder kinds, topics, outbox states.

Also the plain values reminder planning works with: the facts it reads (`reminder_facts`),
the reminders it records (`Due`, keyed by `Key`) and those the outbox already holds."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, TypeVar

from csp_bot.models.enums import Role

log = logging.getLogger(__name__)


class Reply(StrEnum):
    """A board member's answer to a meeting invitation."""

    ATTENDING = "attending"
    APOLOGIES = "apologies"
    SUBSTITUTE = "substitute"

    @property
    def label(self) -> str:
        return REPLY_LABELS[self]

    @property
    def counts_to_quorum(self) -> bool:
        """A substitute attends in the member's place, so counts like the member."""
        return self != Reply.APOLOGIES


REPLY_LABELS = {
    Reply.ATTENDING: "attending",
    Reply.APOLOGIES: "apologies",
    Reply.SUBSTITUTE: "sending a substitute",
}


class Topic(StrEnum):
    """What a member can turn on or off in /reminders: kinds grouped as people think of them."""

    MEETINGS = "meetings"
    DEADLINES = "deadlines"
    ACTIONS = "actions"
    CHECKINS = "checkins"
    DIGEST = "digest"

    @property
    def label(self) -> str:
        return TOPIC_LABELS[self]


TOPIC_LABELS = {
    Topic.MEETINGS: "Board meetings",
    Topic.DEADLINES: "Annual deadlines",
    Topic.ACTIONS: "Actions due and overdue",
    Topic.CHECKINS: "Requests for updates",
    Topic.DIGEST: "Chair's weekly digest and returns",
}


class ReminderKind(StrEnum):
    """One kind of reminder: who gets it and when is decided in `scheduler.due`."""

    MEETING = "meeting"
    DEADLINE = "deadline"
    ACTION_DUE = "action_due"
    ACTION_OVERDUE = "action_overdue"
    CHECKIN = "checkin"
    RETURNS_REQUEST = "returns_request"
    RETURNS_CHAIR = "returns_chair"
    DIGEST = "digest"
    FIGURE_DUE = "figure_due"

    @property
    def topic(self) -> Topic:
        return KIND_TOPICS[self]


KIND_TOPICS = {
    ReminderKind.MEETING: Topic.MEETINGS,
    ReminderKind.DEADLINE: Topic.DEADLINES,
    ReminderKind.ACTION_DUE: Topic.ACTIONS,
    ReminderKind.ACTION_OVERDUE: Topic.ACTIONS,
    ReminderKind.CHECKIN: Topic.CHECKINS,
    ReminderKind.RETURNS_REQUEST: Topic.CHECKINS,
    ReminderKind.RETURNS_CHAIR: Topic.DIGEST,
    ReminderKind.DIGEST: Topic.DIGEST,
    # A figure is chased as an update is: "Requests for updates" turns both off.
    ReminderKind.FIGURE_DUE: Topic.CHECKINS,
}


class OutboxState(StrEnum):
    """Where one reminder has got to. Only `pending` is ever sent; every other state is final
    except `sending`, which becomes `sent` or, if the bot stopped mid-send, `unconfirmed`."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    # The bot stopped (or the network failed) after handing the message to Telegram and
    # before recording the answer: it may have arrived. Never resent (see README).
    UNCONFIRMED = "unconfirmed"
    EXPIRED = "expired"  # its moment passed while it could not be sent
    SUPERSEDED = "superseded"  # a later reminder about the same thing went instead
    DROPPED = "dropped"  # its subject was deleted or changed before it went
    MUTED = "muted"  # the member had turned this kind off
    UNDELIVERABLE = "undeliverable"  # the member has blocked the bot, or Telegram refused it
    # Telegram would not take it (server errors, dropped connections) however often it was
    # tried: it never arrived. Listed in the coordinator's digest.
    FAILED = "failed"


# --- what reminder planning reads and records ------------------------------------------------

# Missed reminders older than this are no longer looked at (longer than the longest offset).
LOOKBACK = timedelta(days=35)


class Key(NamedTuple):
    """What makes a reminder one reminder: sent at most once per key."""

    kind: ReminderKind
    subject_id: int
    member_id: int
    occurrence: str


# What planning works out on its own: ("deadline", 7), ("member", 12), ...
Subject = tuple[str, int]

ABOUT_MEETING = "meeting"
ABOUT_DEADLINE = "deadline"
ABOUT_ACTION = "action"
ABOUT_RETURNS = "returns for meeting"
ABOUT_DIGEST = "digest"
ABOUT_MEASURE = "measure"
# The kinds of reminder each subject has, as the outbox records them (kind, subject id).
SUBJECT_KINDS: Mapping[str, tuple[ReminderKind, ...]] = {
    ABOUT_MEETING: (ReminderKind.MEETING,),
    ABOUT_DEADLINE: (ReminderKind.DEADLINE,),
    ABOUT_ACTION: (
        ReminderKind.ACTION_DUE,
        ReminderKind.ACTION_OVERDUE,
        ReminderKind.CHECKIN,
    ),
    ABOUT_RETURNS: (ReminderKind.RETURNS_REQUEST, ReminderKind.RETURNS_CHAIR),
    ABOUT_DIGEST: (ReminderKind.DIGEST,),
    ABOUT_MEASURE: (ReminderKind.FIGURE_DUE,),
}


def report_failure(subject: Subject, reported: set[Subject]) -> None:
    """Log the exception being handled for `subject`, unless it was logged before."""
    if subject in reported:
        return
    reported.add(subject)
    kind, subject_id = subject
    log.exception(
        "cannot work out the reminders for %s %s: skipped (logged once)", kind, subject_id
    )


# The reminders already recorded: for each (kind, subject, occurrence), the members. Planning
# looks up a whole occasion at once, then each member with a cheap integer test.
Recorded = Mapping[tuple[ReminderKind, int, str], AbstractSet[int]]


def recorded_index(keys: Iterable[Key]) -> dict[tuple[ReminderKind, int, str], set[int]]:
    """Index recorded keys the way `due_reminders` looks them up."""
    index: dict[tuple[ReminderKind, int, str], set[int]] = {}
    for kind, subject_id, member_id, occurrence in keys:
        index.setdefault((kind, subject_id, occurrence), set()).add(member_id)
    return index


@dataclass(frozen=True)
class Recipient:
    """An active member as reminders see them."""

    id: int
    role: Role
    organisation_id: int
    muted: frozenset[Topic] = frozenset()
    snoozed_until: datetime | None = None
    unreachable: bool = False
    # While they are away: the member who covers for them (gets their reminders), and until when.
    deputy_id: int | None = None
    away_until: datetime | None = None


@dataclass(frozen=True)
class MeetingFacts:
    id: int
    starts_at: datetime


@dataclass(frozen=True)
class DeadlineFacts:
    id: int
    due_on: date
    yearly: bool
    organisation_ids: frozenset[int]


@dataclass(frozen=True)
class ActionFacts:
    id: int
    due_on: date | None
    complete: bool
    lead_organisation_id: int
    # The members who own it, in the order they were linked (none: its lead's partners).
    owner_member_ids: tuple[int, ...]
    # The latest update not taken back, and the time its status last changed otherwise.
    last_update_at: datetime | None
    last_activity: datetime
    snoozed_until: datetime | None = None


@dataclass(frozen=True)
class MeasureFacts:
    id: int
    quarterly: bool
    supplier_organisation_id: int
    # The periods (as `models.values.Period` writes them) that have a standing figure.
    reported: frozenset[str]
    # Members linked as its owners, in the order linked: they are chased, not the supplier.
    owner_member_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Facts:
    """Everything the rules look at, read in one transaction."""

    recipients: Sequence[Recipient]
    meetings: Sequence[MeetingFacts]
    deadlines: Sequence[DeadlineFacts]
    actions: Sequence[ActionFacts]
    plan_starts_at: datetime | None = None
    measures: Sequence[MeasureFacts] = ()


class Due(NamedTuple):
    """A reminder to record now, in the state it starts in (a flat tuple: plans make many)."""

    kind: ReminderKind
    subject_id: int
    member_id: int
    occurrence: str
    fire_at: datetime
    send_at: datetime
    expires_at: datetime
    state: OutboxState

    @property
    def key(self) -> Key:
        return Key(self.kind, self.subject_id, self.member_id, self.occurrence)


_Id = TypeVar("_Id")
# Ids bound in one statement's IN list: well inside every database's limit on parameters.
IDS_PER_STATEMENT = 500


def statement_chunks(ids: Sequence[_Id]) -> Iterator[Sequence[_Id]]:
    """`ids` a statement's worth at a time, for the lookups planning makes by id."""
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        yield ids[start : start + IDS_PER_STATEMENT]
