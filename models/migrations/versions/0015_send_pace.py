"""the pace of sends that all instances on one PostgreSQL database share

One row per chat holds the earliest moment the next message may go to it, and row 0 the
overall pace; `take_send_turn` reads and moves them under row locks in one round trip
(`models.send_pace`). SQLite runs one instance, which paces its sends in memory: the table
is made there too, so both databases hold the same tables, but only PostgreSQL gets the
functions.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Times are seconds since the epoch on the database's clock, the one clock every instance
# shares. A turn is taken only when the chat may have its next message within the overall
# pace: a chat that must wait takes nothing, so it never holds up the overall pace for
# others (a generic cell rate algorithm per chat, and one overall).
TAKE_SEND_TURN = """
CREATE FUNCTION take_send_turn(
    chat bigint, chat_gap float8, chat_slack float8, gap float8, slack float8, at float8
) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    now_ float8 := coalesce(at, extract(epoch FROM clock_timestamp()));
    chat_next float8;
    overall_next float8;
    send_at float8;
BEGIN
    -- A pace lost with a crash of the server costs nothing: no wait for the disk.
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO send_pace (chat_id, next_at) VALUES (chat, 0), (0, 0)
        ON CONFLICT (chat_id) DO NOTHING;
    SELECT next_at INTO chat_next FROM send_pace WHERE chat_id = chat FOR UPDATE;
    chat_next := greatest(chat_next, now_);
    IF chat_next - chat_slack > now_ THEN
        RETURN now_ - (chat_next - chat_slack);  -- negative: ask again that much later
    END IF;
    SELECT next_at INTO overall_next FROM send_pace WHERE chat_id = 0 FOR UPDATE;
    overall_next := greatest(overall_next, now_);
    send_at := greatest(now_, overall_next - slack);
    UPDATE send_pace SET next_at = overall_next + gap WHERE chat_id = 0;
    UPDATE send_pace SET next_at = greatest(chat_next, send_at) + chat_gap
        WHERE chat_id = chat;
    RETURN send_at - now_;  -- the turn is taken: send this many seconds from now
END $$
"""

PAUSE_SENDS = """
CREATE FUNCTION pause_sends(seconds float8, at float8) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    until_ float8 := coalesce(at, extract(epoch FROM clock_timestamp())) + seconds;
BEGIN
    INSERT INTO send_pace (chat_id, next_at) VALUES (0, until_)
        ON CONFLICT (chat_id) DO UPDATE
        SET next_at = greatest(send_pace.next_at, excluded.next_at);
    RETURN until_;
END $$
"""


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "send_pace",
        sa.Column("chat_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        # Not written to the server's log: after a crash of the server it starts empty,
        # which only lets the next sends go at once.
        prefixes=["UNLOGGED"] if postgresql else [],
    )
    if postgresql:
        op.execute(TAKE_SEND_TURN)
        op.execute(PAUSE_SENDS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION pause_sends(float8, float8)")
        op.execute("DROP FUNCTION take_send_turn(bigint, float8, float8, float8, float8, float8)")
    op.drop_table("send_pace")
