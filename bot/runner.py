"""Running the bot for real: polling or webhook, until a signal or a refused token.

`BotRun` is the bot while it runs, shared by `csp-bot run` and the demo: the Application
started, whatever an earlier run stored and did not finish queued first, then updates
arriving through the receiver (the `Poller`, or the webhook's web server). On PostgreSQL,
where several instances may share the database, chats are handled in turns
(`bot.chat_turns`) rather than from this process's own queue.

Stopping (SIGTERM, SIGINT) is graceful: the web server answers 503 at once (`/readyz` and
the webhook), the chats' turns under way end after what they have read (20 s at most),
the receiver and the Application stop, the last marks done are written, and only then are
the chats' locks let go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from types import TracebackType
from urllib.parse import urlsplit

from telegram import Update
from telegram.error import InvalidToken

from csp_bot.bot.app import build_application, on_start, services_for
from csp_bot.bot.chat_turns import ChatTurns, stop_sweeping
from csp_bot.bot.intake import Intake
from csp_bot.bot.logs import configure_logging
from csp_bot.bot.polling import Poller
from csp_bot.bot.settings import Settings
from csp_bot.bot.webhook import web_app, web_server
from csp_bot.handlers.context import CspApplication, Services
from csp_bot.handlers.faults import TokenRefused
from csp_bot.models.chat_locks import ChatLocks
from csp_bot.models.clock import Clock, system_clock
from csp_bot.models.db import Database, DatabaseFailure, is_sqlite
from csp_bot.models.leases import Lease, sole_instance_lease
from csp_bot.models.migrate import upgrade
from csp_bot.scheduler.pacing import Pacer

log = logging.getLogger(__name__)

EXIT_TOKEN_REFUSED = 2
# Stopping: the chats' turns under way get this long, so the process ends within 30 s.
FINISH_SECONDS = 20.0
EXIT_ALREADY_RUNNING = 4
SOLE_LEASE_CHECK_SECONDS = 30.0
LEASE_TAKEN = (
    "the database lost this instance's polling lock (it restarted?) and another instance"
    " took it: stopping, so as never to run beside it"
)
Receiver = Callable[[Intake], Coroutine[None, None, None]]


def make_services(settings: Settings, *, clock: Clock = system_clock) -> Services:
    """Open and migrate the database and build what every handler needs."""
    database = Database.from_url(settings.database_url)
    upgrade(database.engine)
    return services_for(settings, db=database, clock=clock)


def run_bot(settings: Settings) -> int:
    """`csp-bot run`: until SIGINT or SIGTERM; 2 if Telegram refuses the token, 4 if
    another instance runs where only one may."""
    token = settings.require_token()
    if settings.webhook_url:
        settings.require_webhook_secret()
    configure_logging(token=token)
    database = Database.from_url(settings.database_url)
    sole = sole_instance_lease(database.engine, polling=not settings.webhook_url)
    try:
        if sole is not None and not sole.held():
            print(f"csp-bot: {already_running(database)}", file=sys.stderr)
            return EXIT_ALREADY_RUNNING
        upgrade(database.engine)  # after the lease: never while another instance runs
        # Alone (the sole-instance lease held), the instance paces its sends itself.
        pacer = None if sole is None else Pacer()
        services = services_for(settings, db=database, clock=system_clock, pacer=pacer)
        return asyncio.run(serve(services, settings, token, sole=sole))
    except InvalidToken:  # ours, or python-telegram-bot's own when getMe is refused
        print(f"csp-bot: {TokenRefused()}", file=sys.stderr)
        return EXIT_TOKEN_REFUSED
    finally:
        if sole is not None:
            sole.release()
        database.close()


def already_running(database: Database) -> str:
    """Why a second instance was refused, and what to do instead."""
    if is_sqlite(database.engine):
        return (
            "another csp-bot is already running on this SQLite database, which takes one"
            " instance only; to run several, use PostgreSQL (CSPBOT_DATABASE_URL) in webhook"
            " mode (CSPBOT_WEBHOOK_URL)"
        )
    return (
        "another csp-bot is already taking updates from Telegram by long polling on this"
        " database, which Telegram allows one process only; to run several, set"
        " CSPBOT_WEBHOOK_URL on every instance (webhook mode)"
    )


async def serve(
    services: Services, settings: Settings, token: str, *, sole: Lease | None = None
) -> int:
    """Run the bot with the receiver the settings choose, for as long as it holds `sole`."""
    application = build_application(services, token=token, base_url=settings.telegram_api_url)
    stop = application.stop_requested
    async with BotRun(application, receiver_for(settings), alone=sole is not None) as running:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        holding = asyncio.create_task(keep_holding(sole, stop)) if sole else None
        try:
            await running.until_stopped()
        finally:
            if holding is not None:
                holding.cancel()
    if application.token_refused:
        raise TokenRefused()
    if holding is not None and holding.done() and not holding.cancelled() and not holding.result():
        print(f"csp-bot: {LEASE_TAKEN}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    return 0


async def keep_holding(
    lease: Lease, stop: asyncio.Event, *, every: float = SOLE_LEASE_CHECK_SECONDS
) -> bool:
    """Check now and then that the process still holds its sole-instance lease; False, with
    `stop` set, once another instance has it.

    A database restart drops the lease's connection, and with it the lock: the check takes
    it again while it is free, and stops this instance if another took it first, so the two
    never poll side by side for longer than one interval.
    """
    while True:
        await asyncio.sleep(every)
        try:
            if await asyncio.to_thread(lease.held):
                continue
        except DatabaseFailure:
            continue  # no answer: the next check tells
        stop.set()
        return False


def receiver_for(settings: Settings) -> Receiver:
    """Webhook when CSPBOT_WEBHOOK_URL is set, else long polling (with the web server
    beside it when CSPBOT_WEB_LISTEN is set)."""
    if settings.webhook_url:
        return lambda intake: receive_by_webhook(intake, settings)
    return lambda intake: receive_by_polling(intake, settings)


async def receive_by_polling(intake: Intake, settings: Settings) -> None:
    """Long polling; the health routes run beside it when a web address is set."""
    poller = Poller(intake)
    if not settings.web_listen:
        await poller.run()
        return
    server = web_server(web_app(intake, webhook_path=None, secret=None), settings.web_listen)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(server.serve())
        tasks.create_task(poller.run())


async def receive_by_webhook(intake: Intake, settings: Settings) -> None:
    """Tell Telegram where to send updates, then serve them (and the health routes)."""
    assert settings.webhook_url is not None
    secret = settings.require_webhook_secret()
    path = urlsplit(settings.webhook_url).path or "/"
    app = web_app(intake, webhook_path=path, secret=secret)
    server = web_server(app, settings.webhook_listen)
    serving = asyncio.create_task(server.serve())
    try:
        await intake.application.bot.set_webhook(
            settings.webhook_url, secret_token=secret, allowed_updates=Update.ALL_TYPES
        )
        await serving
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving


def turns_for(application: CspApplication, *, alone: bool) -> ChatTurns | None:
    """Chats' turns under per-chat locks where other instances take this bot's updates too
    (webhook mode on PostgreSQL); none where this instance is the only one that can
    (`alone`: polling, which Telegram allows one process, or SQLite), whose chats are
    kept in order in this process (`bot.intake`) without a round trip for a lock."""
    if alone:
        return None
    return ChatTurns(application, ChatLocks(application.services.db.engine))


class BotRun:
    """The bot running: started, resuming what was left, then receiving.

    `alone`: no other instance can take this bot's updates (see `turns_for`); by default
    on SQLite only, so that a test or benchmark on PostgreSQL runs as a cluster does.
    """

    def __init__(
        self, application: CspApplication, receiver: Receiver, *, alone: bool | None = None
    ) -> None:
        self.application = application
        engine = application.services.db.engine
        self.turns = turns_for(application, alone=is_sqlite(engine) if alone is None else alone)
        self.intake = Intake(application, turns=self.turns)
        self.receiver = receiver
        self._receiving: asyncio.Task[None] | None = None
        self._sweeping: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BotRun:
        await self.application.initialize()  # getMe: a refused token stops here
        await on_start(self.application)  # initialize() does not run post_init
        await self.application.start()
        await self.intake.resume()
        if self.turns is not None:
            self._sweeping = asyncio.create_task(
                self.turns.sweep_every_few_seconds(), name="inbox sweep"
            )
        self._receiving = asyncio.create_task(self.receiver(self.intake), name="receiver")
        return self

    async def until_stopped(self) -> None:
        """Return when asked to stop, or when the receiver ends.

        A refused token needs no check here: the transport has already flagged it on the
        application (`refuse_token`), which also asks for the stop.
        """
        assert self._receiving is not None
        stop = asyncio.create_task(self.application.stop_requested.wait())
        await asyncio.wait({stop, self._receiving}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if self._receiving.done() and not self._receiving.cancelled():
            failure = self._receiving.exception()
            if failure is not None and not self.application.token_refused:
                raise failure

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.intake.refusing = True  # 503 from now on: Telegram sends it to another instance
        await stop_sweeping(self._sweeping)
        if self.turns is not None:
            await self.turns.finish(within=FINISH_SECONDS)
        if self._receiving is not None:
            self._receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._receiving
        await self.application.stop()
        await self.application.shutdown()  # writes the last marks done
        await self.application.services.pacer.close()  # nothing is sent from here on
        if self.turns is not None:
            await self.turns.close()  # only now may another instance take these chats
        # After the jobs have stopped: another instance may lead from its next round.
        await asyncio.to_thread(self.application.services.leader.release)
