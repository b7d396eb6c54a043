"""The dashboard's routes over HTTP: who is let in, what each role sees, and an update sent
from the form, stored as /update stores it (the browser tests drive the same routes)."""

from __future__ import annotations

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
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from csp_bot.models.tables import AuditEntry, ProgressUpdate
from tests.conftest import link
from tests.harness import OUTSIDER, PEOPLE, Harness

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
