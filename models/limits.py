"""Input limits, in one table: the plan import, the command line and the chat forms all
check what people give them against these, so nothing too long or too large reaches the
database or a message (Telegram's 4,096 characters, PostgreSQL's 64-bit integers).

Below the table, the checks that apply it: one for a line of text, one for text that may run
over lines, one for an amount, one for a number that names a record. Each refusal is a
DomainError whose text names the limit, fit to show in chat or print on the command line.
"""

from __future__ import annotations

import re

from csp_bot.models.errors import DomainError
from csp_bot.models.values import FIRST_YEAR, LAST_YEAR, format_money

# Characters of text.
TITLE = 200  # a plan, priority, action, stream, meeting, deadline or group title
NAME = 120  # a person's or an organisation's name
NOTE = 1000  # a progress note, mitigation or forecast, a description, a funding note
PLACE = 300  # a meeting's place or link
AGENDA_ITEM = 300  # one line of a meeting's agenda
AGENDA_ITEMS = 30  # lines of one agenda
# Money: £1 billion, in pence (more than any partnership's whole budget).
AMOUNT_PENCE = 1_000_000_000 * 100
# Dates: years FIRST_YEAR to LAST_YEAR (2000 to 2100), checked by `models.values`.
YEARS = (FIRST_YEAR, LAST_YEAR)
# A plan file: its size, and how deeply its YAML may nest (the format needs 5 levels).
PLAN_FILE_BYTES = 1_000_000
NESTING_DEPTH = 12
# Numbers that name something: a record's id is the database's 32-bit integer; a Telegram
# id (a person's, or a group's, which is negative) its 64-bit one. A bigger number names
# nothing, and would overflow the query it reached.
RECORD_ID = 2**31 - 1
TELEGRAM_ID = 2**63 - 1

# Control characters (C0, DEL and C1) other than tab, line feed and carriage return: nobody
# means to type them, they garble messages, files and calendars, and PostgreSQL refuses NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Characters that show nothing: text of only these (and spaces) is as empty as blank text.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"))


def first_control_character(text: str) -> int | None:
    """The index of the first control character in `text`, or None if it has none."""
    found = _CONTROL.search(text)
    return None if found is None else found.start()


def character_code(char: str) -> str:
    """How a character that cannot be shown is named: U+0007."""
    return f"U+{ord(char):04X}"


# --- text ------------------------------------------------------------------------------------


def check_line(text: str, *, what: str, limit: int, required: bool = True) -> str:
    """One line of text (a title, a name, a place), its runs of spaces and line breaks made
    single spaces; DomainError if it holds a control character, is empty (when required)
    or is longer than `limit`."""
    _refuse_control_characters(text, what)
    return _within(" ".join(text.split()), what=what, limit=limit, required=required)


def check_lines(text: str, *, what: str, limit: int, required: bool = True) -> str:
    """Text that may run over lines (a note), its line breaks kept; refused as `check_line`."""
    _refuse_control_characters(text, what)
    cleaned = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return _within(cleaned, what=what, limit=limit, required=required)


def fitted(text: str, *, limit: int) -> str:
    """Text Telegram gives rather than a person types here (a person's name, a group's
    title): its control characters taken out and cut to `limit`, not refused, since it is
    what Telegram holds and refusing it would turn the person away."""
    return " ".join(_CONTROL.sub("", text).split())[:limit]


def check_title(text: str, *, required: bool = True) -> str:
    return check_line(text, what="title", limit=TITLE, required=required)


def check_name(text: str) -> str:
    return check_line(text, what="name", limit=NAME)


def check_place(text: str) -> str:
    return check_line(text, what="place or link", limit=PLACE, required=False)


def check_agenda_item(text: str, *, required: bool = True) -> str:
    return check_line(text, what="agenda item", limit=AGENDA_ITEM, required=required)


def check_note(text: str, *, what: str = "note", required: bool = True) -> str:
    """A note, mitigation, forecast or description."""
    return check_lines(text, what=what, limit=NOTE, required=required)


def _refuse_control_characters(text: str, what: str) -> None:
    # Checked before spaces are run together: Python counts some control characters
    # (U+001C to U+001F, U+0085) as spaces, and would quietly make them one.
    index = first_control_character(text)
    if index is not None:
        raise DomainError(
            f"{_a(what)} can't contain control characters; yours has "
            f"{character_code(text[index])} at character {index + 1}."
        )


def _within(cleaned: str, *, what: str, limit: int, required: bool) -> str:
    if not cleaned.translate(_INVISIBLE).strip():
        if required:
            raise DomainError(f"The {what} is empty.")
        return ""
    if len(cleaned) > limit:
        raise DomainError(
            f"{_a(what)} can be at most {limit:,} characters; yours has {len(cleaned):,}."
        )
    return cleaned


def _a(what: str) -> str:
    """`what` with its article, to start a sentence: "A title", "An agenda item"."""
    return f"{'An' if what[0] in 'aeiou' else 'A'} {what}"


# --- numbers ---------------------------------------------------------------------------------


def check_amount(pence: int) -> int:
    """`pence` if it is at most £1 billion; otherwise DomainError naming the limit."""
    if pence > AMOUNT_PENCE:
        raise DomainError(
            f"An amount can be at most {format_money(AMOUNT_PENCE)}; "
            f"yours is {format_money(pence)}. Please check it."
        )
    return pence


def check_record_id(number: int, *, what: str) -> int:
    """A record's id as typed (`what`: "a member id"): DomainError beyond 32 bits."""
    return _within_magnitude(number, what=what, largest=RECORD_ID)


def check_telegram_id(number: int, *, what: str) -> int:
    """A person's or a group's Telegram id as typed (`what`: "a chat id"): DomainError
    beyond 64 bits."""
    return _within_magnitude(number, what=what, largest=TELEGRAM_ID)


def _within_magnitude(number: int, *, what: str, largest: int) -> int:
    if abs(number) > largest:
        raise DomainError(f"{number} is out of range for {what} (the largest is {largest:,}).")
    return number
