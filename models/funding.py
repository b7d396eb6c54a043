"""Funding of the shared functions: who contributes what to each stream, year by year.

Financial years run 1 April to 31 March and are held as the year they start in (2021 is
2021/22). Amounts are in pence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from csp_bot.models.audit import Actor, record_change, snapshot
from csp_bot.models.enums import FundingStatus
from csp_bot.models.errors import DomainError, NotFound
from csp_bot.models.limits import check_amount, check_note
from csp_bot.models.tables import FundingDecision, FundingStream, Organisation
from csp_bot.models.values import (
    FIRST_YEAR,
    LAST_YEAR,
    OutOfRange,
    format_financial_year,
    parse_financial_year,
    parse_money,
)

YEARS_AHEAD = 10


@dataclass(frozen=True)
class Contribution:
    """One partner's contribution to one stream in one year."""

    organisation: str
    amount_pence: int
    status: FundingStatus
    note: str
    decided_at: datetime


@dataclass(frozen=True)
class StreamYear:
    """A stream's contributions in one year, with totals by status."""

    code: str
    name: str
    contributions: tuple[Contribution, ...]

    @property
    def totals(self) -> dict[FundingStatus, int]:
        return totals_by_status(self.contributions)


@dataclass(frozen=True)
class FundingYear:
    """Every stream's contributions in one financial year."""

    year: int
    streams: tuple[StreamYear, ...]

    @property
    def label(self) -> str:
        return format_financial_year(self.year)

    @property
    def totals(self) -> dict[FundingStatus, int]:
        return totals_by_status([c for stream in self.streams for c in stream.contributions])

    @property
    def empty(self) -> bool:
        return not any(stream.contributions for stream in self.streams)


def totals_by_status(
    contributions: list[Contribution] | tuple[Contribution, ...],
) -> dict[FundingStatus, int]:
    """Pence per status, every status present (0 where there is none), in workflow order."""
    totals = dict.fromkeys(FundingStatus, 0)
    for contribution in contributions:
        totals[contribution.status] += contribution.amount_pence
    return totals


def financial_year_of(day: date) -> int:
    """The financial year a day falls in: 1 April starts a new one."""
    return day.year if day.month >= 4 else day.year - 1


def check_financial_year(text: str, *, today: date) -> int:
    """A financial year typed as 2022/23 (or 2022-23, 2022/2023, 2022), within reason."""
    try:
        year = parse_financial_year(text)
    except OutOfRange as problem:
        year = problem.year  # refused below, saying which years funding can be for
    except ValueError as problem:
        message = str(problem).replace("not a financial year", "Not a financial year")
        raise DomainError(message) from None
    last = min(financial_year_of(today) + YEARS_AHEAD, LAST_YEAR)
    if not FIRST_YEAR <= year <= last:
        raise DomainError(
            f"{format_financial_year(year)} is not a year the partnership can have funding "
            f"for (from {format_financial_year(FIRST_YEAR)} to {format_financial_year(last)})."
        )
    return year


def read_amount(text: str) -> int:
    """Pence in an amount typed as £12,500 or 12500.50, up to the limit of £1 billion."""
    try:
        pence = parse_money(text)
    except ValueError:
        raise DomainError(
            f"“{text.strip()}” is not an amount of money (e.g. £12,500 or 12500.50)."
        ) from None
    return check_amount(pence)


def funding_year(
    session: Session, *, year: int, where: ColumnElement[bool] | None = None
) -> FundingYear:
    """Each stream's contributions in the financial year starting in `year` (those of the
    decisions matching `where`, when given)."""
    # Rows of columns rather than ORM entities: the summary reads two years of every
    # partner's contributions, and tracked objects cost more than the query.
    query = (
        sql_select(
            col(FundingDecision.stream_id),
            col(Organisation.name),
            col(FundingDecision.amount_pence),
            col(FundingDecision.status),
            col(FundingDecision.note),
            col(FundingDecision.decided_at),
        )
        .join(Organisation, col(Organisation.id) == FundingDecision.organisation_id)
        .where(col(FundingDecision.financial_year) == year)
        .order_by(col(Organisation.name))
    )
    if where is not None:
        query = query.where(where)
    by_stream: dict[int, list[Contribution]] = {}
    for stream_id, *contribution in session.execute(query):
        by_stream.setdefault(stream_id, []).append(Contribution(*contribution))
    streams = session.execute(_STREAMS).all()
    return FundingYear(
        year,
        tuple(
            StreamYear(code, name, tuple(by_stream.get(stream_id, ())))
            for stream_id, code, name in streams
        ),
    )


