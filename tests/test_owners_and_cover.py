"""Several owners of an action, a deputy while a member is away, and the statutory calendar.

End to end: the plan file, the command line and chat link owners; any owner may update;
reminders go to every owner; `/away` names a deputy who gets the reminders and may update
what the member owns; `/back` and `/my` say who covered; bad input stores nothing; the
statutory calendar's deadlines are listed and reminded of as the clock moves.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import col, select

from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser, SentMessage
from csp_bot.handlers.context import CspApplication
from csp_bot.models.absences import start_absence
from csp_bot.models.audit import CLI
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.errors import DomainError
from csp_bot.models.membership import MemberView, add_member
from csp_bot.models.plan_checks import PlanError, parse_plan
from csp_bot.models.plan_import import import_plan
from csp_bot.models.statutory import MonthDay, StatutoryDates
from csp_bot.models.tables import Absence, Action, ActionOwner, AuditEntry, Deadline
from tests.harness import PEOPLE, Harness
from tests.reminder_helpers import set_clock, texts, tick
from tests.test_cli import env, run_cli  # noqa: F401  (the command-line test setup)
from tests.test_plan_import import EXAMPLE

# Colleagues for the deputies and the second owners.
CARA = EmulatedUser(1010, "Cara", "Council")
PAT = EmulatedUser(1011, "Pat", "Police")


def colleague(db: Database, clock: FakeClock, user: EmulatedUser, organisation: str) -> MemberView:
    return db.call(
        add_member,
        telegram_id=user.id,
        name=user.first_name,
        organisation=organisation,
        role="partner",
        at=clock(),
        actor=CLI,
    )


@pytest.fixture
def cara(db: Database, clock: FakeClock, people: dict[str, MemberView]) -> MemberView:
    """A council partner: not of SOC-3's lead organisation (Northants Police)."""
    return colleague(db, clock, CARA, "North Northamptonshire Council")


@pytest.fixture
def pat(db: Database, clock: FakeClock, people: dict[str, MemberView]) -> MemberView:
    """Dan's colleague at Northants Police."""
    return colleague(db, clock, PAT, "Northants Police")


async def said(bot: Harness, user: EmulatedUser, text: str) -> str:
    """The one reply to `user` typing `text`, as they read it (no markup)."""
    sent = await bot.send(user, text)
    assert len(sent) == 1, [message.text for message in sent]
    return sent[0].plain_text


def now_shown(bot: Harness, message: SentMessage) -> SentMessage:
    """The message as it reads now (the form edits its message in place)."""
    return next(m for m in bot.emulator.messages() if m.message_id == message.message_id)


def tap(bot: Harness, message: SentMessage, label: str) -> str:
    return dict(bot.emulator.buttons(message))[label]


def owners(db: Database, ref: str) -> list[int]:
    def read(session: object) -> list[int]:
        action = session.exec(select(Action).where(Action.ref == ref)).one()  # type: ignore[attr-defined]
        rows = session.exec(  # type: ignore[attr-defined]
            select(ActionOwner.member_id)
            .where(ActionOwner.action_id == action.id)
            .order_by(col(ActionOwner.id))
        )
        return list(rows.all())

    return db.call(read)


def absences(db: Database) -> list[Absence]:
    return list(db.call(lambda s: s.exec(select(Absence)).all()))


# --- the plan file ------------------------------------------------------------------------------


def test_the_sample_plan_names_several_owners_by_post(
    db: Database, people: dict[str, MemberView]
) -> None:
    stored = db.call(lambda s: s.exec(select(Action.owner).where(Action.ref == "HATE-1")).one())
    assert stored == "Hate crime officer; PCSO lead"


def test_an_owner_named_twice_is_an_error() -> None:
    text = EXAMPLE.read_text().replace(
        "owners: [PCSO lead]", "owners: [PCSO lead, 'hate crime officer']"
    )
    with pytest.raises(PlanError) as refused:
        parse_plan(text, source="plan.yaml")
    assert (
        "priorities[2].actions[0].owners[1]: 'hate crime officer' is named as an owner twice"
        in (str(refused.value))
    )


# --- the command line ----------------------------------------------------------------------------


