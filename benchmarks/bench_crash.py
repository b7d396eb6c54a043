"""Benchmark: nothing lost or doubled when `csp-bot run` is killed, or Telegram misbehaves.

The real process runs against the Bot API emulator (served over HTTP by this process).
Fifteen partners send progress updates (one-line and guided) while a board meeting's
reminder fans out to 150 board members.

1. Crashes. The process is killed with SIGKILL at random moments (--kills, seeded) and
   restarted at once; afterwards every note the partners typed is looked for in the
   database, and every due reminder in what the emulator delivered.
2. Faults. No kills; sendMessage answers 502 (20%) or resets the connection (10%) during a
   second fan-out and a stream of updates.
3. Latency. One partner's chat is slowed by 5 s on every send; the others' reply times.

    .venv/bin/python benchmarks/bench_crash.py [--database-url URL] [--kills 20] [--quick]

Targets: 0 updates lost or doubled; reminders lost per kill <= 3, none doubled; under
faults none lost; reply p95 < 0.5 s beside a slow chat.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from csp_bot.bot.emulator import BotApiEmulator, EmulatedUser, EmulatorServer, Fault, SentMessage
from csp_bot.handlers.delivery import RETRY_BACKOFF
from csp_bot.models.audit import CLI
from csp_bot.models.db import Database
from csp_bot.models.meetings import schedule_meeting
from csp_bot.models.membership import add_member
from csp_bot.models.migrate import upgrade
from csp_bot.models.plan_import import import_plan_file
from csp_bot.models.reminder_types import ReminderKind
from csp_bot.models.tables import Action, Meeting, Member, Organisation, OutboxEntry, ProgressUpdate

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "examples" / "north-northants-csp-2021-22.yaml"
TOKEN = "770077:BENCH-CRASH-SECRET"
PARTNERS = 15
BOARD = 150
PARTNER_BASE = 910_000
BOARD_BASE = 920_000
REPLY_WAIT = 30.0  # a reply not here by then is taken as never coming
STEP_TRIES = 4
RECENT = 10  # messages a partner looks through for the step its tap led to
LOST_PER_KILL_TARGET = 3
P95_TARGET = 0.5


@dataclass
class Partner:
    user: EmulatedUser
    refs: list[str]
    sent: list[str] = field(default_factory=list)  # notes typed, to be stored once each


@dataclass
class World:
    emulator: BotApiEmulator
    server: EmulatorServer
    database_url: str
    partners: list[Partner]
    board: list[int]
    env: dict[str, str]
    stderr: Path
    bot: BotProcess | None = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="fewer kills and updates")
    parser.add_argument("--seed", type=int, default=7)
    args, _ = parser.parse_known_args()  # `./dev bench` passes its arguments to every script
    kills = min(args.kills, 5) if args.quick else args.kills
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'crash.db'}"
        print(f"load {os.getloadavg()}  backend {url.split(':', 1)[0]}  kills {kills}")
        emulator = BotApiEmulator(token=TOKEN, seed=args.seed)
        with EmulatorServer(emulator) as server:
            world = seed_world(emulator, server, url, Path(folder))
            results = [
                crash_phase(world, kills, random.Random(args.seed)),
                fault_phase(world, 2 if args.quick else 4),
                latency_phase(world, 5 if args.quick else 15),
            ]
    return 0 if all(results) else 1


# --- the data --------------------------------------------------------------------------------


def seed_world(emulator: BotApiEmulator, server: EmulatorServer, url: str, folder: Path) -> World:
    database = Database.from_url(url)
    upgrade(database.engine)
    now = datetime.now(UTC)
    database.call(import_plan_file, path=PLAN, at=now)
    leads = database.call(actions_by_lead)
    partners = []
    for n in range(PARTNERS):
        org = sorted(leads)[n % len(leads)]
        user = EmulatedUser(PARTNER_BASE + n, f"Partner{n}")
        database.call(add_member, telegram_id=user.id, name=user.first_name, organisation=org,
                      role="partner", at=now, actor=CLI)  # fmt: skip
        partners.append(Partner(user, leads[org]))
    board = [BOARD_BASE + n for n in range(BOARD)]
    for telegram_id in board:
        database.call(add_member, telegram_id=telegram_id, name=f"Board{telegram_id}",
                      organisation=sorted(leads)[0], role="board", at=now, actor=CLI)  # fmt: skip
    add_meeting(database, "Crash bench board meeting")
    database.close()
    env = {
        **os.environ,
        "CSPBOT_TELEGRAM_TOKEN": TOKEN,
        "CSPBOT_TELEGRAM_API_URL": server.base_url,
        "CSPBOT_DATABASE_URL": url,
        "CSPBOT_QUIET_HOURS": "off",
        "CSPBOT_REMINDER_ROUND_SECONDS": "2",
    }
    return World(emulator, server, url, partners, board, env, folder / "bot.log")


def actions_by_lead(session: Session) -> dict[str, list[str]]:
    """The refs each organisation leads: its partners may update exactly those."""
    rows = session.exec(
        select(Organisation.name, Action.ref).join(
            Action, col(Action.lead_organisation_id) == Organisation.id
        )
    ).all()
    leads: dict[str, list[str]] = {}
    for name, ref in rows:
        leads.setdefault(name, []).append(ref)
    return leads


def add_meeting(database: Database, title: str) -> None:
    """A meeting whose 7-day reminder fell due a minute ago: one reminder per board member."""
    now = datetime.now(UTC)
    starts = now + timedelta(days=7) - timedelta(minutes=1)
    database.call(schedule_meeting, title=title, starts_at=starts, location="Corby Cube",
                  agenda=[], at=now, actor=CLI)  # fmt: skip


# --- the process -----------------------------------------------------------------------------


class BotProcess:
    """`csp-bot run` as a child process, killed and restarted on demand."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "csp_bot.bot.cli", "run"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=30)


