"""Long polling that confirms an update to Telegram only once the inbox holds it.

python-telegram-bot's own `Updater` confirms a batch (the next `getUpdates` offset) as soon
as it has queued it in memory, before any handler has run, so a crash loses the batch; it
also stops for good on a 404, which a proxy on the way can answer. This loop asks for the
next batch only after `Intake.accept` has committed the last one. Its requests go through
`ResilientRequest` with unbounded tries, so Telegram's faults only slow it down; a refused
token ends it.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Update
from telegram.error import Conflict

from csp_bot.bot.intake import Intake

log = logging.getLogger(__name__)

LONG_POLL_SECONDS = 30
# After an answer Telegram would not normally give (a webhook is set, another bot polls).
REFUSED_PAUSE_SECONDS = 5.0


class Poller:
    """Fetches batches of updates and hands each to the intake before confirming it."""

    def __init__(self, intake: Intake, *, timeout: int = LONG_POLL_SECONDS) -> None:
        self.intake = intake
        self.bot = intake.application.bot
        self.timeout = timeout
        self.offset = 0

    async def run(self) -> None:
        """Poll until cancelled; a refused token (`TokenRefused`) ends it by raising."""
        await self.bot.delete_webhook()
        while True:
            await self.poll_once()

    async def poll_once(self) -> int:
        """One `getUpdates`: store what came, then move the offset past it. How many came."""
        try:
            updates = await self.bot.get_updates(
                offset=self.offset, timeout=self.timeout, allowed_updates=Update.ALL_TYPES
            )
        except Conflict as refused:
            log.warning("Telegram refused getUpdates (%s); trying again shortly", refused)
            await asyncio.sleep(REFUSED_PAUSE_SECONDS)
            return 0
        if updates:
            await self.intake.accept([update.to_dict() for update in updates])
            self.offset = updates[-1].update_id + 1
        return len(updates)
