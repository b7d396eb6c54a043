"""`csp-bot demo`: the real bot, offline, with a terminal chat.

An embedded Bot API emulator listens on loopback; the bot long-polls it over HTTP exactly
as it would Telegram, with the sample plan in a fresh SQLite file. You type as a member you
choose; inline keyboards show as numbered choices. Ctrl+D (end of input) ends the demo.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

from csp_bot.bot.app import build_application
from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser, EmulatorServer, SentMessage
from csp_bot.bot.intake import Intake
from csp_bot.bot.polling import Poller
from csp_bot.bot.runner import BotRun, make_services
from csp_bot.bot.settings import Settings
from csp_bot.bot.webhook import web_app, web_server
from csp_bot.handlers.context import CspApplication
from csp_bot.handlers.jobs import dispatch_state, run_dispatcher_now
from csp_bot.handlers.miniapp_auth import sign_init_data
from csp_bot.models.audit import Actor
from csp_bot.models.clock import ShiftedClock
from csp_bot.models.db import Database
from csp_bot.models.enums import Status
from csp_bot.models.inbox import unfinished_updates
from csp_bot.models.measures import measure_codes, record_figure
from csp_bot.models.membership import add_member
from csp_bot.models.plan_import import import_plan_file
from csp_bot.models.progress import log_progress
from csp_bot.models.values import parse_period
from csp_bot.scheduler.pacing import Pacer

# The demo lives inside the sample plan's year, so due dates and "quiet" mean something.
DEMO_START = datetime(2021, 9, 15, 8, 30, tzinfo=UTC)
PLAN_LOADED = DEMO_START - timedelta(days=60)
# The sample plan ships inside the package (`examples/` is mapped to `csp_bot.examples`), so
# an installed copy finds it as well as a checkout does.
EXAMPLE_PLAN = Path(str(files("csp_bot.examples").joinpath("north-northants-csp-2021-22.yaml")))
DEMO = Actor("demo set-up")
# How long the bot may stay silent before the demo prompts again.
REPLY_WAIT_SECONDS = 5.0
SETTLE_SECONDS = 0.3
# The longest the demo waits for the bot to finish an update (the board paper takes seconds
# on a busy machine) before it prompts again anyway.
HANDLED_WAIT_SECONDS = 60.0
# The first reminder round, run as the demo starts, is given this long to end.
FIRST_ROUND_WAIT_SECONDS = 30.0
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class DemoMember:
    """Someone you can be in the demo."""

    user: EmulatedUser
    organisation: str
    role: str
    description: str


DEMO_MEMBERS = (
    DemoMember(
        EmulatedUser(501, "Dan", "Harris"),
        "Northants Police",
        "partner",
        "police partner (an action owner)",
    ),
    DemoMember(
        EmulatedUser(502, "Helen", "Morris"),
        "North Northamptonshire Council",
        "chair",
        "the CSP Board chair",
    ),
    DemoMember(
        EmulatedUser(503, "Mike", "Greenway"),
        "North Northamptonshire Council",
        "admin",
        "the coordinator",
    ),
    DemoMember(
        EmulatedUser(504, "Priya", "Shah"),
        "Probation Service",
        "board",
        "a board member (probation)",
    ),
    DemoMember(
        EmulatedUser(505, "Olu", "Adeyemi"),
        "East Midlands Ambulance Service",
        "observer",
        "an observer",
    ),
    DemoMember(EmulatedUser(506, "Visitor", None), "", "", "someone who has not joined"),
)


def run_demo(settings: Settings, *, member: str | None = None, plan: Path = EXAMPLE_PLAN) -> int:
    """Run the demo until end of input; returns the exit code."""
    with tempfile.TemporaryDirectory(prefix="csp-bot-demo-") as folder:
        log_to_file(Path(folder) / "demo.log")
        demo_settings = settings.model_copy(
            update={"database_url": f"sqlite:///{Path(folder) / 'demo.db'}"}
        )
        return asyncio.run(Demo(demo_settings, sys.stdin, sys.stdout).run(member, plan))


def log_to_file(path: Path) -> None:
    """Keep log lines (and any traceback) out of the terminal chat."""
    logging.basicConfig(filename=path, level=logging.INFO, force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)


class Demo:
    """The emulator, the bot polling it, and a terminal chat in between."""

    def __init__(
        self, settings: Settings, stdin: TextIO, stdout: TextIO, files_folder: Path | None = None
    ) -> None:
        self.settings = settings
        self.stdin = stdin
        self.stdout = stdout
        self.emulator = BotApiEmulator()
        self.me = DEMO_MEMBERS[0]
        # What each chat's messages looked like when last printed, by (chat, message).
        self.shown: dict[tuple[int, int], str] = {}
        self.answers_shown = 0
        self.clock = ShiftedClock(DEMO_START)
        self.files = files_folder or Path(tempfile.gettempdir()) / "csp-bot-demo-files"
        # The dashboard's web server, on a free loopback port chosen at start.
        self.web = socket.socket()
        self.web.bind(("127.0.0.1", 0))

    async def run(self, member: str | None, plan: Path) -> int:
        services = make_services(self.settings, clock=self.clock)
        # The demo's Telegram is the emulator on loopback, which counts no limits: a second
        # a message to one chat would only hold up the start and the replies.
        services.pacer = Pacer(per_chat=False)
        self.db = services.db
        seed(services.db, plan)
        with EmulatorServer(self.emulator) as server:
            application = build_application(
                services, token=self.emulator.token, base_url=server.base_url
            )
            try:
                async with BotRun(application, self.poll_and_serve):
                    self.say(INTRO.format(files=self.files))
                    await self.first_reminders(application)
                    self.me = await self.choose_member(member)
                    await self.chat()
            finally:
                services.db.close()
                self.web.close()
        self.say("Demo ended.")
        return 0

    async def poll_and_serve(self, intake: Intake) -> None:
        """Short long-polls, and the dashboard served beside them on loopback."""
        server = web_server(web_app(intake, webhook_path=None, secret=None), "127.0.0.1:0")
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(server.serve(sockets=[self.web]))
            tasks.create_task(poll_briskly(intake))

    def dashboard_link(self) -> str:
        """The dashboard opened as Telegram opens it for the member you are: launch data
        signed with the emulator's token, at the demo's time (valid for a day of it)."""
        port = self.web.getsockname()[1]
        launch = {
            "tgWebAppData": sign_init_data(
                bot_token=self.emulator.token,
                telegram_id=self.me.user.id,
                first_name=self.me.user.first_name,
                at=self.clock(),
            ),
            "tgWebAppVersion": "8.0",
            "tgWebAppPlatform": "web",
            "tgWebAppThemeParams": json.dumps({"bg_color": "#ffffff", "text_color": "#000000"}),
        }
        fragment = "&".join(f"{key}={quote(value, safe='')}" for key, value in launch.items())
        return f"http://127.0.0.1:{port}/app/#{fragment}"

    def show_dashboard_link(self) -> None:
        self.say(f"Dashboard, signed in as {self.me.user.full_name}: {self.dashboard_link()}")

    async def first_reminders(self, application: CspApplication) -> None:
        """Run the first reminder round now, and wait for it, so that the reminders due at
        start are there to show to whoever you become."""
        state = dispatch_state(application)
        await run_dispatcher_now(application)
        waited = 0.0
        while state is not None and state.rounds == 0 and waited < FIRST_ROUND_WAIT_SECONDS:
            await asyncio.sleep(POLL_SECONDS)
            waited += POLL_SECONDS
        await self.settle()

    async def chat(self) -> None:
        """Read lines until end of input; numbers press buttons, `:as` changes who you are."""
        self.say(f"You are {self.me.user.full_name}, {self.me.description}. Try /help.")
        self.show_dashboard_link()
        self.show_new_messages()
        while (line := await self.read(f"{self.me.user.first_name}> ")) is not None:
            if not line:
                continue
            if line.startswith(":later"):
                self.later(line.removeprefix(":later").strip())
                continue
            if line == ":app":
                self.show_dashboard_link()
                continue
            if line.startswith(":as"):
                self.me = await self.choose_member(line.removeprefix(":as").strip() or None)
                self.say(f"You are now {self.me.user.full_name}, {self.me.description}.")
                self.show_dashboard_link()
                self.show_new_messages()  # what the bot sent them meanwhile (reminders)
                continue
            await self.act(line)

    def later(self, minutes: str) -> None:
        """`:later MINUTES` moves the demo's clock on: drafts expire, reminders fall due."""
        if not minutes.isdigit():
            self.say("Type :later and a number of minutes, e.g. :later 30")
            return
        self.clock.offset += timedelta(minutes=int(minutes))
        self.say(f"The demo's clock is now {self.clock():%a %d %b %Y, %H:%M} UTC.")

    async def act(self, line: str) -> None:
        """Send the line, or press the button it numbers, and show what the bot answers."""
        since = self.emulator.events
        button = self.pick_button(line)
        if button is not None:
            message, data = button
            self.emulator.press_button(self.me.user, message.message_id, data)
        else:
            self.emulator.send_text(self.me.user, line)
        await asyncio.to_thread(self.emulator.wait_for_change, since, REPLY_WAIT_SECONDS)
        await self.until_handled()
        await self.settle()
        self.show_alerts()
        self.show_new_messages()

    def show_alerts(self) -> None:
        """What the bot answered to button presses: an alert pops up in Telegram, a notice
        shows briefly at the top; either may be all a press gets (an expired button)."""
        answers = self.emulator.callback_answers
        for answer in answers[self.answers_shown :]:
            if answer.get("text"):
                kind = "alert" if answer.get("show_alert") else "notice"
                self.say(f"bot ({kind}): {answer['text']}")
        self.answers_shown = len(answers)

    async def until_handled(self) -> None:
        """Wait until the bot has taken every update sent and finished handling it, so a slow
        reply (the board paper) is shown before the next prompt however busy the machine."""
        waited = 0.0
        while waited < HANDLED_WAIT_SECONDS and not await self.all_handled():
            await asyncio.sleep(POLL_SECONDS)
            waited += POLL_SECONDS

    async def all_handled(self) -> bool:
        # Confirmed by the poller means stored in the inbox; stored and not done means the
        # bot is still on it.
        if self.emulator.pending_updates():
            return False
        return not await self.db.run(unfinished_updates)

    async def settle(self) -> None:
        """Wait until the bot has been quiet for a moment, so multi-part replies arrive whole."""
        while True:
            since = self.emulator.events
            now = await asyncio.to_thread(self.emulator.wait_for_change, since, SETTLE_SECONDS)
            if now == since:
                return

    def pick_button(self, line: str) -> tuple[SentMessage, str] | None:
        """The button numbered `line` on the latest keyboard, if the line is such a number."""
        if not line.isdigit():
            return None
        keyboard = self.latest_keyboard()
        if keyboard is None:
            return None
        buttons = self.emulator.buttons(keyboard)
        index = int(line) - 1
        if not 0 <= index < len(buttons):
            return None
        return keyboard, buttons[index][1]

    def latest_keyboard(self) -> SentMessage | None:
        for message in reversed(self.emulator.messages(self.me.user.id)):
            if message.reply_markup and self.emulator.buttons(message):
                return message
        return None

    def show_new_messages(self) -> None:
        """Print messages the bot sent or edited since they were last shown (files are saved
        and their path printed)."""
        for message in self.emulator.messages(self.me.user.id):
            key = (message.chat_id, message.message_id)
            rendered = render(message, self.emulator.buttons(message), self.save(message))
            if self.shown.get(key) != rendered:
                edited = key in self.shown
                self.say(("(edited) " if edited else "") + rendered)
                self.shown[key] = rendered

    def save(self, message: SentMessage) -> Path | None:
        """A file the bot sent, written to the demo's files folder (where it can be opened)."""
        if message.content is None or message.filename is None:
            return None
        path = self.files / Path(message.filename).name
        if not path.exists() or path.read_bytes() != message.content:
            self.files.mkdir(parents=True, exist_ok=True)
            path.write_bytes(message.content)
        return path

    async def choose_member(self, wanted: str | None) -> DemoMember:
        """Pick who to be, by number or name; asks when not given."""
        for number, choice in enumerate(DEMO_MEMBERS, start=1):
            self.say(f"  {number}. {choice.user.full_name}: {choice.description}")
        while True:
            answer = wanted or await self.read("Who are you? (number) ")
            wanted = None
            if answer is None:
                return self.me
            chosen = find_demo_member(answer)
            if chosen is not None:
                return chosen
            self.say("Please type one of the numbers above.")

    async def read(self, prompt: str) -> str | None:
        """One line from the terminal, or None at end of input (Ctrl+D)."""
        self.stdout.write(prompt)
        self.stdout.flush()
        line = await asyncio.to_thread(self.stdin.readline)
        if not line:
            self.stdout.write("\n")
            return None
        return line.strip()

    def say(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()


INTRO = """CSP Bot demo: the real bot, running against a Telegram emulator on this machine,
with the North Northamptonshire CSP plan 2021-22. Nothing leaves this computer.
The demo's clock starts on Wednesday 15 September 2021, inside the plan's year.
Type messages and commands as the member you choose. Buttons show as [1], [2], ...:
type the number to press one (on the latest message that has buttons). Type :as to
become someone else: you then see what the bot sent them meanwhile. Files the bot sends
are saved in {files}. The dashboard (the Mini App) is served on this machine: open the
link printed for you in a browser; :app prints it again. Ctrl+D ends the demo.
"""


def find_demo_member(answer: str) -> DemoMember | None:
    if answer.isdigit() and 1 <= int(answer) <= len(DEMO_MEMBERS):
        return DEMO_MEMBERS[int(answer) - 1]
    lowered = answer.lower()
    return next((m for m in DEMO_MEMBERS if lowered in m.user.full_name.lower()), None)


@dataclass(frozen=True)
class SeedUpdate:
    """A progress update the demo starts with, so /action and /history have something."""

    ref: str
    author: int
    status: Status
    note: str
    on: datetime
    mitigation: str | None = None
    forecast: str | None = None


SEED_UPDATES = (
    SeedUpdate(
        "SOC-1",
        501,
        Status.GREEN,
        "Treatment provider on site two days a week; 14 referrals since June.",
        datetime(2021, 8, 20, 10, 5, tzinfo=UTC),
    ),
    SeedUpdate(
        "SOC-3",
        501,
        Status.RED,
        "EMAS data-sharing agreement still not signed, so no referrals from ambulance crews.",
        datetime(2021, 9, 1, 15, 40, tzinfo=UTC),
        mitigation="Escalated to the EMAS head of safeguarding; meeting booked for 20 September.",
        forecast="Not expected to recover by the due date",
    ),
    SeedUpdate(
        "DASV-1",
        502,
        Status.AMBER,
        "Accommodation pathway proposals drafted; waiting for sign-off of the county allocation.",
        datetime(2021, 8, 25, 9, 15, tzinfo=UTC),
        forecast="Expected to recover by the due date",
    ),
)


# Figures for some of the sample plan's measures (illustrative, as its targets are):
# (measure, period, value, sent by, when).
SEED_FIGURES = (
    ("ASB-M1", "2020/21-Q1", 470, 501, datetime(2021, 7, 14, 10, 0, tzinfo=UTC)),
    ("ASB-M1", "2021/22-Q1", 436, 501, datetime(2021, 7, 14, 10, 5, tzinfo=UTC)),
    ("HATE-M1", "2021/22-Q1", 92, 501, datetime(2021, 7, 14, 10, 10, tzinfo=UTC)),
    ("ASB-M2", "2021-07", 76, 503, datetime(2021, 8, 9, 9, 30, tzinfo=UTC)),
    ("ASB-M2", "2021-08", 73, 503, datetime(2021, 9, 8, 9, 30, tzinfo=UTC)),
)


def seed(db: Database, plan: Path) -> None:
    """The sample plan, the demo's members (all but the visitor), a few updates and a few
    figures for its measures."""
    db.call(import_plan_file, path=plan, at=PLAN_LOADED)
    members = {}
    for member in DEMO_MEMBERS:
        if member.role:
            members[member.user.id] = db.call(
                add_member,
                telegram_id=member.user.id,
                name=member.user.full_name,
                organisation=member.organisation,
                role=member.role,
                at=PLAN_LOADED,
                actor=DEMO,
            )
    for update in SEED_UPDATES:
        db.call(
            log_progress,
            ref=update.ref,
            member_id=members[update.author].id,
            status=update.status,
            note=update.note,
            mitigation=update.mitigation,
            forecast=update.forecast,
            at=update.on,
        )
    for code, period, value, author, on in SEED_FIGURES:
        if code in db.call(measure_codes):  # a plan given with --plan may have other measures
            db.call(
                record_figure,
                code=code,
                period=parse_period(period),
                value=float(value),
                note="",
                at=on,
                actor=Actor.member(members[author].id),
            )


async def poll_briskly(intake: Intake) -> None:
    """Short long-polls: the emulator is local, and Ctrl+D should end the demo at once."""
    await Poller(intake, timeout=1).run()


def render(message: SentMessage, buttons: list[tuple[str, str]], saved: Path | None) -> str:
    """A bot message as terminal text: tags dropped, entities decoded, buttons numbered."""
    text = message.plain_text
    if message.kind != "text":
        where = f" saved to {saved}" if saved else ""
        text = f"[{message.kind}: {message.filename}{where}] {text}"
    lines = [
        f"bot: {line}" if i == 0 else f"     {line}" for i, line in enumerate(text.split("\n"))
    ]
    lines += [f"     [{number}] {label}" for number, (label, _) in enumerate(buttons, start=1)]
    return "\n".join(lines)