# --- the partners ----------------------------------------------------------------------------


def wait_until(check: Callable[[], SentMessage | None], timeout: float) -> SentMessage | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        time.sleep(0.05)
    return None


def new_message(
    emulator: BotApiEmulator, chat: int, before: int
) -> Callable[[], SentMessage | None]:
    return lambda: next(iter(emulator.messages(chat, start=before)), None)


def showing(emulator: BotApiEmulator, chat: int, text: str) -> Callable[[], SentMessage | None]:
    """The latest message that reads `text` and still has buttons, among the chat's last
    few: a partner's step is answered by editing the message just sent, and looking
    through every message a chat ever had, many times a second for each partner, would
    keep the emulator's lock from the bot being measured."""

    def check() -> SentMessage | None:
        recent = emulator.messages(chat, start=-RECENT)
        found = [m for m in recent if text in m.text and emulator.buttons(m)]
        return found[-1] if found else None

    return check


def one_line(emulator: BotApiEmulator, partner: Partner, note: str, rng: random.Random) -> None:
    """`/update REF green note`: typed once; a second copy would be the user's own double."""
    chat = partner.user.id
    before = emulator.sent_count_to(chat)
    partner.sent.append(note)
    emulator.send_text(partner.user, f"/update {rng.choice(partner.refs)} green {note}")
    wait_until(new_message(emulator, chat, before), REPLY_WAIT)


def guided(emulator: BotApiEmulator, partner: Partner, note: str, rng: random.Random) -> None:
    """/update, the action, on track, the note; a step with no answer is tried again."""
    chat, user = partner.user.id, partner.user
    ref = rng.choice(partner.refs)
    for _ in range(STEP_TRIES):
        before = emulator.sent_count_to(chat)
        emulator.send_text(user, "/update")
        picker = wait_until(new_message(emulator, chat, before), REPLY_WAIT / STEP_TRIES)
        if picker is None or not emulator.buttons(picker):
            continue
        if press(emulator, user, picker, f"u:a:{ref}", "What is its status") is None:
            continue
        if press(emulator, user, picker, "u:s:green", "Type a short note") is None:
            continue
        before = emulator.sent_count_to(chat)
        partner.sent.append(note)
        emulator.send_text(user, note)
        wait_until(new_message(emulator, chat, before), REPLY_WAIT)
        return


def press(
    emulator: BotApiEmulator, user: EmulatedUser, message: SentMessage, data: str, expect: str
) -> SentMessage | None:
    """Tap a button and wait for the step it leads to; tap again if nothing came."""
    for _ in range(2):
        try:
            emulator.press_button(user, message.message_id, data)
        except ValueError:  # the keyboard moved on or went: start again
            return None
        shown = wait_until(showing(emulator, user.id, expect), REPLY_WAIT / STEP_TRIES)
        if shown is not None:
            return shown
    return None


