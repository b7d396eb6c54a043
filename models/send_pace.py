"""The pace of sends that every instance on one PostgreSQL database shares.

Telegram counts a bot's messages, not an instance's: three instances each keeping 30 a
second would send 90. So on PostgreSQL every send, reply or reminder, from any instance,
first takes its turn from `send_pace` (migration 0015): row 0 holds the moment the overall
pace next allows a message, and each chat's row the moment that chat may have its next.
`take_send_turn` reads and moves both under row locks, in one round trip, on the
database's clock, which every instance reads alike. Its table is unlogged and its commits
do not wait for the disk: a pace lost with the server only lets the next sends go at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from csp_bot.models.own_connection import OwnConnection

_TAKE = sa.text("SELECT take_send_turn(:chat, :chat_gap, :chat_slack, :gap, :slack, :at)").columns(
    sa.column("wait", sa.Float)
)
_PAUSE = sa.text("SELECT pause_sends(:seconds, :at)")
_POSTPONE = sa.text("UPDATE send_pace SET next_at = next_at + :seconds WHERE chat_id = :chat")


@dataclass(frozen=True)
class Spacing:
    """Seconds between sends (`gap`), and how much earlier than that one may go (`slack`:
    the burst a limit allows, as a generic cell rate algorithm)."""

    gap: float
    slack: float = 0.0


class SharedPace:
    """Turns to send, taken from the pace all instances share.

    `at` (seconds since the epoch) stands in for the database's clock in tests.
    """

    def __init__(self, engine: Engine) -> None:
        self._own = OwnConnection(engine, "send-pace")

    async def take(
        self, chat_id: int, *, chat: Spacing, overall: Spacing, at: float | None = None
    ) -> float:
        """Seconds from now until this send may go, its turn taken (0: at once); or,
        negative, the chat must wait: nothing was taken, ask again that much later."""
        return await self._own.run(self._take, chat_id, chat, overall, at)

    async def postpone(self, chat_id: int, *, seconds: float) -> None:
        """The chat's last message went `seconds` later than its turn: so does its next."""
        await self._own.run(self._postpone, chat_id, seconds)

    async def pause(self, seconds: float, *, at: float | None = None) -> None:
        """Telegram asked the bot to wait: no instance sends anything until then."""
        await self._own.run(self._pause, seconds, at)

    async def close(self) -> None:
        await self._own.close()

    @staticmethod
    def _take(
        connection: Connection, chat_id: int, chat: Spacing, overall: Spacing, at: float | None
    ) -> float:
        parameters = {
            "chat": chat_id,
            "chat_gap": chat.gap,
            "chat_slack": chat.slack,
            "gap": overall.gap,
            "slack": overall.slack,
            "at": at,
        }
        return float(connection.execute(_TAKE, parameters).scalar_one())

    @staticmethod
    def _postpone(connection: Connection, chat_id: int, seconds: float) -> None:
        connection.execute(_POSTPONE, {"chat": chat_id, "seconds": seconds})

    @staticmethod
    def _pause(connection: Connection, seconds: float, at: float | None) -> None:
        connection.execute(_PAUSE, {"seconds": seconds, "at": at})
