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
from csp_bot.models.db import Database, is_sqlite
from csp_bot.models.migrate import upgrade

log = logging.getLogger(__name__)

EXIT_TOKEN_REFUSED = 2
# Stopping: the chats' turns under way get this long, so the process ends within 30 s.
FINISH_SECONDS = 20.0
Receiver = Callable[[Intake], Coroutine[None, None, None]]


def make_services(settings: Settings, *, clock: Clock = system_clock) -> Services:
    """Open and migrate the database and build what every handler needs."""
    database = Database.from_url(settings.database_url)
    upgrade(database.engine)
    return services_for(settings, db=database, clock=clock)


def run_bot(settings: Settings) -> int:
    """`csp-bot run`: until SIGINT or SIGTERM; 2 if Telegram refuses the token."""
    token = settings.require_token()
    if settings.webhook_url:
        settings.require_webhook_secret()
    configure_logging(token=token)
    services = make_services(settings)
    try:
        return asyncio.run(serve(services, settings, token))
    except InvalidToken:  # ours, or python-telegram-bot's own when getMe is refused
        print(f"csp-bot: {TokenRefused()}", file=sys.stderr)
        return EXIT_TOKEN_REFUSED
    finally:
        services.db.close()


async def serve(services: Services, settings: Settings, token: str) -> int:
    """Run the bot with the receiver the settings choose."""
    application = build_application(services, token=token, base_url=settings.telegram_api_url)
    async with BotRun(application, receiver_for(settings)) as running:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, application.stop_requested.set)
        await running.until_stopped()
    if application.token_refused:
        raise TokenRefused()
    return 0


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


def turns_for(application: CspApplication) -> ChatTurns | None:
    """Chats' turns under per-chat locks on PostgreSQL; none on SQLite (one instance)."""
    engine = application.services.db.engine
    return None if is_sqlite(engine) else ChatTurns(application, ChatLocks(engine))


class BotRun:
    """The bot running: started, resuming what was left, then receiving."""

    def __init__(self, application: CspApplication, receiver: Receiver) -> None:
        self.application = application
        self.turns = turns_for(application)
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
        if self.turns is not None:
            await self.turns.close()  # only now may another instance take these chats
