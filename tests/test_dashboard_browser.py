"""The dashboard in a real browser: Debian's Chromium, headless, driven through its
chromedriver (Selenium), opening `/app/` the way Telegram opens a Mini App (launch
parameters in the URL's fragment), at a phone's 360 px width. axe-core (vendored from npm,
`tests/vendor/axe-core`) checks each page for serious and critical accessibility problems.

One browser serves the whole module; each test has its own database and web server.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import uvicorn

from csp_bot.bot.emulator import BotApiEmulator
from csp_bot.bot.intake import Intake
from csp_bot.bot.webhook import web_app
from csp_bot.handlers.context import CspApplication
from csp_bot.handlers.miniapp_auth import sign_init_data
from csp_bot.models.clock import FakeClock
from csp_bot.models.db import Database
from csp_bot.models.membership import MemberView
from tests.chromium import chromium_path
from tests.harness import OUTSIDER, PEOPLE, Harness
from tests.measure_helpers import send_figures

CHROMIUM = chromium_path()
CHROMEDRIVER = shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # the dev extras not installed
    webdriver = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None or webdriver is None,
        reason="the dashboard's browser tests need Chromium and its driver (Debian: apt-get "
        "install chromium chromium-driver) and selenium (the dev extras): skipped",
    ),
    # What the browser shows is the same on either database: tests/test_dashboard.py runs
    # the same routes on both.
    pytest.mark.sqlite_only,
]
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
WIDTH = 360
WAIT_SECONDS = 30  # a busy machine; the waits end as soon as the page is there
LIGHT = {"bg_color": "#ffffff", "text_color": "#000000", "button_color": "#2481cc"}
DARK = {"bg_color": "#17212b", "text_color": "#f5f5f5", "button_color": "#5288c1"}
# axe-core over the page as it stands: the serious and critical violations, by rule.
AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations'], runOnly: {type: 'tag',
  values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})
.then(result => done(
  result.violations.filter(v => ['serious', 'critical'].includes(v.impact))
    .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))));
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One headless Chromium for the module, a phone's width."""
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={WIDTH},800")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_script_timeout(WAIT_SECONDS)
    # A window is never narrower than Chromium's minimum (500 px): the viewport is set as a
    # phone's, as DevTools' device mode does.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": 800, "deviceScaleFactor": 1, "mobile": True},
    )
    yield driver
    driver.quit()


