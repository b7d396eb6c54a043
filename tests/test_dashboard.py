"""The dashboard's routes over HTTP: who is let in, what each role sees, and an update sent
from the form, stored as /update stores it (the browser tests drive the same routes)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from sqlmodel import col, select

from csp_bot.bot.emulator import BotApiEmulator
from csp_bot.bot.intake import Intake
from csp_bot.bot.settings import Settings, SettingsError, load_settings
from csp_bot.bot.webhook import web_app
from csp_bot.handlers.context import CspApplication
from csp_bot.handlers.miniapp_auth import sign_init_data
from csp_bot.models.audit import CLI
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from csp_bot.models.owners import add_owner
from csp_bot.models.tables import AuditEntry, ProgressUpdate
from tests.conftest import link
from tests.harness import OUTSIDER, PEOPLE, Harness
from tests.measure_helpers import send_figures

PUBLIC_URL = "https://csp.example.org/bot"
DASHBOARD = ("📊 Dashboard", "https://csp.example.org/bot/app/")


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The bot with a public web address, so that it offers the dashboard."""
    return Settings(
        database_url=database_url,
        telegram_token=None,
        bot_username="csp_demo_bot",
        public_url=PUBLIC_URL,
    )


@pytest.fixture
async def web(app: CspApplication) -> AsyncIterator[httpx.AsyncClient]:
    """The bot's web server, in-process."""
    transport = httpx.ASGITransport(app=web_app(Intake(app), webhook_path=None, secret=None))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as http:
        yield http


def signed(emulator: BotApiEmulator, clock: FakeClock, who: str, *, age: float = 0) -> str:
    """The launch data Telegram would give `who` (a key of PEOPLE, or "outsider")."""
    user = OUTSIDER if who == "outsider" else PEOPLE[who].user
    return sign_init_data(
        bot_token=emulator.token,
        telegram_id=user.id,
        first_name=user.first_name,
        at=clock() - timedelta(hours=age),
    )


def auth(init_data: str) -> dict[str, str]:
    return {"Authorization": f"tma {init_data}"}


def altered(init_data: str, **changes: str) -> str:
    fields = dict(parse_qsl(init_data))
    return urlencode({**fields, **changes})


# --- who is let in -----------------------------------------------------------------------


async def test_the_page_itself_holds_no_plan_data(web: httpx.AsyncClient) -> None:
    page = await web.get("/app/")
    assert page.status_code == 200
    assert '<script src="app.js" defer></script>' in page.text
    assert "SOC" not in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert (await web.get("/app/app.js")).headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "tma "},
        {"Authorization": "Bearer abc"},
        {"Authorization": "tma user=%7B%22id%22%3A1004%7D&auth_date=1623315600&hash=00ff"},
    ],
    ids=["missing", "empty", "other scheme", "forged"],
)
async def test_without_telegrams_launch_data_nothing_is_shown(
    web: httpx.AsyncClient, people: dict[str, MemberView], headers: dict[str, str]
) -> None:
    answer = await web.get("/app/api/overview", headers=headers)
    assert answer.status_code == 401
    assert "Open the dashboard from Telegram" in answer.text
    assert "SOC" not in answer.text