def drive(emulator: BotApiEmulator, partners: list[Partner], stop: threading.Event,
          tag: str, seed: int) -> list[threading.Thread]:  # fmt: skip
    """One thread per partner, each sending updates one after another until `stop`."""

    def run(index: int, partner: Partner) -> None:
        rng = random.Random(seed * 1000 + index)
        n = 0
        while not stop.is_set():
            n += 1
            if rng.random() < 0.5:
                one_line(emulator, partner, f"note-{tag}-{index}-{n}", rng)
            else:
                guided(emulator, partner, f"guided-{tag}-{index}-{n}", rng)

    threads = [
        threading.Thread(target=run, args=(i, p), daemon=True) for i, p in enumerate(partners)
    ]
    for thread in threads:
        thread.start()
    return threads


# --- counting --------------------------------------------------------------------------------


def stored_notes(url: str) -> Counter[str]:
    database = Database.from_url(url)
    notes = database.call(lambda s: s.exec(select(ProgressUpdate.note)).all())
    database.close()
    return Counter(notes)


def outbox(url: str, title: str) -> list[OutboxEntry]:
    database = Database.from_url(url)
    rows = database.call(
        lambda s: s.exec(
            select(OutboxEntry)
            .join(Meeting, col(Meeting.id) == OutboxEntry.subject_id)
            .where(Meeting.title == title, OutboxEntry.kind == ReminderKind.MEETING)
        ).all()
    )
    database.close()
    return list(rows)


def update_figures(partners: list[Partner], notes: Counter[str]) -> tuple[int, int, int, int]:
    sent = [note for p in partners for note in p.sent]
    stored = sum(1 for note in sent if notes[note] == 1)
    lost = sum(1 for note in sent if notes[note] == 0)
    doubled = sum(1 for note in sent if notes[note] > 1)
    return len(sent), stored, lost, doubled


def reminder_figures(world: World, title: str) -> tuple[int, int, int, int, Counter[str]]:
    rows = outbox(world.database_url, title)
    received = Counter(
        m.chat_id for m in world.emulator.messages() if title in m.text and m.chat_id >= BOARD_BASE
    )
    database = Database.from_url(world.database_url)
    chat_of = dict(database.call(lambda s: s.exec(select(Member.id, Member.telegram_id)).all()))
    database.close()
    chats = {chat_of[row.member_id] for row in rows}
    delivered = sum(1 for chat in chats if received[chat] == 1)
    lost = sum(1 for chat in chats if received[chat] == 0)
    doubled = sum(1 for chat in chats if received[chat] > 1)
    return len(rows), delivered, lost, doubled, Counter(str(row.state) for row in rows)


def show_lost(partners: list[Partner], notes: Counter[str]) -> None:
    lost = [note for p in partners for note in p.sent if notes[note] != 1]
    if lost:
        print(f"  not stored exactly once: {lost[:10]}")


def report(rows: list[tuple[str, object, str]]) -> None:
    for name, value, target in rows:
        print(f"  {name:<38} {value!s:>10}   {target}")


