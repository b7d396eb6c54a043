"""The JobQueue wiring: named jobs that wake the reminder delivery and prune the inbox.

The job holds no reminders itself. After downtime the first run finds in the database what
was missed, so nothing depends on APScheduler catching up on missed runs.

Every instance schedules the jobs, and each run first asks for the leader lease
(`models.leases`): only its holder plans, sends reminders and prunes. The others ask
again at their next run, so one takes over within a round of the holder's death. Replies
and reminders, from every instance, keep one pace (`services.pacer`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from csp_bot.handlers.context import CspApplication, Ctx, Services
from csp_bot.handlers.delivery import dispatch_due
from csp_bot.handlers.faults import TokenRefused
from csp_bot.models.db import DatabaseFailure
from csp_bot.models.inbox import prune_inbox
from csp_bot.models.retention import prune

log = logging.getLogger(__name__)

DISPATCH_JOB = "reminders: plan and deliver"
PRUNE_JOB = "inbox: prune handled updates"
RETENTION_JOB = "retention: prune old records"
RETENTION_EVERY_SECONDS = 24 * 3600
EVERY_SECONDS = 60  # the default of CSPBOT_REMINDER_ROUND_SECONDS
PRUNE_EVERY_SECONDS = 3600
FIRST_AFTER_SECONDS = 2


@dataclass
class DispatchState:
    """Kept between runs: a lock so that a long delivery round is never joined by the next
    run, and the count of rounds run."""

    running: asyncio.Lock = field(default_factory=asyncio.Lock)
    rounds: int = 0  # finished, so the demo can wait for the reminders due at start


def install_reminder_jobs(application: CspApplication) -> None:
    """Add the dispatcher job to the application's JobQueue."""
    if application.job_queue is None:
        log.warning("no JobQueue (python-telegram-bot[job-queue] missing): no reminders")
        return
    interval = application.services.settings.reminder_round_seconds
    application.job_queue.run_repeating(
        run_dispatcher,
        interval=interval,
        first=until_next_multiple(interval, time.time()),
        name=DISPATCH_JOB,
        data=DispatchState(),
        job_kwargs={"max_instances": 2, "coalesce": True},
    )
    application.job_queue.run_repeating(
        run_pruning, interval=PRUNE_EVERY_SECONDS, first=FIRST_AFTER_SECONDS, name=PRUNE_JOB
    )
    # Every 24 hours from start rather than at a time of day: a restart runs it again, so
    # downtime never skips it (and pruning twice deletes nothing more).
    application.job_queue.run_repeating(
        run_retention,
        interval=RETENTION_EVERY_SECONDS,
        first=FIRST_AFTER_SECONDS,
        name=RETENTION_JOB,
    )


def until_next_multiple(interval: float, now: float) -> float:
    """Seconds from `now` (seconds since the epoch) to the next multiple of `interval`. Every
    instance's round falls on the same moments (each minute at :00), so when the leader
    dies, the one taking over plans at the next of them: never twice in one interval."""
    return interval - now % interval


async def run_dispatcher(context: Ctx) -> None:
    """Plan from the database and deliver what is due; a failure is logged, never fatal."""
    assert context.job is not None
    state = context.job.data
    assert isinstance(state, DispatchState)
    if state.running.locked():
        return  # the previous round is still delivering
    async with state.running:
        application = context.application
        assert isinstance(application, CspApplication)
        if not await leading(application.services):
            return
        begun = application.services.clock()
        try:
            report = await dispatch_due(
                application,
                still_leading=lambda: leading(application.services),
            )
        except TokenRefused:
            return  # the runner ends the bot and says why
        except Exception:
            log.exception("the reminder round failed; the next one retries")
            return
        finally:
            state.rounds += 1
    # One line a round, on the leader only: which instance planned which minute is in the
    # logs (the minute it began: a round of many reminders ends minutes later).
    outcomes = {state.value: count for state, count in report.outcomes.items()}
    minute = f"{begun:%Y-%m-%d %H:%M}"
    log.info("reminder round of %s: %s recorded, outcomes %s", minute, report.recorded, outcomes)


def dispatch_state(application: CspApplication) -> DispatchState | None:
    """The reminder job's state, if the job is installed."""
    if application.job_queue is None:
        return None
    jobs = application.job_queue.get_jobs_by_name(DISPATCH_JOB)
    state = jobs[0].data if jobs else None
    return state if isinstance(state, DispatchState) else None


async def run_dispatcher_now(application: CspApplication) -> None:
    """Plan and deliver at once rather than when the job first fires (the demo, which
    shows the reminders due at start); a round already running is not joined."""
    if application.job_queue is None:
        return
    for job in application.job_queue.get_jobs_by_name(DISPATCH_JOB):
        await job.run(application)


async def leading(services: Services) -> bool:
    """Whether this instance holds the leader lease, taking it if it is free.

    Asked in a worker thread: on PostgreSQL it is a round trip on the lease's connection.
    A database that does not answer means not leading, until a later run can tell.
    """
    try:
        return await asyncio.to_thread(services.leader.held)
    except DatabaseFailure:
        log.warning("the database did not answer about the leader lease; not leading")
        return False


async def run_pruning(context: Ctx) -> None:
    """Delete handled inbox updates older than CSPBOT_INBOX_DAYS."""
    services = context.services
    if not await leading(services):
        return
    keep = timedelta(days=services.settings.inbox_days)
    try:
        pruned = await services.db.run(prune_inbox, now=services.clock(), keep=keep)
    except Exception:
        log.exception("pruning the inbox failed; the next run retries")
        return
    if pruned:
        log.info("inbox: %d handled updates older than %s pruned", pruned, keep)


async def run_retention(context: Ctx) -> None:
    """Delete what has outlived its retention (CSPBOT_RETENTION_DAYS, CSPBOT_AUDIT_YEARS)."""
    services = context.services
    if not await leading(services):
        return
    try:
        pruned = await services.db.run(
            prune, now=services.clock(), keep=services.settings.retention
        )
    except Exception:
        log.exception("applying the retention periods failed; the next run retries")
        return
    if pruned.total:
        log.info("retention: %s", pruned.summary())
