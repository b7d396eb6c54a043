"""The fixed vocabularies of the domain: roles, statuses, kinds."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a member may do; the order is from most to least trusted."""

    ADMIN = "admin"
    CHAIR = "chair"
    BOARD = "board"
    PARTNER = "partner"
    OBSERVER = "observer"


class OrgKind(StrEnum):
    """Responsible partners are named by the Crime and Disorder Act 1998; the rest are wider."""

    RESPONSIBLE = "responsible"
    WIDER = "wider"


class Status(StrEnum):
    """Delivery status of an action, with RAG meaning."""

    NOT_STARTED = "not_started"
    GREEN = "green"
    AMBER = "amber"
    RED = "red"
    COMPLETE = "complete"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS = {
    Status.NOT_STARTED: "not started",
    Status.GREEN: "on track",
    Status.AMBER: "at risk",
    Status.RED: "off track",
    Status.COMPLETE: "complete",
}


class FundingStatus(StrEnum):
    """Where a partner's contribution to a funding stream has got to."""

    PROPOSED = "proposed"
    AGREED = "agreed"
    CONFIRMED = "confirmed"
    DECLINED = "declined"


class Recurrence(StrEnum):
    """Whether a deadline happens once or every year on the same day."""

    ONCE = "once"
    YEARLY = "yearly"