def test_the_command_line_adds_and_removes_owners(
    env: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    db: Database,
    people: dict[str, MemberView],
    cara: MemberView,
) -> None:
    dan = people["police"]
    code, out, _ = run_cli(capsys, "action", "owner", "soc-3", "--add", str(dan.id))
    assert (code, out) == (0, "SOC-3: Dan added; owners: Dan\n")
    code, out, _ = run_cli(capsys, "action", "owner", "SOC-3", "--add", str(cara.id))
    assert (code, out) == (0, "SOC-3: Cara added; owners: Cara, Dan\n")
    assert owners(db, "SOC-3") == [dan.id, cara.id]
    code, out, _ = run_cli(capsys, "action", "owner", "SOC-3", "--add", str(cara.id))
    assert (code, out) == (0, "SOC-3: Cara already owns it\n")
    code, out, _ = run_cli(capsys, "action", "owner", "SOC-3", "--remove", str(dan.id))
    assert (code, out) == (0, "SOC-3: Dan removed; owners: Cara\n")
    changes = db.call(
        lambda s: [
            (e.entity, e.change, e.before, e.after, e.actor)
            for e in s.exec(
                select(AuditEntry).where(AuditEntry.entity == "action").order_by(col(AuditEntry.id))
            ).all()
            if e.after and "owner_member_ids" in e.after
        ]
    )
    assert changes == [
        (
            "action",
            "updated",
            {"owner_member_ids": []},
            {"owner_member_ids": [dan.id]},
            "command line",
        ),
        (
            "action",
            "updated",
            {"owner_member_ids": [dan.id]},
            {"owner_member_ids": [dan.id, cara.id]},
            "command line",
        ),
        (
            "action",
            "updated",
            {"owner_member_ids": [dan.id, cara.id]},
            {"owner_member_ids": [cara.id]},
            "command line",
        ),
    ]


def test_the_command_line_refuses_bad_owners_and_stores_nothing(
    env: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    db: Database,
    people: dict[str, MemberView],
) -> None:
    observer = people["observer"]
    code, _, err = run_cli(capsys, "action", "owner", "SOC-3", "--add", str(observer.id))
    assert code == 2
    assert "Olu is a observer member and may not update actions" in err
    code, _, err = run_cli(capsys, "action", "owner", "SOC-3", "--add", "999")
    assert (code, "no active member with id 999" in err) == (2, True)
    code, _, err = run_cli(capsys, "action", "owner", "SOC-77", "--add", str(observer.id))
    assert (code, "no action or measure SOC-77" in err) == (2, True)
    code, _, err = run_cli(capsys, "action", "owner", "SOC-3", "--remove", str(observer.id))
    assert (code, f"member {observer.id} does not own SOC-3" in err) == (2, True)
    assert owners(db, "SOC-3") == []


# --- chat: the coordinator links owners; any owner updates-----------------------------------------


async def test_the_coordinator_links_owners_in_chat_and_each_may_update(
    bot: Harness, db: Database, people: dict[str, MemberView], cara: MemberView
) -> None:
    coordinator = PEOPLE["coordinator"].user
    reply = await said(bot, coordinator, f"/owners soc-3 add {cara.id}")
    assert reply.startswith("✅ SOC-3: Cara added; owners: Cara. The change is in the audit trail.")
    assert f"{cara.id}. Cara, partner, North Northamptonshire Council" in reply
    assert "Posts named in the plan: #Citadel project coordinator\n" in reply
    # Cara is a council partner; SOC-3 is led by the police: as its owner she may update it.
    stored = await said(bot, CARA, "/update SOC-3 green Referral routes agreed with EMAS")
    assert stored.startswith("Stored:\nSOC-3 Agree #Citadel referral routes")
    assert "🟢 on track" in stored
    # An action she does not own, of another organisation, is still refused.
    refused = await said(bot, CARA, "/update SOC-1 green note")
    assert "SOC-1 is led by Northants Police. Partners can update only" in refused
    # In the guided update her list holds the action she owns, beside her organisation's.
    [picker] = await bot.send(CARA, "/update")
    assert any("SOC-3" in label for label, _ in bot.emulator.buttons(picker))
    await bot.send(CARA, "/cancel")
    # /my lists it too.
    assert "SOC-3" in await said(bot, CARA, "/my")
    removed = await said(bot, coordinator, f"/owners SOC-3 remove {cara.id}")
    assert "No member owns it: reminders go to its lead organisation's partners." in removed


