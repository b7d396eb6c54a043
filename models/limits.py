"""Input limits, in one table: the plan import, the command line and the chat forms all
check what people give them against these, so nothing too long or too large reaches the
database or a message (Telegram's 4,096 characters, PostgreSQL's 64-bit integers)."""

from __future__ import annotations

from csp_bot.models.values import FIRST_YEAR, LAST_YEAR

# Characters of text.
TITLE = 200  # a plan, priority, action, stream, meeting or deadline title
NAME = 120  # a person's or an organisation's name
NOTE = 1000  # a progress note or mitigation, a description, a funding note
PLACE = 300  # a meeting's place or link
AGENDA_ITEM = 300  # one line of a meeting's agenda
# Money: £1 billion, in pence (more than any partnership's whole budget).
AMOUNT_PENCE = 1_000_000_000 * 100
# Dates: years FIRST_YEAR to LAST_YEAR (2000 to 2100), checked by `models.values`.
YEARS = (FIRST_YEAR, LAST_YEAR)
# A plan file: its size, and how deeply its YAML may nest (the format needs 5 levels).
PLAN_FILE_BYTES = 1_000_000
NESTING_DEPTH = 12
