"""Delivering reminders as Telegram messages: plan a round, then send what is pending.

`dispatch_due(application)` is the whole of it, and what the JobQueue job calls each minute
(and tests call directly, after moving the clock). Each reminder is claimed (committed as
`sending`) immediately before it goes to Telegram and recorded as `sent` after, with the next
claim, so a crash in between leaves it `sending`: it is then never sent again. We prefer a
lost reminder in that instant to a duplicate; every event has several reminders, so the
next one still comes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from telegram import Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from csp_bot.handlers.context import CspApplication, Services
from csp_bot.handlers.faults import NoAnswer, NotAccepted, TokenRefused, deciding_for_ourselves
from csp_bot.handlers.reminder_messages import Composed, compose
from csp_bot.handlers.replies import send_leading_part, split_message
from csp_bot.models.backoff import Backoff
from csp_bot.models.outbox import (
    PendingReminder,
    claim,
    mark_unreachable,
    pending_reminders,
    record_sent,
    release,
    settle_entry,
)
from csp_bot.models.reminder_types import OutboxState
from csp_bot.scheduler.content import Circumstances, Content, Withheld
from csp_bot.scheduler.pacing import Pace
from csp_bot.scheduler.rounds import read_pending

log = logging.getLogger(__name__)

BATCH = 500
IN_FLIGHT = 30
# Reminders read from the outbox at the same time. SQLite has one worker thread: were every
# slot to read at once (as at the start of each batch), a claim made just after its turn in
# the pace would wait behind all those reads, and several sends then go together.
PREPARING = 2
# A reminder Telegram did not take goes again after 10 s, 20 s, 40 s ... (at most 10 min),
# MAX_ATTEMPTS times in all; then it has failed, and the coordinator's digest lists it.
MAX_ATTEMPTS = 8
RETRY_BACKOFF = Backoff(first=10.0, ceiling=600.0, tries=MAX_ATTEMPTS)
# Telegram cannot be reached at all: the rest of the round waits for the next one.
UNREACHABLE_CAUSES = (httpx.ConnectError, httpx.ConnectTimeout)
UNREACHABLE_REASONS = ("chat not found", "user is deactivated", "bot was blocked")


@dataclass
class DeliveryReport:
    """What one round of delivery did, by outcome."""

    recorded: int = 0
    outcomes: dict[OutboxState, int] = field(default_factory=dict)
    retried: int = 0

    def count(self, state: OutboxState) -> None:
        self.outcomes[state] = self.outcomes.get(state, 0) + 1

    @property
    def sent(self) -> int:
        return self.outcomes.get(OutboxState.SENT, 0)


async def always() -> bool:
    """Leading, where no lease is asked about (tests, the demo, SQLite)."""
    return True


async def dispatch_due(
    application: CspApplication,
    *,
    pacer: Pace | None = None,
    still_leading: Callable[[], Awaitable[bool]] = always,
) -> DeliveryReport:
    """Plan, then deliver everything pending; safe to run at any time, as often as wanted.

    Reminders take their turns from the pace replies take theirs from (`services.pacer`),
    unless a test gives another. `still_leading` is asked before each batch after the
    first: an instance that has lost the leader lease mid-round stops delivering.
    """
    services = application.services
    report = DeliveryReport(recorded=await plan_round(services))
    await Courier(application, pacer or services.pacer, report, still_leading).deliver()
    return report


async def plan_round(services: Services) -> int:
    """Record what has fallen due (`scheduler.incremental`); returns how many were recorded.

    Apart from users' commands (a first round reads every action, meeting and member), one
    chunk per transaction: between chunks the planning thread waits, and users' commands
    have the interpreter to themselves.
    """
    planner, db, reported = services.planner, services.db, services.planning_failures
    async with services.planning:
        try:
            round = await db.run_apart(
                planner.begin,
                rules=services.settings.reminders,
                now=services.clock(),
                reported=reported,
            )
            recorded = 0
            for chunk in round.chunks():
                worked = await db.run_apart(
                    planner.work, round=round, subjects=chunk, reported=reported
                )
                planner.absorb(round, worked)
                recorded += len(worked.dues)
            planner.finish(round)
        except BaseException:
            planner.forget()  # the next round works everything out again
            raise
    return recorded


class Courier:
    """Delivers pending reminders, concurrently but within Telegram's limits."""

    def __init__(
        self,
        application: CspApplication,
        pacer: Pace,
        report: DeliveryReport,
        still_leading: Callable[[], Awaitable[bool]] = always,
    ) -> None:
        self.application = application
        self.still_leading = still_leading
        self.services = application.services
        self.pacer = pacer
        self.report = report
        self.network_down = False
        self._slots = asyncio.Semaphore(IN_FLIGHT)
        self._preparing = asyncio.Semaphore(PREPARING)
        self._sent: list[tuple[int, int]] = []

    async def deliver(self) -> None:
        """Send batch after batch until nothing pending is due (or the network is down)."""
        try:
            while not self.network_down:
                batch = await self.services.db.run(
                    pending_reminders, now=self.services.clock(), limit=BATCH
                )
                if not batch:
                    return
                await asyncio.gather(*(self._deliver_one(reminder) for reminder in batch))
                if not await self.still_leading():
                    log.warning("the leader lease was lost: the new leader sends the rest")
                    return
        finally:
            await self._record_sent()

    async def _record_sent(self) -> None:
        """Record the reminders sent since the last claim (those of the round's last sends).

        Until it is recorded a sent reminder stays `sending`, which is never sent again: a
        crash before this leaves it unconfirmed, the choice made for the in-doubt case.
        """
        sent, self._sent = self._sent, []
        if sent:
            await self.services.db.run(record_sent, sent=sent, at=self.services.clock())

    async def _claim(self, reminder: PendingReminder) -> bool:
        """Claim the reminder, recording in the same transaction those sent since the last
        claim: no transaction of their own, and a crash leaves only the last few unknown."""
        sent, self._sent = self._sent, []
        try:
            return await self.services.db.run(
                claim, outbox_id=reminder.id, at=self.services.clock(), sent=sent
            )
        except BaseException:
            self._sent = sent + self._sent  # not recorded: the round's end tries again
            raise

    async def _deliver_one(self, reminder: PendingReminder) -> None:
        async with self._slots:
            if self.network_down:
                return
            async with self._preparing:
                content = await self.services.db.run(
                    read_pending, outbox_id=reminder.id, when=self._circumstances()
                )
            if content is None:
                return  # delivered or settled meanwhile
            if isinstance(content, Withheld):
                self.report.count(content.state)
                return
            await self._send(reminder, content)

    def _circumstances(self) -> Circumstances:
        settings = self.services.settings
        return Circumstances(
            now=self.services.clock(),
            zone=settings.tz,
            quiet_after=settings.quiet_after,
            rules=settings.reminders,
        )

    async def _send(self, reminder: PendingReminder, content: Content) -> None:
        try:
            composed = compose(
                content, templates=self.services.templates, now=self.services.clock()
            )
        except Exception:
            log.exception("could not write reminder %s; it is dropped", reminder.id)
            await self._settle(reminder, OutboxState.DROPPED, detail="could not be written")
            return
        try:
            with deciding_for_ourselves():
                sent = await self._post(reminder, composed)
        except RetryAfter as refused:
            await self._retry_after(reminder, refused)
        except NotAccepted as refused:
            await self._not_accepted(reminder, refused)
        except NoAnswer as failure:
            await self._in_doubt(reminder, failure)
        except (Forbidden, BadRequest) as refused:
            await self._refused(reminder, refused)
        except TokenRefused:
            raise
        except TelegramError as failure:
            log.warning("Telegram refused reminder %s: %s", reminder.id, failure)
            await self._settle(reminder, OutboxState.UNDELIVERABLE, detail=str(failure))
        else:
            if sent is None:
                return  # another round claimed it first
            self._sent.append((reminder.id, sent.message_id))
            self.report.count(OutboxState.SENT)

    async def _post(self, reminder: PendingReminder, composed: Composed) -> Message | None:
        """Take a slot, claim the reminder, send it at once (in parts if it is long).

        The claim comes after the slot: a crash while waiting for a slot leaves the
        reminder pending, so it still goes. Then the pace is told the request is leaving,
        which keeps the next message to the chat a whole gap after this one however long
        the claim took. None: it was no longer pending.
        """
        chat_id = reminder.chat_id
        parts = split_message(composed.text)
        await self.pacer.wait_turn(chat_id)
        if not await self._claim(reminder):
            return None
        await self.pacer.just_before_sending(chat_id)
        for part in parts[:-1]:
            await send_leading_part(self.application.bot, chat_id, part)
            await self.pacer.wait_turn(chat_id)
            await self.pacer.just_before_sending(chat_id)
        last: Message = await self.application.bot.send_message(
            chat_id, parts[-1], reply_markup=composed.keyboard
        )
        return last

    async def _settle(
        self,
        reminder: PendingReminder,
        state: OutboxState,
        *,
        message_id: int | None = None,
        detail: str = "",
    ) -> None:
        await self.services.db.run(
            settle_entry,
            outbox_id=reminder.id,
            state=state,
            at=self.services.clock(),
            message_id=message_id,
            detail=detail,
        )
        self.report.count(state)

    async def _retry_after(self, reminder: PendingReminder, refused: RetryAfter) -> None:
        """Flood control: the message was refused, so it can safely go again after the wait."""
        wait = refused.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        log.warning("Telegram asked to wait %.0fs; reminder %s will go again", seconds, reminder.id)
        await self.pacer.pause(seconds)
        await self._try_again(reminder, timedelta(seconds=seconds), "flood control")

    async def _not_accepted(self, reminder: PendingReminder, refused: NotAccepted) -> None:
        """Telegram did not take it (a server error, a refused or dropped connection)."""
        if isinstance(refused.__cause__, NetworkError) and isinstance(
            refused.__cause__.__cause__, UNREACHABLE_CAUSES
        ):
            self.network_down = True  # nothing else will get through this round either
        await self._try_again(reminder, None, str(refused))

    async def _try_again(
        self, reminder: PendingReminder, wait: timedelta | None, reason: str
    ) -> None:
        """Put it back to wait with backoff; after MAX_ATTEMPTS it has failed for good."""
        attempts = await self.services.db.run(
            release,
            outbox_id=reminder.id,
            now=self.services.clock(),
            wait=wait,
            reason=reason,
            backoff=RETRY_BACKOFF,
        )
        if attempts is None:
            log.warning("reminder %s failed %s times: given up", reminder.id, MAX_ATTEMPTS)
            self.report.count(OutboxState.FAILED)
            return
        self.report.retried += 1

    async def _in_doubt(self, reminder: PendingReminder, failure: NoAnswer) -> None:
        """The request left and no answer came: it may have arrived, so it is never resent."""
        log.warning(
            "reminder %s may or may not have arrived (%s): not resent", reminder.id, failure
        )
        await self._settle(reminder, OutboxState.UNCONFIRMED, detail=str(failure))

    async def _refused(self, reminder: PendingReminder, refused: TelegramError) -> None:
        """A member who blocked the bot (or never started it) is marked unreachable."""
        if isinstance(refused, Forbidden) or any(
            reason in refused.message.lower() for reason in UNREACHABLE_REASONS
        ):
            log.info("member %s cannot be reached: %s", reminder.member_id, refused.message)
            await self._settle(reminder, OutboxState.UNDELIVERABLE, detail=refused.message)
            await self.services.db.run(
                mark_unreachable, member_id=reminder.member_id, at=self.services.clock()
            )
            return
        log.error("Telegram refused reminder %s: %s", reminder.id, refused.message)
        await self._settle(reminder, OutboxState.UNDELIVERABLE, detail=refused.message)
