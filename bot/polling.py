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
from typing import Any

from telegram import Update
from telegram.error import Conflict
from telegram.request import BaseRequest, RequestData

# The library's own parameter type, which `RequestData` is made of; it is not re-exported.
from telegram.request._requestparameter import RequestParameter

from csp_bot.bot.intake import Intake

log = logging.getLogger(__name__)

LONG_POLL_SECONDS = 30
# After an answer Telegram would not normally give (a webhook is set, another bot polls).
REFUSED_PAUSE_SECONDS = 5.0


class Poller:
    """Fetches batches of updates and hands each to the intake before confirming it.

    Telegram's answer is kept as it came rather than read by `Bot.get_updates`: that reads
    the whole batch into python-telegram-bot's objects and, when one update cannot be
    read, raises for all of them (logging the batch, people's messages and all), so the
    offset could never move past it. Here each update is stored as sent, and one that
    cannot be read is set aside by the intake (`Intake.accept`).
    """

    def __init__(self, intake: Intake, *, timeout: int = LONG_POLL_SECONDS) -> None:
        self.intake = intake
        self.bot = intake.application.bot
        request = intake.application.updates_request
        assert request is not None, "built by build_application"
        self.request: BaseRequest = request
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
            answer = await self._get_updates()
        except Conflict as refused:
            log.warning("Telegram refused getUpdates (%s); trying again shortly", refused)
            await asyncio.sleep(REFUSED_PAUSE_SECONDS)
            return 0
        updates = [item for item in answer if _has_update_id(item)]
        if len(updates) < len(answer):
            log.warning("getUpdates sent %d items with no update_id", len(answer) - len(updates))
        if updates:
            await self.intake.accept(updates)
            self.offset = max(int(update["update_id"]) for update in updates) + 1
        return len(updates)

    async def _get_updates(self) -> list[Any]:
        """The next batch as Telegram sent it; an answer that is no list counts as none."""
        parameters = {"offset": self.offset, "timeout": self.timeout}
        data = RequestData(
            [RequestParameter.from_input(name, value) for name, value in parameters.items()]
            + [RequestParameter.from_input("allowed_updates", list(Update.ALL_TYPES))]
        )
        # As `Bot.get_updates` does: the long poll's seconds on top of the usual wait.
        read_timeout = (self.request.read_timeout or 0) + self.timeout
        answer = await self.request.post(
            f"{self.bot.base_url}/getUpdates", data, read_timeout=read_timeout
        )
        if not isinstance(answer, list):
            log.warning("getUpdates answered %s, not a list of updates", type(answer).__name__)
            return []
        return answer


def _has_update_id(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("update_id"), int)