async def test_owners_in_chat_refuses_bad_input(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    coordinator = PEOPLE["coordinator"].user
    observer = people["observer"]
    assert (await said(bot, coordinator, "/owners SOC-3 add Dan")).startswith(
        "⚠️ 'Dan' is not a member id"
    )
    refused = await said(bot, coordinator, f"/owners SOC-3 add {observer.id}")
    assert "may not update actions" in refused and "Nothing was changed." in refused
    assert "no action or measure SOC-99" in await said(bot, coordinator, "/owners SOC-99")
    assert "/owners REF add ID" in await said(bot, coordinator, "/owners SOC-3 give 4")
    assert owners(db, "SOC-3") == []
    partner = await said(bot, PEOPLE["police"].user, f"/owners SOC-3 add {observer.id}")
    assert "Sorry, /owners isn't available to a" in partner


# --- reminders go to every owner-------------------------------------------------------------------


async def test_reminders_go_to_every_owner(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    cara: MemberView,
    pat: MemberView,
) -> None:
    for member in (people["police"], cara):
        db.call(add_member_as_owner, ref="SOC-3", member_id=member.id, at=clock())
    # SOC-3 is due on Sunday 31 October 2021: its 7-day reminder goes on Monday 25th, 08:00.
    set_clock(clock, "2021-10-25T08:00")
    await tick(app)
    due = "⏳ <b>SOC-3 is due in 6 days"
    assert [t.split("</b>")[0] for t in texts(emulator, "police") if "SOC-3 is" in t] == [due]
    cara_texts = [m.text for m in emulator.messages(CARA.id)]
    assert [t.split("</b>")[0] for t in cara_texts if "SOC-3 is" in t] == [due]
    # Pat is a police partner but not an owner: owned actions go to their owners alone.
    assert not [m for m in emulator.messages(PAT.id) if "SOC-3 is" in m.text]


def add_member_as_owner(session: object, *, ref: str, member_id: int, at: object) -> str:
    from csp_bot.models.owners import add_owner

    return add_owner(session, ref=ref, member_id=member_id, at=at, actor=CLI)  # type: ignore[arg-type]


# --- away, with a deputy ------------------------------------------------------------------------


async def test_a_deputy_covers_while_a_member_is_away_and_the_member_hears_of_it(
    app: CspApplication,
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    cara: MemberView,
    pat: MemberView,
) -> None:
    dan = PEOPLE["police"].user
    # Dan owns SOC-3 and, though it is the council's, ASB-1 too.
    for ref in ("SOC-3", "ASB-1"):
        db.call(add_member_as_owner, ref=ref, member_id=people["police"].id, at=clock())
    set_clock(clock, "2021-10-20T10:00")
    [question] = await bot.send(dan, "/away 14 days")
    assert question.text.startswith("<b>Away</b> (2 of 2)")
    assert [label for label, _ in bot.emulator.buttons(question)] == ["Pat", "Cancel"]
    await bot.press(dan, question, tap(bot, question, "Pat"))
    summary = now_shown(bot, question)
    assert summary.plain_text.startswith("Away for 14 days, until Wed 3 Nov 2021, 10:00.\n")
    saved = await bot.press(dan, summary, tap(bot, summary, "💾 Save"))
    assert saved[-1].text.startswith(
        "🏖 Saved: you are away until Wed 3 Nov 2021, 10:00, and Pat covers for you."
    )
    [absence] = absences(db)
    assert (absence.member_id, absence.deputy_member_id) == (people["police"].id, pat.id)
    audited = db.call(
        lambda s: s.exec(select(AuditEntry).where(AuditEntry.entity == "absence")).all()
    )
    assert [(e.change, e.actor) for e in audited] == [("created", f"member {people['police'].id}")]
    assert "🏖 You are away until Wed 3 Nov 2021, 10:00: Pat covers for you" in await said(
        bot, dan, "/my"
    )
    assert "You are covering for Dan" in await said(bot, PAT, "/my")

    # While Dan is away, SOC-3's 7-day reminder goes to Pat, not to him.
    set_clock(clock, "2021-10-25T08:00")
    await tick(app)
    due = "⏳ <b>SOC-3 is due in 6 days"
    assert not [t for t in texts(emulator, "police") if "SOC-3 is" in t]
    assert [m.text.split("</b>")[0] for m in emulator.messages(PAT.id) if "SOC-3 is" in m.text] == [
        due
    ]
    # Pat may update ASB-1, the council's action that Dan owns; not another council action.
    covered = await said(bot, PAT, "/update ASB-1 green Community triggers reviewed")
    assert covered.startswith("Stored:\nASB-1 ")
    assert "Partners can update only" in await said(bot, PAT, "/update ASB-2 green note")

    # Dan comes back early: his reminders come to him again, and he hears what Pat did.
    set_clock(clock, "2021-10-27T09:00")
    back = await said(bot, dan, "/back")
    assert back == (
        "Welcome back: your reminders come to you again. Pat covered for you from "
        "Wed 20 Oct 2021 and updated ASB-1."
    )
    my = await said(bot, dan, "/my")
    assert my.startswith(
        "While you were away (Wed 20 Oct 2021 to Wed 27 Oct 2021), Pat covered for you and "
        "updated ASB-1."
    )
    assert "ASB-1" in my.split("your actions")[1]  # his own list holds the action he owns
    assert "Partners can update only" in await said(bot, PAT, "/update ASB-1 amber note")
    # SOC-3's 1-day reminder (Saturday's, pulled to Friday 19:59) goes to Dan again.
    set_clock(clock, "2021-10-29T19:59")
    await tick(app)
    assert [t.split("</b>")[0] for t in texts(emulator, "police") if "SOC-3 is" in t] == [
        "⏳ <b>SOC-3 is due in 2 days"
    ]
    assert "You are not away" in await said(bot, dan, "/back")


async def test_a_deputy_gets_the_absent_member_s_meeting_reminders(
    app: CspApplication,
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    from tests.reminder_helpers import schedule

    sarah = people["chair"]
    db.call(
        start_absence,
        member_id=people["coordinator"].id,
        deputy_id=sarah.id,
        days=30,
        at=clock(),
    )
    schedule(db, clock, "2021-06-24T10:00")
    set_clock(clock, "2021-06-17T10:00")
    await tick(app)
    meeting = [t for t in texts(emulator, "chair") if t.startswith("📅")]
    assert len(meeting) == 1  # Sarah's own, which is also Mike's: once
    assert not [t for t in texts(emulator, "coordinator") if t.startswith("📅")]


# --- bad input: a clear message, and nothing stored------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("/away soon", "'soon' is not a number of days: write it like 14 or 14 days."),
        ("/away 400 days", "An absence can be at most a year (365 days); yours is 400."),
        ("/away 60 weeks", "An absence can be at most a year (365 days); yours is 420."),
        ("/away 0", "An absence is at least one day."),
        ("/away ١٤", "'١٤' is not a number of days: write it like 14 or 14 days."),
    ],
)
async def test_a_bad_length_of_absence_is_refused(
    bot: Harness,
    db: Database,
    people: dict[str, MemberView],
    pat: MemberView,
    typed: str,
    message: str,
) -> None:
    assert await said(bot, PEOPLE["police"].user, typed) == f"{message} Nothing was stored."
    assert absences(db) == []


