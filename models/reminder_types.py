"""The vocabularies of meetings and reminders: replies, reminder kinds, topics, outbox states."""

from __future__ import annotations

from enum import StrEnum


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