async def test_altered_expired_and_strangers_launch_data_get_401(
    web: httpx.AsyncClient,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    good = signed(emulator, clock, "police")
    as_chair = altered(good, user='{"id":1002,"first_name":"Sarah"}')
    later = altered(good, auth_date=str(int(clock().timestamp()) + 60))
    old = signed(emulator, clock, "police", age=24.1)
    other_bot = sign_init_data(bot_token="1:OTHER", telegram_id=1004, first_name="Dan", at=clock())
    for init_data in (as_chair, later, old, other_bot):
        answer = await web.get("/app/api/overview", headers=auth(init_data))
        assert answer.status_code == 401, init_data
        assert "SOC" not in answer.text
    stranger = await web.get("/app/api/overview", headers=auth(signed(emulator, clock, "outsider")))
    assert stranger.status_code == 401
    assert "For members only" in stranger.text
    fresh = await web.get(
        "/app/api/overview", headers=auth(signed(emulator, clock, "police", age=23.9))
    )
    assert fresh.status_code == 200


async def test_a_partner_and_an_observer_get_403_on_board_views(
    web: httpx.AsyncClient,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    for who in ("police", "observer"):
        for view in ("exceptions", "funding", "returns"):
            answer = await web.get(
                f"/app/api/board/{view}", headers=auth(signed(emulator, clock, who))
            )
            assert answer.status_code == 403
            assert "The board views are for the chair" in answer.text
    chair = await web.get("/app/api/board/funding", headers=auth(signed(emulator, clock, "chair")))
    assert chair.status_code == 200
    assert "Contributions by stream" in chair.text or "Nothing recorded" in chair.text


# --- what a member sees --------------------------------------------------------------------


async def test_the_overview_shows_each_priority_with_its_rag_and_counts(
    web: httpx.AsyncClient,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    answer = await web.get("/app/api/overview", headers=auth(signed(emulator, clock, "police")))
    assert answer.status_code == 200
    text = answer.text
    assert "Signed in as Dan, partner, Northants Police" in text
    for code in ("SOC", "DASV", "ASB"):
        assert f'data-priority="{code}"' in text
    assert "Next board meeting" in text and "Next deadline" in text
    assert '<span class="rag rag-' in text
    assert 'href="?v=board/exceptions"' not in text  # a partner has no board links
    chair = await web.get("/app/api/overview", headers=auth(signed(emulator, clock, "chair")))
    assert 'href="?v=board/exceptions"' in chair.text


async def test_a_priority_filters_and_sorts_its_actions(
    web: httpx.AsyncClient,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    headers = auth(signed(emulator, clock, "observer"))
    everything = await web.get("/app/api/priority/soc", headers=headers)
    assert everything.status_code == 200
    assert 'data-ref="SOC-1"' in everything.text
    police = await web.get(
        "/app/api/priority/SOC", params={"org": "Northants Police"}, headers=headers
    )
    assert police.status_code == 200
    assert "· Northants Police ·" in police.text
    assert "· North Northamptonshire Council ·" not in police.text
    bad = await web.get("/app/api/priority/SOC", params={"status": "purple"}, headers=headers)
    assert bad.status_code == 400
    assert "Choose a status from the list." in bad.text
    missing = await web.get("/app/api/priority/XYZ", headers=headers)
    assert missing.status_code == 404
    assert "No priority XYZ" in missing.text


# --- measures ---------------------------------------------------------------------------------

SCRIPT = '<script type="application/json">'


def text(fragment: str) -> str:
    """What a reader sees of an HTML fragment: its text, tags dropped, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def element(page: str, start: str, end: str) -> str:
    """The part of `page` from `start` to the first `end` after it."""
    begins = page.index(start)
    return page[begins : page.index(end, begins)]


async def test_the_overview_shows_each_priorities_measures_and_its_latest_figure(
    web: httpx.AsyncClient,
    db: Database,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    send_figures(db, clock, people["police"])
    page = await web.get("/app/api/overview", headers=auth(signed(emulator, clock, "observer")))
    assert page.status_code == 200
    listed = element(page.text, '<ul class="cards"', '<p class="age">Quiet:').split("<li class")
    cards = {
        code: card
        for code in ("SOC", "HATE", "ASB")
        for card in listed
        if f'data-priority="{code}"' in card
    }
    assert text(element(cards["ASB"], '<ul class="measures"', "</ul>")) == (
        "ASB-M1 ASB incidents reported to police: ■ off target, beyond the tolerance of 20"
        " · 2021/22-Q2: 445 against 420 "
        "ASB-M2 ASB cases resolved within 28 days: ● on target · 2021-09: 82% against 80%"
    )
    assert "latest figure sent Mon 11 Oct 2021 (ASB-M2, 2021-09)" in text(cards["ASB"])
    assert '<span class="rag rag-red"><span aria-hidden="true">■</span> off target' in cards["ASB"]
    assert 'href="?v=measure/ASB-M1" data-view="measure/ASB-M1"' in cards["ASB"]
    assert text(element(cards["HATE"], '<ul class="measures"', "</ul>")) == (
        "HATE-M1 Hate crimes reported: ▲ off target, within the tolerance of 5"
        " · 2021/22-Q2: 98 against 101"
    )
    assert "latest figure sent Fri 8 Oct 2021 (HATE-M1, 2021/22-Q2)" in text(cards["HATE"])
    assert text(element(cards["SOC"], '<ul class="measures"', "</ul>")) == (
        "SOC-M1 Knife crime offences recorded by police: ○ no figure yet "
        "SOC-M2 Referrals into treatment through #Citadel: ○ no figure yet"
    )
    assert "latest figure none yet" in text(cards["SOC"])


async def test_a_measure_page_shows_what_measure_does_with_its_chart_data_and_table(
    web: httpx.AsyncClient,
    db: Database,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    send_figures(db, clock, people["police"])
    headers = auth(signed(emulator, clock, "observer"))  # every member, as /measure
    page = await web.get("/app/api/measure/asb-m1", headers=headers)
    assert page.status_code == 200
    assert text(element(page.text, "<h1", "</dl>")) == (
        "ASB-M1: ASB incidents reported to police ‹ ASB "
        "Quarterly, a count, lower is better; from Northants Police. "
        "Latest 2021/22-Q2: 445, target 420 "
        "RAG ■ off target, beyond the tolerance of 20 "
        "Direction of travel "
        "↗ worse than previous period (2021/22-Q1: 405, +40) "
        "↘ better than same period last year (2020/21-Q2: 470, −25) "
        "Note more calls after the summer "
        "Sent Fri 8 Oct 2021, 10:00, Dan "
        "Baseline 2020/21-Q4: 450 "
        "Tolerance 20"
    )
    rows = element(page.text, "<tbody>", "</tbody>").split("</tr>")[:-1]
    assert [text(row) for row in rows] == [
        "2020/21-Q2 470 none ○ not rated: no target",
        "2020/21-Q4 (baseline) 450 none baseline",
        "2021/22-Q1 405 440 ● on target",
        "2021/22-Q2 445 420 ■ off target, beyond the tolerance of 20",
        "2021/22-Q3 none 410 no figure",
        "2021/22-Q4 none 400 no figure",
    ]
    chart = json.loads(element(page.text, SCRIPT, "</script>").removeprefix(SCRIPT))
    assert chart["description"] == (
        "Trend chart of ASB-M1, ASB incidents reported to police; 3 figures from 2020/21-Q2 "
        "(470) to 2021/22-Q2 (445); target for 2021/22-Q2 420; baseline 450 (2020/21-Q4); "
        "lower is better."
    )
    assert [(p["period"], p["value"]) for p in chart["figures"]] == [
        ("2020/21-Q2", 470.0),
        ("2021/22-Q1", 405.0),
        ("2021/22-Q2", 445.0),
    ]
    assert [(p["period"], p["value"]) for p in chart["targets"]] == [
        ("2021/22-Q1", 440.0),
        ("2021/22-Q2", 420.0),
        ("2021/22-Q3", 410.0),
        ("2021/22-Q4", 400.0),
    ]
    assert (chart["baseline"]["period"], chart["baseline"]["value"]) == ("2020/21-Q4", 450.0)
    assert [p["period"] for p in chart["periods"]] == [
        "2020/21-Q2",
        "2020/21-Q3",
        "2020/21-Q4",
        "2021/22-Q1",
        "2021/22-Q2",
        "2021/22-Q3",
        "2021/22-Q4",
    ]


async def test_a_measure_without_figures_and_an_unknown_one(
    web: httpx.AsyncClient,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    headers = auth(signed(emulator, clock, "police"))
    page = await web.get("/app/api/measure/DASV-M1", headers=headers)
    assert page.status_code == 200
    assert "Latest No figure yet." in text(page.text)
    assert "Baseline 2020/21-Q4: 1,450 Tolerance 40" in text(page.text)
    missing = await web.get("/app/api/measure/ASB-M3", headers=headers)
    assert missing.status_code == 404
    assert "There is no measure ASB-M3. Did you mean ASB-M2, ASB-M1, DASV-M1?" in missing.text
    stranger = await web.get(
        "/app/api/measure/ASB-M1", headers=auth(signed(emulator, clock, "outsider"))
    )
    assert stranger.status_code == 401
    assert "ASB incidents" not in stranger.text


async def test_a_priority_lists_its_measures_with_links_to_them(
    web: httpx.AsyncClient,
    db: Database,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    send_figures(db, clock, people["police"])
    page = await web.get("/app/api/priority/ASB", headers=auth(signed(emulator, clock, "board")))
    assert page.status_code == 200
    assert text(element(page.text, '<ul class="measures"', "</ul>")) == (
        "ASB-M1 ASB incidents reported to police: ■ off target, beyond the tolerance of 20"
        " · 2021/22-Q2: 445 against 420 "
        "ASB-M2 ASB cases resolved within 28 days: ● on target · 2021-09: 82% against 80%"
    )
    assert 'data-view="measure/ASB-M2"' in page.text


# --- an update from the form -----------------------------------------------------------------


async def send_form(
    web: httpx.AsyncClient, ref: str, init_data: str, **fields: str
) -> httpx.Response:
    """The update form sent as the page sends it."""
    headers = {**auth(init_data), "Content-Type": "application/x-www-form-urlencoded"}
    return await web.post(
        f"/app/api/action/{ref}/update", content=urlencode(fields), headers=headers
    )


async def test_a_partner_updates_from_the_form_and_the_chat_shows_it(
    web: httpx.AsyncClient,
    bot: Harness,
    db: Database,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    launch = signed(emulator, clock, "police")
    headers = auth(launch)
    page = await web.get("/app/api/action/SOC-1/update", headers=headers)
    assert page.status_code == 200
    assert "Update SOC-1" in page.text
    missing = await send_form(web, "SOC-1", launch, status="red", note="Slipping")
    assert missing.status_code == 422
    assert "Nothing was stored" in missing.text
    assert "The mitigation is empty." in missing.text
    assert "Say whether it will recover by the due date." in missing.text
    stored = await send_form(
        web,
        "SOC-1",
        launch,
        status="red",
        note="Provider withdrew from the contract.",
        mitigation="Re-tendering with the county.",
        forecast="no",
    )
    assert stored.status_code == 200
    assert "Stored: SOC-1 is now off track" in stored.text
    reply = await bot.reply(PEOPLE["police"].user, "/action SOC-1")
    assert "Provider withdrew from the contract." in reply
    assert "Mitigation: Re-tendering with the county." in reply
    assert "Forecast: Not expected to recover by the due date" in reply


async def test_the_same_form_sent_twice_stores_one_update(
    web: httpx.AsyncClient,
    db: Database,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    launch = signed(emulator, clock, "police")
    page = await web.get("/app/api/action/SOC-1/update", headers=auth(launch))
    key = page.text.split('name="key" value="')[1].split('"')[0]
    sent = {"status": "amber", "note": "Venue delayed.", "forecast": "yes", "key": key}
    first = await send_form(web, "SOC-1", launch, **sent)
    assert "Stored: SOC-1 is now at risk" in first.text
    again = await send_form(web, "SOC-1", launch, **sent)
    assert again.status_code == 200
    assert "Already stored: this form was sent before, and SOC-1 is at risk." in again.text
    other = await web.get("/app/api/action/SOC-1/update", headers=auth(launch))
    assert other.text.split('name="key" value="')[1].split('"')[0] != key
    notes = db.call(
        lambda s: s.exec(
            select(ProgressUpdate.note).where(ProgressUpdate.note == "Venue delayed.")
        ).all()
    )
    assert notes == ["Venue delayed."]


async def test_case_data_is_held_back_until_stored_anyway_and_audited(
    web: httpx.AsyncClient,
    db: Database,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    launch = signed(emulator, clock, "police")
    note = "Visited the family at NN16 8PR again."
    held = await send_form(web, "SOC-1", launch, status="green", note=note)
    assert held.status_code == 422
    assert "This looks like it contains a postcode." in held.text
    assert (
        db.call(lambda s: s.exec(select(ProgressUpdate).where(ProgressUpdate.note == note)).all())
        == []
    )
    digest = held.text.split('name="confirm" value="')[1].split('"')[0]
    kept = await send_form(web, "SOC-1", launch, status="green", note=note, confirm=digest)
    assert kept.status_code == 200
    entries = db.call(
        lambda s: s.exec(
            select(AuditEntry)
            .where(AuditEntry.entity == "case_data_check")
            .order_by(col(AuditEntry.id))
        ).all()
    )
    assert [entry.change for entry in entries] == ["stored anyway"]
    assert entries[0].after is not None and entries[0].after["kind"] == "a postcode"
    assert note not in str(entries[0].after)


async def test_a_partner_may_not_update_another_organisations_action(
    web: httpx.AsyncClient,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    headers = auth(signed(emulator, clock, "police"))
    answer = await web.get("/app/api/action/DASV-1/update", headers=headers)
    assert answer.status_code == 403
    assert "Partners can update only their own organisation&#39;s actions" in answer.text
    observer = await send_form(
        web, "SOC-1", signed(emulator, clock, "observer"), status="green", note="x"
    )
    assert observer.status_code == 403


async def test_an_owner_from_another_organisation_may_update_as_in_chat(
    web: httpx.AsyncClient,
    bot: Harness,
    db: Database,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    """Linked as an owner of another organisation's action, a partner may update it here
    as with /update."""
    db.call(add_owner, ref="DASV-1", member_id=people["police"].id, at=clock(), actor=CLI)
    launch = signed(emulator, clock, "police")
    page = await web.get("/app/api/action/DASV-1", headers=auth(launch))
    assert page.status_code == 200
    assert "Update this action" in page.text
    stored = await send_form(web, "DASV-1", launch, status="green", note="Checked in as its owner.")
    assert stored.status_code == 200
    assert "Stored: DASV-1 is now on track" in stored.text
    assert "Checked in as its owner." in await bot.reply(PEOPLE["police"].user, "/action DASV-1")


# --- the buttons that open it ----------------------------------------------------------------


async def test_the_menu_button_and_the_status_and_summary_buttons_open_the_dashboard(
    bot: Harness, db: Database, clock: FakeClock, people: dict[str, MemberView]
) -> None:
    assert bot.emulator.menu_button == {
        "type": "web_app",
        "text": "Dashboard",
        "web_app": {"url": "https://csp.example.org/bot/app/"},
    }
    (status,) = await bot.send(PEOPLE["police"].user, "/status")
    assert bot.emulator.buttons(status) == [DASHBOARD]
    (summary,) = await bot.send(PEOPLE["chair"].user, "/summary")
    assert bot.emulator.buttons(summary)[-1] == DASHBOARD
    link(db, clock, -500)
    (in_group,) = await bot.send(PEOPLE["chair"].user, "/status", chat_id=-500, chat_type="group")
    assert bot.emulator.buttons(in_group) == []  # Telegram takes Mini App buttons in private only


async def test_a_note_over_the_limit_is_refused_whole(
    web: httpx.AsyncClient,
    db: Database,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    launch = signed(emulator, clock, "police")
    answer = await send_form(web, "SOC-1", launch, status="green", note="x" * 1001)
    assert answer.status_code == 422
    assert "A note can be at most 1,000 characters; yours has 1,001." in answer.text
    stored = db.call(lambda s: s.exec(select(ProgressUpdate)).all())
    assert all(update.note != "x" * 1001 for update in stored)


def test_the_public_url_must_be_https_except_on_loopback() -> None:
    with pytest.raises(SettingsError, match="CSPBOT_PUBLIC_URL is invalid: Telegram opens"):
        load_settings(public_url="http://csp.example.org")
    with pytest.raises(SettingsError, match="CSPBOT_PUBLIC_URL is invalid"):
        load_settings(public_url="https://csp.example.org/#app")
    assert load_settings(public_url="http://127.0.0.1:8080").public_url == "http://127.0.0.1:8080"
    with pytest.raises(SettingsError, match="CSPBOT_APP_MAX_AGE_HOURS is invalid"):
        load_settings(app_max_age_hours=0)