async def test_a_typed_length_that_is_wrong_is_asked_again(
    bot: Harness, db: Database, people: dict[str, MemberView], pat: MemberView
) -> None:
    dan = PEOPLE["police"].user
    [question] = await bot.send(dan, "/away")
    assert question.text.startswith("<b>Away</b> (1 of 2)")
    assert [label for label, _ in bot.emulator.buttons(question)][:3] == [
        "7 days",
        "14 days",
        "28 days",
    ]
    assert await said(bot, dan, "two weeks") == (
        "⚠️ 'two weeks' is not a number of days: write it like 14 or 14 days.\n"
        "Please type it again, or send /cancel."
    )
    assert (await said(bot, dan, "366")).startswith(
        "⚠️ An absence can be at most a year (365 days); yours is 366."
    )
    [deputy] = await bot.send(dan, "2 weeks")
    assert deputy.text.startswith("<b>Away</b> (2 of 2)")
    assert (await said(bot, dan, "Sarah")).startswith(
        "⚠️ 'Sarah' is not an active member of Northants Police: your deputy must be a colleague."
    )
    assert (await said(bot, dan, "Dan")).startswith(
        "⚠️ You cannot cover for yourself: choose someone else."
    )
    await bot.send(dan, "/cancel")
    assert absences(db) == []


async def test_no_colleague_means_no_deputy(
    bot: Harness, db: Database, people: dict[str, MemberView]
) -> None:
    reply = await said(bot, PEOPLE["police"].user, "/away 14")
    assert reply.startswith("No one else in Northants Police is a member of the bot")
    assert absences(db) == []


