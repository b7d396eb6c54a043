"""What a one-line /update costs the database: its transactions and SQL statements.

Counted at the engine, as the bot runs it: through the inbox's processor, which notes the
reply shown with the update's mark done. A change that adds a round trip to every update
shows here, whatever the load of the machine the tests run on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from telegram import Update

from csp_bot.bot.emulator import BotApiEmulator
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.dialogue import CLOSED, Draft, load_draft, save_draft, shown_later
from csp_bot.models.inbox import finish_handled
from csp_bot.models.membership import MemberView
from tests.harness import PEOPLE, Harness

POLICE = PEOPLE["police"].user


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)
    transactions: int = 0


@contextmanager
def counting(db: Database) -> Iterator[Counted]:
    """The statements and transactions the database runs inside the block."""
    counted = Counted()

    def statement(*args: Any) -> None:
        counted.statements.append(args[2])

    def begin(*_args: Any) -> None:
        counted.transactions += 1

    event.listen(db.engine, "before_cursor_execute", statement)
    event.listen(db.engine, "begin", begin)
    try:
        yield counted
    finally:
        event.remove(db.engine, "before_cursor_execute", statement)
        event.remove(db.engine, "begin", begin)


async def through_the_inbox(bot: Harness, emulator: BotApiEmulator, text: str) -> str:
    """`text` from the police partner, handled by the bot's update processor (as updates
    from the inbox are) until its mark done is written; the bot's one reply."""
    seen = len(emulator.messages())
    update = Update.de_json(emulator.build_message_update(POLICE, text), bot.app.bot)
    processor = bot.app.update_processor
    await processor.process_update(update, bot.app.process_update(update))
    await processor.shutdown()  # waits for the batch that marks it done
    [reply] = emulator.messages()[seen:]
    return reply.text


async def test_a_one_line_update_is_three_transactions_and_ten_statements(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    await through_the_inbox(bot, emulator, "/update SOC-1 green warming up")
    with counting(db) as counted:
        text = await through_the_inbox(bot, emulator, "/update SOC-1 on track all good")
    assert text.startswith("Stored:\n<b>SOC-1</b>")
    # Who wrote (with whether they were unreachable); the draft, the action with the member
    # and any copy already stored, the update, the action's move, its audit rows, the closed
    # draft and the data version; the reply noted shown (one UPDATE) with the mark done.
    # Four transactions and 17 statements before the inbox batched its writes, then 16.
    assert counted.transactions <= 3
    assert len(counted.statements) <= 10, counted.statements


def test_the_replies_of_a_batch_are_noted_shown_in_one_statement(
    db: Database, clock: FakeClock
) -> None:
    users = (1004, 1002, 1003)
    for n, user in enumerate(users):
        draft = Draft(dialogue="update", step=CLOSED, touched_at=clock(), update_id=70 + n)
        db.call(save_draft, user_id=user, draft=draft)
    kept = [shown_later(user_id=user, update_id=70 + n) for n, user in enumerate(users)]
    kept.append(shown_later(user_id=1003, update_id=99))  # moved on since: nothing to note
    with counting(db) as counted:
        db.call(finish_handled, writes=kept, update_ids=[70, 71, 72], at=clock())
    assert [statement.split()[0:3] for statement in counted.statements] == [
        ["UPDATE", "dialogue_draft", "SET"],
        ["UPDATE", "inbox_update", "SET"],
    ]
    shown = [db.call(load_draft, user_id=user, at=clock()).draft for user in users]
    assert [draft.shown for draft in shown if draft is not None] == [True, True, True]
