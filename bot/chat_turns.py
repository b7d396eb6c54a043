"""Several instances on one PostgreSQL database: each chat handled by one at a time, in order.

Any instance may take a chat's update from Telegram (a load balancer picks one), so an
instance does not handle what it received itself: it stores it (`Intake.accept`) and wakes
the chat here. A chat's turn is taken while holding its lock (`models.chat_locks`), and in
that turn the chat's unfinished updates are read from the inbox, oldest first, and handled
one by one through the Application; their mark done is committed before the lock is let
go. So an update is handled by one instance, in update_id order within its chat, and an
update already marked done is never read again.

An instance that finds the lock taken leaves the update to the holder, which looks at the
chat again after letting go: it sees every update committed before the failed try, so none
is stranded. A sweep every few seconds takes up the chats whose updates wait with no one
handling them: an instance died after storing them, or lost its turn while stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import Update

from csp_bot.bot.intake import ChatOrderedProcessor, read_update
from csp_bot.handlers.context import CspApplication
from csp_bot.models.chat_locks import ChatLocks
from csp_bot.models.db import Database
from csp_bot.models.inbox import Received, chats_with_unfinished, unfinished_in_chat

log = logging.getLogger(__name__)

SWEEP_SECONDS = 3.0


class ChatTurns:
    """Takes each woken chat's turn: lock, handle what waits in the inbox, mark it, let go."""

    def __init__(
        self, application: CspApplication, locks: ChatLocks, *, sweep_seconds: float = SWEEP_SECONDS
    ) -> None:
        processor = application.update_processor
        assert isinstance(processor, ChatOrderedProcessor), "built by build_application"
        self.application = application
        self.processor = processor
        self.db: Database = application.services.db
        self.locks = locks
        self.sweep_seconds = sweep_seconds
        self._turns: dict[int, asyncio.Task[None]] = {}
        self._stopping = False

    def wake(self, chat_key: int) -> None:
        """The chat has new updates in the inbox: take its turn unless one is under way
        here (that one looks at the chat again before it ends). None is begun once the
        instance is stopping: another instance's sweep, or the next start, takes it up."""
        if chat_key not in self._turns and not self._stopping:
            self._turns[chat_key] = asyncio.create_task(
                self._take_turns(chat_key), name=f"chat {chat_key}"
            )

    @property
    def under_way(self) -> set[int]:
        """The chats whose turn this instance is taking (or trying to take)."""
        return set(self._turns)

    async def sweep(self) -> int:
        """Wake every chat with unfinished updates; returns how many chats were woken."""
        waiting = [
            key for key in await self.db.run(chats_with_unfinished) if key not in self._turns
        ]
        for chat_key in waiting:
            self.wake(chat_key)
        return len(waiting)

    async def sweep_every_few_seconds(self) -> None:
        """Sweep until cancelled; a failed sweep (the database away) is tried at the next."""
        while True:
            await asyncio.sleep(self.sweep_seconds)
            try:
                await self.sweep()
            except Exception:
                log.warning("the inbox sweep failed; trying again shortly", exc_info=True)

    async def finish(self, *, within: float) -> None:
        """Stop taking turns: those under way end after the updates they have read.

        Whatever is still running after `within` seconds is cancelled; its updates stay
        unfinished in the inbox, and another instance's sweep takes them up.
        """
        self._stopping = True
        running = set(self._turns.values())
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=within)
        for turn in late:
            turn.cancel()
        if late:
            log.warning("stopping: %d chats' turns did not end in time", len(late))
            await asyncio.wait(late)

    async def close(self) -> None:
        """Let go of every lock (after `finish` and the last marks done)."""
        await self.locks.close()

    async def _take_turns(self, chat_key: int) -> None:
        handled: set[int] = set()  # tried in this task: not tried again until the next sweep
        try:
            while await self.locks.try_lock(chat_key):
                try:
                    await self._handle_waiting(chat_key, handled)
                finally:
                    await self.locks.unlock(chat_key)
                # Another instance may have stored one while the lock was held here, found
                # it taken, and left the update to this one.
                if self._stopping or not await self._waiting(chat_key, handled):
                    return
        except Exception:
            log.exception("chat %s: its updates wait for the next sweep", chat_key)
        finally:
            del self._turns[chat_key]

    async def _handle_waiting(self, chat_key: int, handled: set[int]) -> None:
        """Handle the chat's unfinished updates in order, each marked done, until none wait.

        Before each after the first, the lock is asked about: if the server ended its
        connection (a restart, a cut), another instance may hold the chat now, and the rest
        is left to it. Only the update under way when the lock went may be handled by both
        (its effects are stored once; its reply may go twice).
        """
        first = True
        while waiting := await self._waiting(chat_key, handled):
            for received in waiting:
                if not first and not await self.locks.holds(chat_key):
                    log.warning("chat %s: its lock was lost; its other updates wait", chat_key)
                    await self.processor.written()
                    return
                first = False
                handled.add(received.update_id)
                update = read_update(received.payload, self.application.bot)
                if update is not None:
                    await asyncio.create_task(self._handle(update))  # a context of its own
            await self.processor.written()
            if self._stopping:
                return

    async def _waiting(self, chat_key: int, handled: set[int]) -> list[Received]:
        unfinished = await self.db.run(unfinished_in_chat, chat_key=chat_key)
        return [received for received in unfinished if received.update_id not in handled]

    async def _handle(self, update: Update) -> None:
        """As python-telegram-bot's own update fetcher hands an update to the processor."""
        await self.processor.process_update(update, self.application.process_update(update))


async def stop_sweeping(sweeping: asyncio.Task[None] | None) -> None:
    """Cancel the sweep and wait for it to end."""
    if sweeping is not None:
        sweeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
