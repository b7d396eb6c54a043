"""What case data looks like: a guard run on free text before it is stored.

The bot holds action-level information only; details about victims or offenders belong in
E-Cins. Before a note, a mitigation or an agenda item is stored, `find_case_data` looks for
the identifiers such details carry. A hit is not a refusal: the person is asked, and may
store the text anyway (a council office's phone number is no case data). So the patterns
lean to finding, and the near misses that matter (plan references, money, financial
years, due dates, ward names) are kept out by the tests.
"""

from __future__ import annotations

import re
from enum import StrEnum

import phonenumbers


class CaseData(StrEnum):
    """A kind of personal identifier, named as the warning names it."""

    POSTCODE = "a postcode"
    DATE_OF_BIRTH = "a date of birth"
    PHONE = "a phone number"
    EMAIL = "an email address"
    NHS_NUMBER = "an NHS number"
    NI_NUMBER = "a National Insurance number"
    CRIME_REFERENCE = "a police crime reference"


# A full postcode (outward and inward code); the inward code's letters never include
# C, I, K, M, O or V. An outward code alone ("NN16") is a district, not an address.
_POSTCODE = re.compile(
    r"\b(?:[A-Z]{1,2}[0-9][A-Z0-9]?|GIR)\s*[0-9][ABD-HJLNP-UW-Z]{2}\b", re.IGNORECASE
)
_EMAIL = re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Prefixes HMRC never issues (BG, GB, NK, KN, TN, NT, ZZ), and first letters D, F, I, Q,
# U, V, second letters D, F, I, O, Q, U, V.
_NI_NUMBER = re.compile(
    r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b",
    re.IGNORECASE,
)
# The fewest digits a valid number has anywhere (a country code and the shortest national
# number: +43 and four digits); the UK's own have seven at least. `tests/test_case_data.py`
# reads it again from the numbering plans phonenumbers holds.
PHONE_DIGITS_AT_LEAST = 6
_DIGIT = re.compile(r"\d")
_NHS_NUMBER = re.compile(r"(?<![\d-])(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?![\d-])")
# "DOB 12/03/1985", "date of birth: 3 March 1985", "born 12.3.85".
_DATE_OF_BIRTH = re.compile(
    r"\b(?:d\.?o\.?b\.?|date\s+of\s+birth|born(?:\s+on)?)\W{0,3}"
    r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}|\d{1,2}(?:st|nd|rd|th)?\s+[A-Za-z]{3,9}\s+\d{2,4}"
    r"|\d{4}-\d{2}-\d{2})",
    re.IGNORECASE,
)
# Forces write crime references in several shapes: "crime ref 12345/21", "CRN 21000123",
# "CR/012345/21", "occurrence number 21*123456".
_CRIME_REFERENCE = re.compile(
    r"\b(?:(?:crime|incident|occurrence|police)\s+(?:ref(?:erence)?|no|number|#)\.?|CRN|URN)"
    r"\s*[:#]?\s*[A-Z0-9*/\-]*\d{4,}"
    r"|\bCR[/\-]\d{4,}[/\-]\d{2}\b",
    re.IGNORECASE,
)
_PATTERNS: tuple[tuple[CaseData, re.Pattern[str]], ...] = (
    (CaseData.POSTCODE, _POSTCODE),
    (CaseData.DATE_OF_BIRTH, _DATE_OF_BIRTH),
    (CaseData.EMAIL, _EMAIL),
    (CaseData.NI_NUMBER, _NI_NUMBER),
    (CaseData.CRIME_REFERENCE, _CRIME_REFERENCE),
)


def find_case_data(text: str) -> list[CaseData]:
    """The kinds of case data `text` seems to contain, in a fixed order; [] for none."""
    found = [kind for kind, pattern in _PATTERNS if pattern.search(text)]
    if any(nhs_number_valid("".join(m.groups())) for m in _NHS_NUMBER.finditer(text)):
        found.append(CaseData.NHS_NUMBER)
    if CaseData.NHS_NUMBER not in found and has_phone_number(text):
        found.append(CaseData.PHONE)
    return found


def nhs_number_valid(digits: str) -> bool:
    """Whether ten digits are an NHS number: the tenth is the modulus 11 check digit of the
    first nine (weights 10 down to 2); a remainder giving 10 is never issued."""
    if len(digits) != 10 or not (digits.isascii() and digits.isdecimal()):
        return False
    total = sum(
        int(digit) * weight for digit, weight in zip(digits[:9], range(10, 1, -1), strict=True)
    )
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def has_phone_number(text: str) -> bool:
    """A number valid in the UK's (or, written with +, another country's) numbering plan."""
    # Most notes hold a few digits or none ("on track, 3 sessions run"): the matcher takes
    # longer than the rest of storing the update, and finds nothing there.
    if len(_DIGIT.findall(text)) < PHONE_DIGITS_AT_LEAST:
        return False
    matches = phonenumbers.PhoneNumberMatcher(text, "GB", leniency=phonenumbers.Leniency.VALID)
    return any(True for _ in matches)
