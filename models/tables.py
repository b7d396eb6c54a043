"""The SQLModel tables: the plan, its people, their updates and the audit trail.

Times are stored in UTC (`UTCDateTime`) and shown in the configured zone. Money is
held in pence. Financial years are named by the calendar year they start in
(2021 is 2021/22, 1 April 2021 to 31 March 2022).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlmodel import Field, SQLModel

from csp_bot.models.enums import FundingStatus, OrgKind, Recurrence, Role, Status
from csp_bot.models.reminder_types import OutboxState, ReminderKind, Reply
from csp_bot.models.types import UTCDateTime, enum_type


class PlanInfo(SQLModel, table=True):
    """The plan itself: one row, named by the plan file."""

    __tablename__ = "plan_info"
    id: int | None = Field(default=None, primary_key=True)
    title: str
    area: str
    board: str
    starts_on: date
    ends_on: date


class Organisation(SQLModel, table=True):
    """A partner organisation: a responsible partner or a wider member."""

    __tablename__ = "organisation"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    short_name: str | None = None
    kind: OrgKind = Field(sa_type=enum_type(OrgKind))


class Member(SQLModel, table=True):
    """A person who uses the bot, known by their Telegram user id."""

    __tablename__ = "member"
    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int = Field(sa_type=BigInteger, unique=True, index=True)
    name: str
    organisation_id: int = Field(foreign_key="organisation.id")
    role: Role = Field(sa_type=enum_type(Role))
    active: bool = True
    joined_at: datetime = Field(sa_type=UTCDateTime)
    # When the coordinator ended their access (None while active).
    deactivated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When their personal details were erased: the name is then "former member N" and the
    # Telegram id -N, which no Telegram user has, so whoever writes from the old id is a stranger.
    erased_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Priority(SQLModel, table=True):
    """A plan priority, serving one of the county-wide strategies."""

    __tablename__ = "priority"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True)
    title: str
    strategy: str
    description: str = Field(default="", sa_type=Text)
    lead_organisation_id: int = Field(foreign_key="organisation.id")


class Action(SQLModel, table=True):
    """One piece of delivery under a priority, owned by a partner organisation."""

    __tablename__ = "action"
    # For the exception queries: the summary reads the actions in trouble, not all of them.
    # The last three hold every column the summary's counts read (by priority, by lead
    # organisation, and of the actions moved since the meeting), so those scans read a
    # narrow index rather than every action's title and description (migration 0014).
    __table_args__ = (
        Index("ix_action_status", "status", "priority_id"),
        Index("ix_action_due_on", "due_on"),
        Index("ix_action_counts", "priority_id", "status", "due_on", "last_update_at", "status_at"),
        Index("ix_action_returns", "lead_organisation_id", "status", "last_update_at"),
        Index("ix_action_moved", "last_update_at", "priority_id", "status"),
    )
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True, index=True)
    priority_id: int = Field(foreign_key="priority.id", index=True)
    title: str
    description: str = Field(default="", sa_type=Text)
    lead_organisation_id: int = Field(foreign_key="organisation.id", index=True)
    # The posts that own it, as the plan names them ("; " between several).
    owner: str | None = None
    due_on: date | None = None
    status: Status = Field(default=Status.NOT_STARTED, sa_type=enum_type(Status))
    # When the action was last reported on (every update moves it, whatever its status).
    status_at: datetime = Field(sa_type=UTCDateTime)
    # When the status last changed: "off track since ...". None reads as `status_at`, for
    # rows written in bulk without it.
    status_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The time of its latest live update (None: never updated, or every update withdrawn),
    # kept by `models.progress` so that lists need not search the updates for it.
    last_update_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ProgressUpdate(SQLModel, table=True):
    """What a partner reported about an action, when, and what they are doing about it."""

    __tablename__ = "progress_update"
    # An action's live updates by time, readable from the index alone: summaries look up
    # the latest for every action.
    __table_args__ = (
        Index(
            "ix_progress_update_action_live",
            "action_id",
            "created_at",
            sqlite_where=text("withdrawn_at IS NULL"),
            postgresql_where=text("withdrawn_at IS NULL"),
        ),
        UniqueConstraint("form_key", name="uq_progress_update_form_key"),
    )
    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="action.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    status: Status = Field(sa_type=enum_type(Status))
    note: str = Field(sa_type=Text)
    mitigation: str | None = Field(default=None, sa_type=Text)
    forecast: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    # The action's status before this update, so /undo can put it back exactly.
    previous_status: Status = Field(sa_type=enum_type(Status))
    previous_status_at: datetime = Field(sa_type=UTCDateTime)
    # Telegram redelivers an update the bot did not confirm; this makes the second a no-op.
    telegram_update_id: int | None = Field(default=None, sa_type=BigInteger, unique=True)
    # The same for a dashboard form sent twice: it carries the key it was rendered with.
    form_key: str | None = Field(default=None, sa_type=String(64))
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class FundingStream(SQLModel, table=True):
    """A shared function the partners fund together (MAPPA, the IPV pooled fund, ...)."""

    __tablename__ = "funding_stream"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True)
    name: str
    description: str = Field(default="", sa_type=Text)


class FundingDecision(SQLModel, table=True):
    """One partner's contribution to one stream in one financial year."""

    __tablename__ = "funding_decision"
    __table_args__ = (UniqueConstraint("stream_id", "organisation_id", "financial_year"),)
    id: int | None = Field(default=None, primary_key=True)
    stream_id: int = Field(foreign_key="funding_stream.id", index=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    financial_year: int
    amount_pence: int = Field(sa_type=BigInteger)
    status: FundingStatus = Field(sa_type=enum_type(FundingStatus))
    note: str = Field(default="", sa_type=Text)
    decided_at: datetime = Field(sa_type=UTCDateTime)


class Meeting(SQLModel, table=True):
    """A board meeting."""

    __tablename__ = "meeting"
    __table_args__ = (UniqueConstraint("title", "starts_at"),)
    id: int | None = Field(default=None, primary_key=True)
    title: str
    starts_at: datetime = Field(sa_type=UTCDateTime, index=True)
    location: str = ""
    agenda: str = Field(default="", sa_type=Text)


class Deadline(SQLModel, table=True):
    """A date the partnership must meet, once or every year."""

    __tablename__ = "deadline"
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(unique=True)
    due_on: date
    recurrence: Recurrence = Field(sa_type=enum_type(Recurrence))
    description: str = Field(default="", sa_type=Text)


class DeadlineOrganisation(SQLModel, table=True):
    """Which organisations a deadline concerns (their members are reminded)."""

    __tablename__ = "deadline_organisation"
    deadline_id: int = Field(foreign_key="deadline.id", primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", primary_key=True)


class Invite(SQLModel, table=True):
    """A one-time code that registers whoever redeems it to an organisation and role."""

    __tablename__ = "invite"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    role: Role = Field(sa_type=enum_type(Role))
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    used_by_member_id: int | None = Field(default=None, foreign_key="member.id")


class AuditEntry(SQLModel, table=True):
    """One change to the data: who made it, when, and the record before and after."""

    __tablename__ = "audit_entry"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str
    member_id: int | None = Field(default=None, foreign_key="member.id")
    entity: str = Field(index=True)
    entity_id: int | None = None
    change: str
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class DialogueDraft(SQLModel, table=True):
    """A guided dialogue in progress (/update, /meeting, /decide): one per user, so it
    survives a restart of the bot. `models.dialogue` reads and writes it."""

    __tablename__ = "dialogue_draft"
    user_id: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    dialogue: str = ""
    step: str = ""
    touched_at: datetime = Field(default=None, sa_type=UTCDateTime)
    # The Telegram update whose answer the row holds (a replay of it is not applied again).
    update_id: int | None = Field(default=None, sa_type=BigInteger)
    # The answers, where the buttons are shown, and what the step shows.
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Whether what the step shows has been shown: noted after every reply, by itself.
    shown: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class MeetingReply(SQLModel, table=True):
    """A board member's answer to a meeting: attending, apologies, or sending a substitute."""

    __tablename__ = "meeting_reply"
    meeting_id: int = Field(foreign_key="meeting.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    reply: Reply = Field(sa_type=enum_type(Reply))
    replied_at: datetime = Field(sa_type=UTCDateTime)


class ReminderPreference(SQLModel, table=True):
    """What one member receives: topics turned off, a snooze, and whether Telegram reaches them."""

    __tablename__ = "reminder_preference"
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    muted: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    snoozed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set when Telegram refuses to deliver (the member blocked the bot); cleared when they
    # next write to the bot. While set, reminders to them are recorded, not retried.
    unreachable_since: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ActionSnooze(SQLModel, table=True):
    """An action's check-in prompt put off ("snooze a week") until a time."""

    __tablename__ = "action_snooze"
    action_id: int = Field(foreign_key="action.id", primary_key=True)
    until: datetime = Field(sa_type=UTCDateTime)
    member_id: int | None = Field(default=None, foreign_key="member.id")


class OutboxEntry(SQLModel, table=True):
    """One reminder to one member: recorded once (the unique key), delivered at most once."""

    __tablename__ = "reminder_outbox"
    __table_args__ = (UniqueConstraint("kind", "subject_id", "member_id", "occurrence"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: ReminderKind = Field(sa_type=enum_type(ReminderKind))
    # The meeting, deadline or action it is about (0 for the digest, which has none).
    subject_id: int
    member_id: int = Field(foreign_key="member.id", index=True)
    # Which occurrence: the event's time or date and the offset, e.g. "20210916T0900Z/7d".
    occurrence: str
    fire_at: datetime = Field(sa_type=UTCDateTime, index=True)
    send_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    state: OutboxState = Field(sa_type=enum_type(OutboxState), index=True)
    # Times Telegram refused it (flood control, a server error, a dropped connection).
    attempts: int = 0
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    message_id: int | None = Field(default=None, sa_type=BigInteger)
    detail: str = ""


class DataVersion(SQLModel, table=True):
    """One row counting committed write transactions (`models.data_version`): an answer
    cached under one count is current for as long as the count stays the same."""

    __tablename__ = "data_version"
    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    version: int = Field(default=0, sa_type=BigInteger)


class InboxUpdate(SQLModel, table=True):
    """An update as Telegram delivered it, committed before Telegram is told it arrived.

    Processed from here, in order within its chat; `done_at` is set once it has been
    handled, so a restarted bot finishes what it had taken and not handled.
    """

    __tablename__ = "inbox_update"
    __table_args__ = (Index("ix_inbox_update_unfinished", "done_at", "update_id"),)
    update_id: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    # The chat (or, without one, the user) whose updates are handled in order.
    chat_key: int = Field(sa_type=BigInteger)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SendPace(SQLModel, table=True):
    """When the next message may go to a chat (or, in row 0, to anyone): the pace that all
    instances on one PostgreSQL database share (`models.send_pace`). In seconds since the
    epoch on the database's clock, which every instance reads alike."""

    __tablename__ = "send_pace"
    chat_id: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    next_at: float


class GroupLink(SQLModel, table=True):
    """A group chat the coordinator has linked to the bot, and whose audience it is: the
    bot answers plan data in no other group (`models.groups`)."""

    __tablename__ = "group_link"
    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, unique=True, index=True)
    audience: str  # models.groups.Audience
    title: str = ""
    linked_at: datetime = Field(sa_type=UTCDateTime)


class Measure(SQLModel, table=True):
    """A performance measure under a priority: what is counted, by whom, how often, and
    which way is better. Its targets and figures are rows of their own."""

    __tablename__ = "measure"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True)
    priority_id: int = Field(foreign_key="priority.id", index=True)
    title: str
    description: str = Field(default="", sa_type=Text)
    unit: str  # models.values.MEASURE_UNITS
    frequency: str  # monthly or quarterly
    supplier_organisation_id: int = Field(foreign_key="organisation.id", index=True)
    # The post that sends the figures, as the plan names it (like an action's owner).
    contact: str | None = None
    lower_is_better: bool
    baseline_value: float | None = None
    baseline_period: str | None = None
    # How far on the wrong side of the target a figure may be and still count as amber.
    tolerance: float = 0.0


class MeasureTarget(SQLModel, table=True):
    """A measure's target for one period; several make a trajectory."""

    __tablename__ = "measure_target"
    __table_args__ = (UniqueConstraint("measure_id", "period"),)
    id: int | None = Field(default=None, primary_key=True)
    measure_id: int = Field(foreign_key="measure.id", index=True)
    period: str  # models.values.Period, as written by str()
    value: float


class MeasureFigure(SQLModel, table=True):
    """A figure sent for a measure and period. A figure for a period that has one replaces
    it: the earlier row is kept, marked superseded, so /undo can put it back."""

    __tablename__ = "measure_figure"
    __table_args__ = (Index("ix_measure_figure_measure_period", "measure_id", "period"),)
    id: int | None = Field(default=None, primary_key=True)
    measure_id: int = Field(foreign_key="measure.id")
    period: str
    value: float
    note: str = Field(default="", sa_type=Text)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    replaces_id: int | None = Field(default=None, foreign_key="measure_figure.id")
    superseded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Telegram redelivers an update the bot did not confirm; this makes the second a no-op.
    telegram_update_id: int | None = Field(default=None, sa_type=BigInteger, unique=True)


class MeasureOwner(SQLModel, table=True):
    """A member linked as one of a measure's owners (`csp-bot action owner CODE --add ID`,
    `/owners`): its figure reminders go to its owners instead of the supplier's partners,
    and each owner may send its figures (`models.owners`)."""

    __tablename__ = "measure_owner"
    __table_args__ = (UniqueConstraint("measure_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    measure_id: int = Field(foreign_key="measure.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    added_at: datetime = Field(sa_type=UTCDateTime)


class ActionOwner(SQLModel, table=True):
    """A member linked as one of an action's owners (`csp-bot action owner REF --add ID`,
    `/owners`): reminders about it go to its owners instead of the lead organisation's
    partners, and each owner may update it (`models.owners`)."""

    __tablename__ = "action_owner"
    __table_args__ = (UniqueConstraint("action_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="action.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    added_at: datetime = Field(sa_type=UTCDateTime)


class Absence(SQLModel, table=True):
    """A member away, and the member of their organisation who covers for them meanwhile:
    reminders go to the deputy, who may update what the member owns (`models.absences`)."""

    __tablename__ = "absence"
    __table_args__ = (Index("ix_absence_member_ends", "member_id", "ends_at"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    deputy_member_id: int = Field(foreign_key="member.id", index=True)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    # When it ends: as planned, or earlier when the member says they are back (`/back`).
    ends_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