def settle(world: World, title: str, timeout: float = 60.0) -> None:
    """Wait until no reminder is pending or being sent and the inbox is drained."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {str(row.state) for row in outbox(world.database_url, title)}
        if not states & {"pending", "sending"} and not world.emulator.pending_updates():
            time.sleep(3)  # the last replies
            return
        time.sleep(0.5)


# --- the phases ------------------------------------------------------------------------------


def crash_phase(world: World, kills: int, rng: random.Random) -> bool:
    title = "Crash bench board meeting"
    bot = BotProcess(world.env, world.stderr)
    bot.start()
    stop = threading.Event()
    threads = drive(world.emulator, world.partners, stop, "crash", 1)
    started = time.monotonic()
    for _ in range(kills):
        time.sleep(rng.uniform(0.5, 4.0))
        bot.kill()
        bot.start()
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join(timeout=REPLY_WAIT + 5)
    settle(world, title)
    elapsed = time.monotonic() - started
    sent, stored, lost, doubled = update_figures(world.partners, stored_notes(world.database_url))
    due, delivered, r_lost, r_doubled, states = reminder_figures(world, title)
    per_kill = r_lost / kills if kills else 0.0
    show_lost(world.partners, stored_notes(world.database_url))
    print(f"crash phase: {kills} kills in {elapsed:.0f} s; outbox states {dict(states)}")
    report(
        [
            ("updates sent", sent, ""),
            ("updates stored once", stored, f"target {sent}"),
            ("updates lost", lost, "target 0"),
            ("updates doubled", doubled, "target 0"),
            ("reminders due", due, f"target {BOARD}"),
            ("reminders delivered once", delivered, ""),
            ("reminders lost", r_lost, ""),
            ("reminders lost per kill", f"{per_kill:.2f}", f"target <= {LOST_PER_KILL_TARGET}"),
            ("reminders doubled", r_doubled, "target 0"),
        ]
    )
    world.bot = bot  # the next phases use the running process
    return lost == 0 and doubled == 0 and per_kill <= LOST_PER_KILL_TARGET and r_doubled == 0


def fault_phase(world: World, seconds_per_partner: int) -> bool:
    title = "Fault bench board meeting"
    for partner in world.partners:
        partner.sent.clear()
    faults = [
        world.emulator.faults.add(
            Fault(kind="status", status=502, methods={"sendmessage"}, probability=0.2)
        ),
        world.emulator.faults.add(Fault(kind="reset", methods={"sendmessage"}, probability=0.1)),
    ]
    database = Database.from_url(world.database_url)
    add_meeting(database, title)
    database.close()
    stop = threading.Event()
    threads = drive(world.emulator, world.partners, stop, "fault", 2)
    time.sleep(seconds_per_partner * 5)
    stop.set()
    for thread in threads:
        thread.join(timeout=REPLY_WAIT + 5)
    # The episode ends; reminders it refused wait out their backoff and go then. Wait long
    # enough for one refused five times in a row (at 30% a try, rare but possible).
    for fault in faults:
        world.emulator.faults.remove(fault)
    settle(world, title, timeout=sum(RETRY_BACKOFF.wait(n) for n in range(1, 6)) + 60)
    sent, stored, lost, doubled = update_figures(world.partners, stored_notes(world.database_url))
    due, delivered, r_lost, r_doubled, states = reminder_figures(world, title)
    print(f"fault phase: 502 on 20%, reset on 10% of sendMessage; outbox {dict(states)}")
    print(f"  faults hit: {world.emulator.fault_hits}")
    report(
        [
            ("updates sent", sent, ""),
            ("updates stored once", stored, f"target {sent}"),
            ("updates lost", lost, "target 0"),
            ("updates doubled", doubled, "target 0"),
            ("reminders due", due, f"target {BOARD}"),
            ("reminders delivered once", delivered, ""),
            ("reminders lost", r_lost, "target 0"),
            ("reminders doubled", r_doubled, "target 0"),
        ]
    )
    return lost == 0 and doubled == 0 and r_lost == 0 and r_doubled == 0


def latency_phase(world: World, rounds: int) -> bool:
    emulator = world.emulator
    slow, others = world.partners[0], world.partners[1:]
    fault = emulator.faults.add(
        Fault(kind="delay", methods={"sendmessage"}, chat_id=slow.user.id, delay=5)
    )
    slow_stop = threading.Event()
    slow_thread = drive(emulator, [slow], slow_stop, "slow", 3)
    latencies: list[float] = []
    for n in range(rounds):
        for partner in others:
            chat = partner.user.id
            before = emulator.sent_count_to(chat)
            started = time.perf_counter()
            emulator.send_text(partner.user, f"/update {partner.refs[0]} green lat-{n}")
            emulator.wait_for_messages(chat, before + 1, timeout=REPLY_WAIT)
            latencies.append(time.perf_counter() - started)
    slow_stop.set()
    emulator.faults.remove(fault)
    for thread in slow_thread:
        thread.join(timeout=REPLY_WAIT + 5)
    assert world.bot is not None
    world.bot.stop()
    median = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"latency phase: {len(latencies)} replies beside a chat slowed 5 s per send")
    report(
        [
            ("reply latency median (s)", f"{median:.3f}", ""),
            ("reply latency p95 (s)", f"{p95:.3f}", f"target < {P95_TARGET}"),
        ]
    )
    return p95 < P95_TARGET


if __name__ == "__main__":
    sys.exit(main())
