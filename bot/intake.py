"""How updates enter the bot: into the inbox first, then to the handlers, chat by chat.

`Intake.accept` is the one way in, for polling and the webhook alike: a batch is committed
to the inbox (`models.inbox`) before the caller confirms it to Telegram, then queued for the
Application, or, with several instances on one PostgreSQL database, its chats are woken for
`bot.chat_turns` to handle from the inbox. `ChatOrderedProcessor`, python-telegram-bot's
extension point for concurrent updates, handles different chats at the same time and one
chat's updates strictly in order, and marks each update done once its handlers have run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from telegram import Bot, Update
from telegram.ext import BaseUpdateProcessor

from csp_bot.handlers.context import CspApplication
from csp_bot.models.clock import Clock
from csp_bot.models.db import Database
from csp_bot.models.inbox import (
    AfterHandled,
    Received,
    collect_after_handled,
    finish_handled,
    store_received,
    unfinished_updates,
)

if TYPE_CHECKING:
    from csp_bot.bot.chat_turns import ChatTurns

log = logging.getLogger(__name__)

# Chats handled at the same time; one chat's updates still go one by one.
CONCURRENT_CHATS = 64
UNBOUNDED = 1_000_000


def chat_key(update: Update) -> int:
    """The chat whose updates are kept in order: the chat, else the user, else one queue."""
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return update.effective_user.id
    return 0


def read_update(payload: dict[str, Any], bot: Bot) -> Update | None:
    """The stored update as python-telegram-bot's object; None (logged) if it cannot be read."""
    try:
        return Update.de_json(payload, bot)
    except Exception:
        log.exception("update %s cannot be read; it is stored, not handled", payload["update_id"])
        return None


class Intake:
    """Stores what Telegram delivers, then hands it on to be processed.

    Without `turns`, to this process's Application (one instance); with them, by waking the
    chat, whose updates whichever instance holds its lock then reads from the inbox.
    """

    def __init__(self, application: CspApplication, *, turns: ChatTurns | None = None) -> None:
        self.application = application
        self.db: Database = application.services.db
        self.clock: Clock = application.services.clock
        self.turns = turns
        # Set when the instance is stopping: the web server answers 503 from then on.
        self.refusing = False

    async def accept(self, payloads: Sequence[dict[str, Any]]) -> int:
        """Commit a batch to the inbox and queue what is new; returns how many were new.

        Returns only after the commit: the caller may then confirm the batch to Telegram.
        An update that cannot be read is stored and marked done at once: retrying cannot
        make it readable, and holding it back would hold up every update after it.
        """
        read = [self._read(payload) for payload in payloads]
        received = [
            Received(int(payload["update_id"]), chat_key(update) if update else 0, payload)
            for payload, update in zip(payloads, read, strict=True)
        ]
        unreadable = [
            item.update_id for item, update in zip(received, read, strict=True) if not update
        ]
        fresh = set(
            await self.db.run(
                store_received, updates=received, unreadable=unreadable, at=self.clock()
            )
        )
        new = [update for update in read if update is not None and update.update_id in fresh]
        for update in new:
            if self.turns is not None:
                self.turns.wake(chat_key(update))
            else:
                await self.application.update_queue.put(update)
        return len(fresh)

    async def resume(self) -> int:
        """Queue what an earlier run stored and did not finish, oldest first (with turns,
        wake the chats those belong to). Returns how many updates (chats) were taken up."""
        if self.turns is not None:
            return await self.turns.sweep()
        unfinished = await self.db.run(unfinished_updates)
        for received in unfinished:
            update = self._read(received.payload)
            if update is not None:
                await self.application.update_queue.put(update)
        if unfinished:
            log.info("resuming %d updates stored before the last stop", len(unfinished))
        return len(unfinished)

    def _read(self, payload: dict[str, Any]) -> Update | None:
        return read_update(payload, self.application.bot)


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Different chats at once (bounded), each chat's updates one at a time, in order.

    The base class's own bound is set out of the way: updates wait for their chat first and
    take one of the `concurrent` slots only when their turn has come, so a slow chat with a
    queue of its own never holds slots that other chats could use.

    Handled updates are marked done in batches: while one batch is being written, the
    updates that finish meanwhile wait for the next, so a busy bot spends one transaction
    on many of them. The notes that a reply was shown go in the same transaction
    (`models.inbox.write_after_handled`). One that a crash catches handled but not yet
    marked is handled again on the next start, which only repeats its reply (effects are
    keyed on the update).
    """

    def __init__(self, db: Database, clock: Clock, *, concurrent: int = CONCURRENT_CHATS) -> None:
        super().__init__(max_concurrent_updates=UNBOUNDED)
        self.db = db
        self.clock = clock
        self._slots = asyncio.Semaphore(concurrent)
        self._chats: dict[int, asyncio.Lock] = {}
        self._queued: dict[int, int] = {}
        self._handled: list[int] = []
        self._after: list[AfterHandled] = []
        self._marking: asyncio.Task[None] | None = None
        # Counts of updates handled and of those whose mark done has been written since:
        # batches go in the order handled, so the second passing the first means all done.
        self._handled_count = 0
        self._written_count = 0
        self._progress = asyncio.Condition()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Wait for the chat's earlier updates and a free slot, process, mark it done."""
        key = chat_key(update) if isinstance(update, Update) else 0
        lock = self._chats.setdefault(key, asyncio.Lock())
        self._queued[key] = self._queued.get(key, 0) + 1
        try:
            async with lock, self._slots:
                writes = collect_after_handled()  # this update's task only
                await coroutine
                if isinstance(update, Update):
                    self._mark_handled(update.update_id, writes)
        finally:
            self._queued[key] -= 1
            if not self._queued[key]:  # nothing else waits in this chat: forget its lock
                del self._queued[key]
                del self._chats[key]

    def _mark_handled(self, update_id: int, writes: list[AfterHandled]) -> None:
        self._handled.append(update_id)
        self._handled_count += 1
        self._after.extend(writes)
        if self._marking is None or self._marking.done():
            self._marking = asyncio.create_task(self._write_handled())

    async def _write_handled(self) -> None:
        """Mark done what has been handled, a batch at a time, until none is left."""
        while self._handled:
            batch, self._handled = self._handled, []
            writes, self._after = self._after, []
            try:
                await self.db.run(finish_handled, writes=writes, update_ids=batch, at=self.clock())
            except Exception:
                # Left unfinished in the inbox: the next start handles them again.
                log.exception("could not mark %d handled updates done", len(batch))
            async with self._progress:
                self._written_count += len(batch)
                self._progress.notify_all()

    async def written(self) -> None:
        """Return once every update handled so far has had its mark done written (or
        failed to); not waiting for those handled later, which a busy bot never runs out of."""
        target = self._handled_count
        async with self._progress:
            await self._progress.wait_for(lambda: self._written_count >= target)

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Write the last batch of handled updates before the database is closed."""
        if self._marking is not None:
            await self._marking
