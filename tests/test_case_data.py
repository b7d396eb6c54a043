"""The guard against case data: what it finds (hits and near misses), and how the guided
update, the one-line update and the meeting form ask before storing it (end to end)."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import PhoneMetadata
from sqlmodel import col, select

from csp_bot.bot.emulator import BotApiEmulator
from csp_bot.models.case_data import (
    PHONE_DIGITS_AT_LEAST,
    CaseData,
    find_case_data,
    nhs_number_valid,
)
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from csp_bot.models.tables import AuditEntry, Meeting, ProgressUpdate
from tests.harness import PEOPLE, Harness
from tests.test_dialogue import dies_before_replying
from tests.test_progress import current, data_for, labels

POLICE = PEOPLE["police"].user
CHAIR = PEOPLE["chair"].user
WARNING = (
    "⚠️ This looks like it contains {kind}. The bot must not hold details about victims or "
    "offenders."
)

HITS = [
    ("Spoke to the family at NN16 0AP", CaseData.POSTCODE),
    ("visit to e1 6an on Tuesday", CaseData.POSTCODE),
    ("Victim DOB 12/03/1985", CaseData.DATE_OF_BIRTH),
    ("date of birth: 3 March 1985", CaseData.DATE_OF_BIRTH),
    ("born 1985-03-12", CaseData.DATE_OF_BIRTH),
    ("call him on 07911 123456", CaseData.PHONE),
    ("mum's landline 01536 534316", CaseData.PHONE),
    ("+44 20 7946 0958", CaseData.PHONE),
    ("emailed jane.doe@example.org", CaseData.EMAIL),
    ("NHS no 943 476 5919", CaseData.NHS_NUMBER),
    ("9434765919", CaseData.NHS_NUMBER),
    ("NI AB 12 34 56 C", CaseData.NI_NUMBER),
    ("ni number ab123456c", CaseData.NI_NUMBER),
    ("crime ref 12345/21", CaseData.CRIME_REFERENCE),
    ("CR/012345/21 raised", CaseData.CRIME_REFERENCE),
    ("Crime number: 21000012345", CaseData.CRIME_REFERENCE),
    ("CRN 4500123", CaseData.CRIME_REFERENCE),
]
NEAR_MISSES = [
    "Citadel pilot delayed by staff shortage",
    "SOC-1 and ASB-M1 on track",
    "NN16 area and the William Knibb ward",
    "£45,000 agreed for 2021/22, Q2 figures due 2021-09-30",
    "due 12/03/2022, review on 3 March 2022",
    "met 12 partners, 3400 visits, 250 referrals",
    "MAPPA level 2 cases reviewed",
    "NHS 943 476 5910",  # the check digit is wrong
    "1234567890",
    "QQ 12 34 56 C",  # never issued
    "crime reduction target met",
    "@ the board, email the team",
    "Q2 2021-07 returns",
    "born out of the review",
    "version 2.3.4 of the toolkit",
]


@pytest.mark.parametrize(("text", "kind"), HITS)
def test_case_data_is_found(text: str, kind: CaseData) -> None:
    assert kind in find_case_data(text)


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_are_not_case_data(text: str) -> None:
    assert find_case_data(text) == []


def test_texts_the_phone_check_skips_are_too_short_for_any_number() -> None:
    # The check skips texts with fewer digits than PHONE_DIGITS_AT_LEAST; no numbering plan
    # phonenumbers holds has a number that short (country code and national number).
    plans = [PhoneMetadata.metadata_for_region(r) for r in phonenumbers.SUPPORTED_REGIONS]
    plans += [
        PhoneMetadata.metadata_for_nongeo_region(code)
        for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS
    ]
    shortest = min(
        len(str(plan.country_code)) + min(n for n in plan.general_desc.possible_length if n > 0)
        for plan in plans
        if plan is not None
    )
    assert shortest == 6  # +43 (Austria) and four digits
    assert shortest >= PHONE_DIGITS_AT_LEAST
    assert find_case_data("call him on 07911 123456") == [CaseData.PHONE]


def test_the_nhs_check_digit() -> None:
    assert nhs_number_valid("9434765919")
    assert not nhs_number_valid("9434765918")
    assert not nhs_number_valid("943476591")
    assert not nhs_number_valid("943476591²")


def updates(db: Database) -> list[ProgressUpdate]:
    return list(db.call(lambda s: s.exec(select(ProgressUpdate)).all()))


def case_audit(db: Database) -> list[tuple[str, dict[str, object] | None]]:
    entries = db.call(
        lambda s: s.exec(
            select(AuditEntry)
            .where(AuditEntry.entity == "case_data_check")
            .order_by(col(AuditEntry.id))
        ).all()
    )
    return [(entry.change, entry.after) for entry in entries]


async def test_a_note_with_a_postcode_is_asked_about_and_can_be_edited(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    await bot.send(POLICE, "/update SOC-1 green")
    [warning] = await bot.send(POLICE, "Visited the family at NN16 0AP")
    assert warning.text.startswith(WARNING.format(kind="a postcode"))
    assert labels(emulator, warning) == ["✏️ Edit it", "Store anyway", "Cancel"]
    assert updates(db) == []
    assert await bot.press(POLICE, warning, data_for(emulator, warning, "✏️")) == []
    assert current(emulator, warning).text == "Send it again without the personal details."
    [stored] = await bot.send(POLICE, "Visits under way in the ward")
    assert stored.text.startswith("Stored:\n<b>SOC-1</b>")
    assert [u.note for u in updates(db)] == ["Visits under way in the ward"]
    assert case_audit(db) == [
        ("edited", {"kind": "a postcode", "dialogue": "update", "what": "update on SOC-1"})
    ]
    assert "NN16" not in repr(db.call(lambda s: s.exec(select(AuditEntry)).all()))


async def test_store_anyway_replayed_after_a_crash_stores_once(
    bot: Harness,
    db: Database,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    note = "Helpline 0800 123 4567 now staffed"
    [warning] = await bot.send(POLICE, f"/update SOC-1 green {note}")  # the one-line form
    assert warning.text.startswith(WARNING.format(kind="a phone number"))
    press = emulator.build_callback_update(
        POLICE, warning.message_id, data_for(emulator, warning, "Store anyway")
    )
    with dies_before_replying(monkeypatch):
        await bot.process(press)
    assert [u.note for u in updates(db)] == [note]
    [confirmation] = await bot.process(press)  # the inbox hands the press over again
    assert confirmation.text.startswith("Stored:\n<b>SOC-1</b>")
    assert await bot.process(press) == []
    assert [u.note for u in updates(db)] == [note]
    assert case_audit(db) == [
        (
            "stored anyway",
            {"kind": "a phone number", "dialogue": "update", "what": "update on SOC-1"},
        )
    ]


async def test_a_mitigation_is_checked_too_and_goes_on_to_the_forecast(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    await bot.send(POLICE, "/update SOC-1 red Pilot stalled")
    [warning] = await bot.send(POLICE, "Offender CRN 4500123 moved out of area")
    assert warning.text.startswith(WARNING.format(kind="a police crime reference"))
    assert await bot.press(POLICE, warning, data_for(emulator, warning, "Store anyway")) == []
    forecast = current(emulator, warning)  # the question becomes the next one
    assert "will it recover by the due date" in forecast.text
    [done] = await bot.press(POLICE, forecast, data_for(emulator, forecast, "Yes"))
    assert done.text.startswith("Stored:\n<b>SOC-1</b>")
    assert [u.mitigation for u in updates(db)] == ["Offender CRN 4500123 moved out of area"]


async def test_a_meeting_agenda_is_checked(
    bot: Harness, db: Database, emulator: BotApiEmulator, people: dict[str, MemberView]
) -> None:
    before = len(db.call(lambda s: s.exec(select(Meeting)).all()))
    first = (await bot.send(CHAIR, "/meeting"))[0]
    await bot.press(CHAIR, first, data_for(emulator, first, "North Northants CSP Board"))
    await bot.send(CHAIR, "9/12/2021 14:00")
    await bot.send(CHAIR, "Municipal Offices, NN16 0AP")  # a place may have a postcode
    [warning] = await bot.send(CHAIR, "Case of J Smith, DOB 01/02/1990")
    assert warning.text.startswith(WARNING.format(kind="a date of birth"))
    await bot.press(CHAIR, warning, data_for(emulator, warning, "✏️"))
    [summary] = await bot.send(CHAIR, "Exception report")
    assert "<b>Schedule this meeting?</b>" in summary.text
    await bot.press(CHAIR, summary, data_for(emulator, summary, "💾 Save"))
    meetings = db.call(lambda s: s.exec(select(Meeting)).all())
    assert [(m.location, m.agenda) for m in meetings[before:]] == [
        ("Municipal Offices, NN16 0AP", "Exception report")
    ]