def test_the_domain_refuses_a_deputy_outside_the_organisation_or_themselves(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    dan, sarah = people["police"], people["chair"]
    with pytest.raises(DomainError, match="Sarah is not in your organisation"):
        db.call(start_absence, member_id=dan.id, deputy_id=sarah.id, days=14, at=clock())
    with pytest.raises(DomainError, match="You cannot cover for yourself"):
        db.call(start_absence, member_id=dan.id, deputy_id=dan.id, days=14, at=clock())
    with pytest.raises(DomainError, match="at most a year"):
        db.call(
            start_absence,
            member_id=sarah.id,
            deputy_id=people["coordinator"].id,
            days=366,
            at=clock(),
        )
    assert absences(db) == []


# --- the statutory calendar------------------------------------------------------------------------


def with_calendar(nation: str) -> str:
    return EXAMPLE.read_text() + f"\nstatutory_calendar: {nation}\n"


STATUTORY_ENGLAND = [
    ("Domestic abuse local partnership board annual report", date(2021, 7, 31)),
    ("Partnership plan refresh", date(2022, 3, 31)),
    ("Partnership plan sent to the Police and Crime Commissioner", date(2021, 4, 30)),
    ("Public consultation meeting", date(2021, 10, 31)),
    ("Serious violence strategy review", date(2022, 1, 31)),
    ("Strategic assessment", date(2021, 12, 31)),
]


def statutory(db: Database) -> list[tuple[str, date, str]]:
    titles = {title for title, _ in STATUTORY_ENGLAND} | {"VAWDASV local strategy review"}
    rows = db.call(lambda s: s.exec(select(Deadline).order_by(col(Deadline.title))).all())
    return [(row.title, row.due_on, row.description) for row in rows if row.title in titles]


def test_the_calendar_adds_its_deadlines_with_their_sources(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    db.call(import_plan, plan=parse_plan(with_calendar("england")), at=clock())
    rows = statutory(db)
    assert [(title, due) for title, due, _ in rows] == STATUTORY_ENGLAND
    sources = {title: text.split("Source: ")[1] for title, _, text in rows}
    assert sources["Strategic assessment"] == (
        "Crime and Disorder (Formulation and Implementation of Strategy) Regulations 2007 "
        "(SI 2007/1830)."
    )
    assert sources["Partnership plan sent to the Police and Crime Commissioner"] == (
        "Crime and Disorder (Formulation and Implementation of Strategy) Regulations 2007 "
        "(SI 2007/1830); Police Reform and Social Responsibility Act 2011, s.10."
    )
    assert sources["Domestic abuse local partnership board annual report"] == (
        "Domestic Abuse Act 2021, Part 4 (England only)."
    )
    assert sources["Serious violence strategy review"] == (
        "Police, Crime, Sentencing and Courts Act 2022, Part 2 (serious violence duty)."
    )
    # Importing again changes nothing.
    again = db.call(import_plan, plan=parse_plan(with_calendar("england")), at=clock())
    assert not again.changed


def test_the_welsh_calendar_cites_the_welsh_regulations(
    db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    dates = StatutoryDates(strategic_assessment=MonthDay(11, 30))
    db.call(import_plan, plan=parse_plan(with_calendar("Wales")), at=clock(), statutory=dates)
    rows = {title: (due, text) for title, due, text in statutory(db)}
    assert "Domestic abuse local partnership board annual report" not in rows
    due, text = rows["Strategic assessment"]
    assert due == date(2021, 11, 30)  # the setting's date
    assert text.endswith(
        "Source: Crime and Disorder (Formulation and Implementation of Strategy) (Wales) "
        "Regulations 2007 (SI 2007/3076)."
    )
    assert rows["VAWDASV local strategy review"][1].endswith(
        "Source: Violence against Women, Domestic Abuse and Sexual Violence (Wales) Act 2015."
    )


def test_a_bad_calendar_is_refused() -> None:
    with pytest.raises(PlanError) as refused:
        parse_plan(with_calendar("scotland"), source="plan.yaml")
    assert "statutory_calendar: expected one of england, wales, got 'scotland'" in str(
        refused.value
    )
    clash = with_calendar("england").replace(
        "title: Partner contributions confirmed", "title: Strategic assessment"
    )
    with pytest.raises(PlanError) as refused:
        parse_plan(clash, source="plan.yaml")
    assert "'Strategic assessment' is a deadline of the statutory calendar" in str(refused.value)


def test_a_statutory_date_setting_must_be_a_day_of_the_year(
    env: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CSPBOT_STATUTORY_ASSESSMENT", "02-30")
    code, _, err = run_cli(capsys, "plan", "import", str(EXAMPLE))
    assert code == 2
    assert "CSPBOT_STATUTORY_ASSESSMENT is invalid: not a day of the year: '02-30'" in err


async def test_the_calendar_s_deadlines_are_listed_and_reminded(
    app: CspApplication,
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
) -> None:
    db.call(import_plan, plan=parse_plan(with_calendar("england")), at=clock())
    listed = await bot.send(PEOPLE["police"].user, "/deadlines")
    text = "\n".join(message.plain_text for message in listed)
    assert "⭐ Domestic abuse local partnership board annual report\nSat 31 Jul 2021" in text
    assert "Source: Domestic Abuse Act 2021, Part 4 (England only)." in text
    # The strategic assessment, due Friday 31 December 2021: 30 days before is 1 December.
    set_clock(clock, "2021-12-01T08:59")
    await tick(app)
    assert not [
        t for t in texts(emulator, "police") if t.startswith("⏰ <b>Deadline in 30 days: S")
    ]
    set_clock(clock, "2021-12-01T09:00")
    await tick(app)
    [reminder] = [
        t for t in texts(emulator, "police") if t.startswith("⏰ <b>Deadline in 30 days: S")
    ]
    assert reminder.startswith(
        "⏰ <b>Deadline in 30 days: Strategic assessment</b>\nDue Fri 31 Dec 2021 (every year)\n"
        "The strategy group prepares the year&#39;s strategic assessment"
    )
    assert "Source: Crime and Disorder (Formulation and Implementation of Strategy)" in reminder
    # EMAS is a wider partner, not a responsible one: the observer is not reminded.
    assert not [t for t in texts(emulator, "observer") if "Strategic assessment" in t]


async def test_a_deputy_is_asked_for_the_returns_the_absent_member_owes(
    app: CspApplication,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    pat: MemberView,
) -> None:
    from tests.reminder_helpers import schedule

    dan = people["police"]
    db.call(add_member_as_owner, ref="ASB-2", member_id=dan.id, at=clock())
    db.call(start_absence, member_id=dan.id, deputy_id=pat.id, days=14, at=clock())
    schedule(db, clock, "2021-06-24T10:00")
    set_clock(clock, "2021-06-14T10:00")
    await tick(app)
    [request] = [m.text for m in emulator.messages(PAT.id) if m.text.startswith("📝")]
    assert request.startswith("📝 <b>Updates wanted for the board meeting in 10 days</b>")
    # The police actions, and the council's ASB-2 that Dan owns.
    assert "<b>SOC-1</b>" in request and "<b>ASB-2</b>" in request
    assert not [t for t in texts(emulator, "police") if t.startswith("📝")]


# --- a measure's owners ----------------------------------------------------------------------


async def test_a_measures_owner_is_chased_for_its_figure_and_may_send_it(
    app: CspApplication,
    bot: Harness,
    db: Database,
    clock: FakeClock,
    emulator: BotApiEmulator,
    people: dict[str, MemberView],
    cara: MemberView,
) -> None:
    coordinator = PEOPLE["coordinator"].user
    listed = await said(bot, coordinator, f"/owners asb-m1 add {cara.id}")
    assert listed.startswith(
        "✅ ASB-M1: Cara added; owners: Cara. The change is in the audit trail."
    )
    assert "Each owner is reminded about it and may send its figures." in listed
    # ASB-M1 is supplied by the police; Cara, a council partner, owns it now.
    set_clock(clock, "2021-07-14T09:00")
    await tick(app)
    # Hers as its owner, and her own council's ASB-M2 as a partner there.
    figures = [t for t in (m.text for m in emulator.messages(CARA.id)) if t.startswith("📏")]
    assert sorted(t.split("</b>")[0] for t in figures) == [
        "📏 <b>Figure due: ASB-M1",
        "📏 <b>Figure due: ASB-M2",
    ]
    assert not [t for t in texts(emulator, "police") if "Figure due: ASB-M1" in t]
    stored = await said(bot, CARA, "/figure ASB-M1 2021-Q1 430")
    assert stored.startswith("📈 Stored")
    refused = await said(bot, CARA, "/figure HATE-M1 2021-Q1 12")
    assert "HATE-M1 is supplied by Northants Police" in refused
    removed = await said(bot, coordinator, f"/owners ASB-M1 remove {cara.id}")
    assert "No member owns it: reminders go to the supplier's partners." in removed
    entries = db.call(
        lambda s: s.exec(
            select(AuditEntry).where(AuditEntry.entity == "measure").order_by(col(AuditEntry.id))
        ).all()
    )
    assert [(e.before, e.after) for e in entries if e.after and "owner_member_ids" in e.after] == [
        ({"owner_member_ids": []}, {"owner_member_ids": [cara.id]}),
        ({"owner_member_ids": [cara.id]}, {"owner_member_ids": []}),
    ]