# As rows too, built once: every summary reads them twice (this year and the next).
_STREAMS = sql_select(
    col(FundingStream.id), col(FundingStream.code), col(FundingStream.name)
).order_by(col(FundingStream.id))


def funded_years(session: Session) -> list[int]:
    """The financial years that have any funding recorded, earliest first."""
    years = session.exec(select(FundingDecision.financial_year).distinct()).all()
    return sorted(years)


@dataclass(frozen=True)
class Choice:
    """Something to pick from a keyboard: its id and what the button says."""

    id: int
    label: str


def stream_choices(session: Session) -> list[Choice]:
    streams = session.exec(select(FundingStream).order_by(col(FundingStream.id))).all()
    return [Choice(s.id, s.code) for s in streams if s.id is not None]


def organisation_choices(session: Session) -> list[Choice]:
    orgs = session.exec(select(Organisation).order_by(col(Organisation.id))).all()
    return [Choice(o.id, o.short_name or o.name) for o in orgs if o.id is not None]


@dataclass(frozen=True)
class Decision:
    """A decision as recorded, and the figure it replaced (None for a first one)."""

    stream: str
    organisation: str
    year: int
    after: Contribution
    before: Contribution | None


@dataclass(frozen=True)
class Preview:
    """What a decision would replace: the names involved and the figure now recorded."""

    stream: str
    organisation: str
    earlier: Contribution | None


def preview_decision(
    session: Session, *, stream_id: int, organisation_id: int, year: int
) -> Preview:
    stream = session.get(FundingStream, stream_id)
    organisation = session.get(Organisation, organisation_id)
    if stream is None or organisation is None:
        raise NotFound("That funding stream or partner no longer exists.")
    decision = _decision(session, stream_id, organisation_id, year)
    earlier = None if decision is None else _contribution(decision, organisation.name)
    return Preview(stream.code, organisation.name, earlier)


def _decision(
    session: Session, stream_id: int, organisation_id: int, year: int
) -> FundingDecision | None:
    return session.exec(
        select(FundingDecision).where(
            FundingDecision.stream_id == stream_id,
            FundingDecision.organisation_id == organisation_id,
            FundingDecision.financial_year == year,
        )
    ).first()


def record_decision(
    session: Session,
    *,
    stream_id: int,
    organisation_id: int,
    year: int,
    amount_pence: int,
    status: FundingStatus,
    note: str,
    at: datetime,
    actor: Actor,
) -> Decision:
    """Record a funding decision (replacing the earlier figure for that stream, partner and
    year) and write it to the audit trail."""
    stream = session.get(FundingStream, stream_id)
    organisation = session.get(Organisation, organisation_id)
    if stream is None or organisation is None:
        raise NotFound("That funding stream or partner no longer exists.")
    decision = _decision(session, stream_id, organisation_id, year)
    before = None if decision is None else snapshot(decision)
    earlier = None if decision is None else _contribution(decision, organisation.name)
    if decision is None:
        decision = FundingDecision(
            stream_id=stream_id,
            organisation_id=organisation_id,
            financial_year=year,
            amount_pence=0,
            status=status,
            decided_at=at,
        )
    # Checked again here, whoever calls (as a meeting is when it is scheduled).
    decision.amount_pence = check_amount(amount_pence)
    decision.status, decision.note = status, check_note(note, required=False)
    decision.decided_at = at
    record_change(session, actor=actor, at=at, record=decision, before=before)
    return Decision(
        stream.code, organisation.name, year, _contribution(decision, organisation.name), earlier
    )


def _contribution(decision: FundingDecision, organisation: str) -> Contribution:
    return Contribution(
        organisation, decision.amount_pence, decision.status, decision.note, decision.decided_at
    )