@pytest.fixture
def server(app: CspApplication) -> Iterator[str]:
    """The bot's web server on a loopback port of its own, in a thread of its own (the
    browser's calls block this one); its base URL."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    # Listening before uvicorn starts: the browser's first request waits in the backlog
    # instead of being refused while a busy machine is still starting the server.
    listening.listen()
    port = listening.getsockname()[1]
    config = uvicorn.Config(
        web_app(Intake(app), webhook_path=None, secret=None),
        log_level="warning",
        lifespan="off",
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(running.serve(sockets=[listening])))
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=WAIT_SECONDS)
        listening.close()


class Page:
    """The dashboard as one person sees it in the browser."""

    opened = 0

    def __init__(self, browser: WebDriver, base: str) -> None:
        self.browser = browser
        self.base = base

    def open(self, init_data: str | None, *, view: str = "overview", theme: Any = LIGHT) -> None:
        """Open the dashboard as Telegram does; each time a new page load (its own query)."""
        Page.opened += 1
        launch = {"tgWebAppVersion": "8.0", "tgWebAppPlatform": "android"}
        if init_data is not None:
            launch["tgWebAppData"] = init_data
        else:  # a new tab: nothing kept from an earlier launch
            self.browser.execute_script("try { sessionStorage.clear(); } catch (e) {}")
        launch["tgWebAppThemeParams"] = json.dumps(theme)
        fragment = "&".join(f"{key}={quote(value, safe='')}" for key, value in launch.items())
        self.browser.get(f"{self.base}/app/?v={view}&load={Page.opened}#{fragment}")
        self.loaded()

    def loaded(self) -> None:
        """Wait for the view the page asked for (the main region holds a heading)."""
        WebDriverWait(self.browser, WAIT_SECONDS).until(
            lambda driver: driver.execute_script(
                "const m = document.getElementById('view');"
                "return !m.hasAttribute('aria-busy') && !!m.querySelector('h1')"
                " && m.dataset.status;"
            )
        )

    @property
    def status(self) -> int:
        return int(
            self.browser.execute_script("return document.getElementById('view').dataset.status")
        )

    @property
    def text(self) -> str:
        return str(self.browser.find_element(By.ID, "view").text)

    def click(self, selector: str, *, by_keyboard: bool = False) -> None:
        """Activate the element (with the mouse, or focused and Enter pressed) and wait for
        the view it opens."""
        before = self.browser.execute_script("return document.getElementById('view').innerHTML")
        element = self.browser.find_element(By.CSS_SELECTOR, selector)
        if by_keyboard:
            element.send_keys(Keys.ENTER)
        else:
            element.click()
        WebDriverWait(self.browser, WAIT_SECONDS).until(
            lambda driver: driver.execute_script(
                "return document.getElementById('view').innerHTML !== arguments[0]", before
            )
        )
        self.loaded()

    def accessibility_problems(self) -> list[str]:
        if not self.browser.execute_script("return !!window.axe"):
            self.browser.execute_script(AXE.read_text())
        return list(self.browser.execute_async_script(AXE_RUN))

    def width(self) -> tuple[int, int]:
        """The viewport's width, and the page's (wider when it scrolls sideways)."""
        return tuple(
            self.browser.execute_script(
                "const root = document.documentElement;return [root.clientWidth, root.scrollWidth];"
            )
        )  # type: ignore[return-value]


def launch_data(emulator: BotApiEmulator, clock: FakeClock, who: str, *, age: float = 0) -> str:
    user = OUTSIDER if who == "outsider" else PEOPLE[who].user
    return sign_init_data(
        bot_token=emulator.token,
        telegram_id=user.id,
        first_name=user.first_name,
        at=clock() - timedelta(hours=age),
    )


async def test_each_role_sees_what_it_may_and_each_page_passes_axe(
    browser: WebDriver,
    server: str,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    page = Page(browser, server)
    page.open(launch_data(emulator, clock, "police"))
    assert page.status == 200
    assert "Signed in as Dan, partner, Northants Police" in page.text
    assert "SOC: Serious and organised crime" in page.text
    assert "Exceptions" not in page.text  # no board views for a partner
    assert browser.find_elements(By.CSS_SELECTOR, ".chart svg rect"), "the chart is drawn"
    assert page.width() == (WIDTH, WIDTH)
    assert page.accessibility_problems() == []

    page.open(launch_data(emulator, clock, "police"), view="board/exceptions")
    assert page.status == 403
    assert "The board views are for the chair" in page.text

    page.open(launch_data(emulator, clock, "observer"))
    assert "Signed in as Olu, observer" in page.text
    assert "Exceptions" not in page.text

    page.open(launch_data(emulator, clock, "chair"))
    assert "Signed in as Sarah, board chair" in page.text
    page.click("a[data-view='board/exceptions']")
    assert page.status == 200
    assert page.width() == (WIDTH, WIDTH)
    assert "Off track:" in page.text and "At risk:" in page.text
    assert page.accessibility_problems() == []
    for view in ("funding", "returns"):
        page.click(f"a[data-view='board/{view}']")
        assert page.status == 200
        assert page.width() == (WIDTH, WIDTH)
        assert page.accessibility_problems() == []
    assert "Partner returns" in page.text


async def test_a_partner_drills_down_and_updates_and_the_chat_shows_it(
    browser: WebDriver,
    server: str,
    bot: Harness,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    page = Page(browser, server)
    page.open(launch_data(emulator, clock, "police"))
    page.click("a[data-view='priority/SOC']", by_keyboard=True)
    assert "SOC-1" in page.text
    assert page.accessibility_problems() == []
    page.click("a[data-view='action/SOC-1']", by_keyboard=True)
    assert "History" in page.text and "Lead organisation" in page.text
    assert page.accessibility_problems() == []
    page.click("a[data-view='action/SOC-1/update']")
    assert "Update SOC-1" in page.text
    assert page.width() == (WIDTH, WIDTH)
    assert not browser.find_element(By.ID, "u-mitigation").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "label[for='u-status-red']").click()
    assert browser.find_element(By.ID, "u-mitigation").is_displayed()
    browser.find_element(By.ID, "u-note").send_keys("Provider withdrew from the contract.")
    page.click("#store")
    assert page.status == 422
    assert "Nothing was stored. Please correct:" in page.text
    assert "The mitigation is empty." in page.text
    assert "Say whether it will recover by the due date." in page.text
    assert page.accessibility_problems() == []
    browser.find_element(By.ID, "u-mitigation").send_keys("Re-tendering with the county.")
    browser.find_element(By.CSS_SELECTOR, "label[for='u-forecast-no']").click()
    page.click("#store")
    assert page.status == 200
    assert "Stored: SOC-1 is now off track" in page.text
    reply = await bot.reply(PEOPLE["police"].user, "/action SOC-1")
    assert "Provider withdrew from the contract." in reply
    assert "Mitigation: Re-tendering with the county." in reply


async def test_bad_launch_data_shows_no_plan_data_and_the_dark_theme_renders(
    browser: WebDriver,
    server: str,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    page = Page(browser, server)
    good = launch_data(emulator, clock, "police")
    forged = sign_init_data(bot_token="1:OTHER", telegram_id=1004, first_name="Dan", at=clock())
    altered = good.replace("%22id%22%3A1004", "%22id%22%3A1002")
    expired = launch_data(emulator, clock, "police", age=25)
    for init_data in (forged, altered, expired, None):
        page.open(init_data)
        assert page.status == 401, init_data
        assert "Open the dashboard from Telegram" in page.text
        assert "SOC" not in page.text
    page.open(launch_data(emulator, clock, "outsider"))
    assert page.status == 401
    assert "For members only" in page.text

    page.open(good, theme=DARK)
    assert browser.execute_script("return document.documentElement.dataset.theme") == "dark"
    background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(23, 33, 43)"
    assert page.accessibility_problems() == []


async def test_a_measure_page_draws_its_trend_beside_its_table_in_both_themes(
    browser: WebDriver,
    server: str,
    db: Database,
    people: dict[str, MemberView],
    emulator: BotApiEmulator,
    clock: FakeClock,
) -> None:
    send_figures(db, clock, people["police"])
    page = Page(browser, server)
    page.open(launch_data(emulator, clock, "observer"), view="priority/ASB")
    page.click("a[data-view='measure/ASB-M1']", by_keyboard=True)
    assert "ASB-M1: ASB incidents reported to police" in page.text
    assert "RAG\n■ off target, beyond the tolerance of 20" in page.text
    chart = browser.find_element(By.CSS_SELECTOR, ".chart svg[role='img']")
    assert chart.get_attribute("aria-label").startswith("Trend chart of ASB-M1")
    dots = chart.find_elements(By.CSS_SELECTOR, "circle.figure-dot")
    assert [dot.get_attribute("textContent") for dot in dots] == [
        "2020/21-Q2: 470",
        "2021/22-Q1: 405",
        "2021/22-Q2: 445",
    ]
    assert chart.find_elements(By.CSS_SELECTOR, "polyline.figures")
    assert chart.find_elements(By.CSS_SELECTOR, "path.target")
    assert chart.find_elements(By.CSS_SELECTOR, "line.baseline")
    rows = browser.find_elements(By.CSS_SELECTOR, "#trend-table tbody tr")
    assert [row.text for row in rows] == [
        "2020/21-Q2 470 none ○ not rated: no target",
        "2020/21-Q4 (baseline) 450 none baseline",
        "2021/22-Q1 405 440 ● on target",
        "2021/22-Q2 445 420 ■ off target, beyond the tolerance of 20",
        "2021/22-Q3 none 410 no figure",
        "2021/22-Q4 none 400 no figure",
    ]
    assert page.width() == (WIDTH, WIDTH)
    assert page.accessibility_problems() == []
    # The dark palette on the same page (how the theme is chosen is tested above).
    browser.execute_script("document.documentElement.dataset.theme = 'dark'")
    assert page.accessibility_problems() == []
