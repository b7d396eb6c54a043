"""The Bot API emulator, driven by a small real Application in-process and over HTTP."""

from __future__ import annotations

import asyncio
import html
import json
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from csp_bot.bot.emulator import (
    BotApiEmulator,
    EmulatedUser,
    EmulatorRequest,
    EmulatorServer,
    Fault,
    FaultInjected,
    FaultKind,
)

App = Application[Any, Any, Any, Any, Any, Any]
Ctx = ContextTypes.DEFAULT_TYPE

NOW = datetime(2021, 6, 10, 9, 0, tzinfo=UTC)
ALICE = EmulatedUser(1001, "Alice", "Adams", "alice")
BOARD_GROUP = -100123
PAPER = b"ref,status\r\nSOC-1,green\r\n\x00\xff binary tail\r"


# --- a minimal bot, written the way the real handlers are ---


async def start(update: Update, context: Ctx) -> None:
    """Greet the user by name, in HTML."""
    assert update.effective_message and update.effective_user
    name = html.escape(update.effective_user.first_name)
    await update.effective_message.reply_html(f"Hello, <b>{name}</b>!")


async def echo(update: Update, context: Ctx) -> None:
    """Say the command's arguments back."""
    assert update.effective_message
    await update.effective_message.reply_text(" ".join(context.args or []) or "(nothing)")


async def menu(update: Update, context: Ctx) -> None:
    """Offer RAG buttons and a link."""
    assert update.effective_message
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Green", callback_data="rag:green"),
                InlineKeyboardButton("Red", callback_data="rag:red"),
            ],
            [InlineKeyboardButton("Guide", url="https://example.org/guide")],
        ]
    )
    await update.effective_message.reply_text("How is SOC-1 going?", reply_markup=keyboard)


async def rate(update: Update, context: Ctx) -> None:
    """Record the tapped status: toast, then edit the question into the answer."""
    query = update.callback_query
    assert query and query.data
    status = query.data.removeprefix("rag:")
    await query.answer(f"Saved: {status}")
    await query.edit_message_text(f"SOC-1 is now {status}.")


async def paper(update: Update, context: Ctx) -> None:
    """Send the board paper as a file."""
    assert update.effective_message
    await update.effective_message.reply_document(
        PAPER, filename="board-paper.csv", caption="Board paper"
    )


async def received(update: Update, context: Ctx) -> None:
    """Download a file the user sent and say what arrived."""
    assert update.effective_message and update.effective_message.document
    document = update.effective_message.document
    content = await (await document.get_file()).download_as_bytearray()
    await update.effective_message.reply_text(f"Got {document.file_name}: {len(content)} bytes")


async def photo(update: Update, context: Ctx) -> None:
    """Photos are not text."""
    assert update.effective_message
    await update.effective_message.reply_text("Photos are not plan updates.")


def with_handlers(builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any]) -> App:
    application = builder.build()
    application.add_handlers(
        [
            CommandHandler("start", start),
            CommandHandler("echo", echo),
            CommandHandler("menu", menu),
            CommandHandler("paper", paper),
            CallbackQueryHandler(rate, pattern="^rag:"),
            MessageHandler(filters.Document.ALL, received),
            MessageHandler(filters.PHOTO, photo),
        ]
    )
    return application


def in_process(em: BotApiEmulator) -> App:
    return with_handlers(
        ApplicationBuilder()
        .token(em.token)
        .request(EmulatorRequest(em))
        .get_updates_request(EmulatorRequest(em))
    )


async def feed(application: App, update: dict[str, Any]) -> None:
    await application.process_update(Update.de_json(update, application.bot))


@pytest.fixture
def em() -> BotApiEmulator:
    return BotApiEmulator(clock=lambda: NOW)


@pytest.fixture
async def local(em: BotApiEmulator) -> AsyncIterator[App]:
    """The minimal bot, initialised against the emulator in-process."""
    application = in_process(em)
    async with application:
        yield application


@pytest.fixture
def server(em: BotApiEmulator) -> Iterator[EmulatorServer]:
    with EmulatorServer(em) as running:
        yield running


# --- in-process, through process_update ---


async def test_bot_learns_who_it_is(local: App) -> None:
    assert local.bot.username == "csp_demo_bot"
    assert local.bot.id == 123456


async def test_start_gets_a_reply(em: BotApiEmulator, local: App) -> None:
    await feed(local, em.build_message_update(ALICE, "/start"))
    reply = em.last_message(ALICE.id)
    assert reply.text == "Hello, <b>Alice</b>!"
    assert reply.parse_mode == "HTML"
    assert reply.plain_text == "Hello, Alice!"


async def test_command_addressed_to_the_bot_in_a_group(em: BotApiEmulator, local: App) -> None:
    update = em.build_message_update(
        ALICE, "/echo@csp_demo_bot hi all", chat_id=BOARD_GROUP, chat_type="group"
    )
    await feed(local, update)
    assert [m.text for m in em.messages(BOARD_GROUP)] == ["hi all"]
    assert em.messages(ALICE.id) == []


async def test_sent_messages_are_telegram_messages(em: BotApiEmulator, local: App) -> None:
    message = await local.bot.send_message(ALICE.id, "<i>dated</i> &amp; signed", parse_mode="HTML")
    assert message.date == NOW
    assert message.from_user is not None and message.from_user.is_bot
    assert message.text == "dated & signed"
    assert [(e.type, e.offset, e.length) for e in message.entities] == [("italic", 0, 5)]


async def test_button_press_edits_and_answers(em: BotApiEmulator, local: App) -> None:
    await feed(local, em.build_message_update(ALICE, "/menu"))
    question = em.last_message(ALICE.id)
    assert em.buttons(question) == [
        ("Green", "rag:green"),
        ("Red", "rag:red"),
        ("Guide", "https://example.org/guide"),
    ]

    await feed(local, em.build_callback_update(ALICE, question.message_id, "rag:red"))

    edited = em.last_message(ALICE.id)
    assert edited.message_id == question.message_id
    assert (edited.text, edited.edits, edited.reply_markup) == (
        "SOC-1 is now red.",
        ["How is SOC-1 going?"],
        None,
    )
    assert em.callback_answers == [
        {
            "callback_query_id": em.callback_answers[0]["callback_query_id"],
            "user_id": ALICE.id,
            "chat_id": ALICE.id,
            "message_id": question.message_id,
            "data": "rag:red",
            "text": "Saved: red",
            "show_alert": False,
            "url": None,
        }
    ]


async def test_press_button_only_offers_what_is_on_the_keyboard(
    em: BotApiEmulator, local: App
) -> None:
    await feed(local, em.build_message_update(ALICE, "/menu"))
    question = em.last_message(ALICE.id)
    with pytest.raises(ValueError, match="rag:amber"):
        em.press_button(ALICE, question.message_id, "rag:amber")
    with pytest.raises(KeyError):
        em.build_callback_update(ALICE, 999, "rag:red")


async def test_document_round_trip(em: BotApiEmulator, local: App) -> None:
    await feed(local, em.build_message_update(ALICE, "/paper"))
    sent = em.last_message(ALICE.id)
    assert (sent.kind, sent.filename, sent.content, sent.text) == (
        "document",
        "board-paper.csv",
        PAPER,
        "Board paper",
    )

    upload = b"action,note\nHC-2,\xe2\x9c\x93 done\n"
    await feed(local, em.build_document_update(ALICE, "progress.csv", upload))
    assert em.last_message(ALICE.id).text == f"Got progress.csv: {len(upload)} bytes"


async def test_a_photo_is_not_text(em: BotApiEmulator, local: App) -> None:
    await feed(local, em.build_photo_update(ALICE, b"\xff\xd8 jpeg", caption="site visit"))
    assert em.last_message(ALICE.id).text == "Photos are not plan updates."


async def test_command_menu_is_stored_per_scope(em: BotApiEmulator, local: App) -> None:
    await local.bot.set_my_commands([BotCommand("start", "Begin"), BotCommand("help", "Help")])
    await local.bot.set_my_commands(
        [BotCommand("status", "Plan status")], scope=BotCommandScopeAllGroupChats()
    )
    assert em.get_commands() == [
        {"command": "start", "description": "Begin"},
        {"command": "help", "description": "Help"},
    ]
    assert em.get_commands({"type": "all_group_chats"}) == [
        {"command": "status", "description": "Plan status"}
    ]
    assert [c.command for c in await local.bot.get_my_commands()] == ["start", "help"]


async def test_refused_method_raises_bad_request(em: BotApiEmulator, local: App) -> None:
    em.refuse("setMyCommands", "commands are switched off")
    # PTB drops "Bad Request: " and capitalises the rest (str.capitalize: the rest goes lower).
    with pytest.raises(BadRequest, match=r"^Commands are switched off$"):
        await local.bot.set_my_commands([BotCommand("start", "Begin")])
    em.refuse("setMyCommands", None)
    assert await local.bot.set_my_commands([BotCommand("start", "Begin")])


async def test_bad_html_is_refused_like_telegram(em: BotApiEmulator, local: App) -> None:
    with pytest.raises(BadRequest, match="unclosed start tag at byte offset 2"):
        await local.bot.send_message(ALICE.id, "1 < 2", parse_mode="HTML")
    with pytest.raises(BadRequest, match='unsupported start tag "" at byte offset 2'):
        await local.bot.send_message(ALICE.id, "1 < 2 > 0", parse_mode="HTML")
    with pytest.raises(BadRequest, match='expected "</b>", found "</i>"'):
        await local.bot.send_message(ALICE.id, "<b>bold</i>", parse_mode="HTML")
    assert em.messages() == []


async def test_edit_without_change_is_not_modified(em: BotApiEmulator, local: App) -> None:
    message = await local.bot.send_message(ALICE.id, "Same")
    with pytest.raises(BadRequest, match=r"^Message is not modified"):
        await local.bot.edit_message_text("Same", ALICE.id, message.message_id)


async def test_blocked_user_is_forbidden(em: BotApiEmulator, local: App) -> None:
    em.block(ALICE.id)
    with pytest.raises(Forbidden, match="blocked by the user"):
        await local.bot.send_message(ALICE.id, "Reminder")


async def test_wrong_token_is_unauthorized(em: BotApiEmulator) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("654321:WRONG", request=EmulatorRequest(em)):
            pass


# --- the Bot API surface, called directly ---


def test_method_names_are_case_insensitive_and_unknown_is_404(em: BotApiEmulator) -> None:
    assert em.call("GETME", {})[0] == 200
    assert em.call("frobnicate", {}) == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )


def test_a_chats_messages_are_read_from_a_start_and_counted_without_copies(
    em: BotApiEmulator,
) -> None:
    for chat, text in [(1001, "one"), (1002, "elsewhere"), (1001, "two"), (1001, "three")]:
        assert em.call("sendMessage", {"chat_id": chat, "text": text})[0] == 200
    assert [m.text for m in em.messages(1001, start=1)] == ["two", "three"]
    assert [m.text for m in em.messages(1001, start=-1)] == ["three"]
    assert [m.text for m in em.messages(start=2)] == ["two", "three"]
    assert (em.sent_count_to(1001), em.sent_count_to(1002), em.sent_count_to(1003)) == (3, 1, 0)
    assert em.last_message(1001).text == "three"


def test_form_strings_are_decoded_by_field(em: BotApiEmulator) -> None:
    markup = {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]}
    status, body = em.call(
        "sendMessage", {"chat_id": "1001", "text": "123", "reply_markup": json.dumps(markup)}
    )
    assert status == 200
    assert body["result"]["chat"]["id"] == 1001
    assert body["result"]["text"] == "123"
    assert body["result"]["reply_markup"] == markup


def test_offset_confirms_earlier_updates(em: BotApiEmulator) -> None:
    first = em.send_text(ALICE, "one")
    second = em.send_text(ALICE, "two")
    ids = [u["update_id"] for u in em.call("getUpdates", {})[1]["result"]]
    assert ids == [first, second]
    assert em.call("getUpdates", {"offset": second})[1]["result"][0]["update_id"] == second
    assert em.call("getUpdates", {"offset": second + 1})[1]["result"] == []
    assert em.pending_updates() == []


def test_long_poll_returns_as_soon_as_an_update_arrives(em: BotApiEmulator) -> None:
    with ThreadPoolExecutor(1) as pool:
        poll = pool.submit(em.call, "getUpdates", {"timeout": "120"})
        em.wait_for_pollers(1)
        update_id = em.send_text(ALICE, "hello")
        # Long before the poll's own 120 s: it answered because the update came.
        status, body = poll.result(timeout=60)
    assert (status, [u["update_id"] for u in body["result"]]) == (200, [update_id])
    assert body["result"][0]["message"]["text"] == "hello"


def test_interrupt_releases_a_long_poll(em: BotApiEmulator) -> None:
    cancel = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        poll = pool.submit(em.call, "getUpdates", {"timeout": 5}, cancel=cancel)
        em.wait_for_pollers(1)
        em.interrupt(cancel)
        assert poll.result(timeout=2) == (200, {"ok": True, "result": []})


def test_wait_for_messages_times_out_helpfully(em: BotApiEmulator) -> None:
    em.call("sendMessage", {"chat_id": ALICE.id, "text": "only one"})
    with pytest.raises(TimeoutError, match=r"2 message\(s\) to chat 1001.*'only one'"):
        em.wait_for_messages(ALICE.id, 2, timeout=0.05)


def test_rate_limits_answer_429_with_retry_after() -> None:
    em = BotApiEmulator(enforce_limits=True)
    for text in "abc":  # a short burst of three, as Telegram allows
        assert em.call("sendMessage", {"chat_id": 1, "text": text})[0] == 200
    assert em.call("sendMessage", {"chat_id": 1, "text": "d"}) == (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        },
    )
    statuses = [em.call("sendMessage", {"chat_id": -5, "text": "g"})[0] for _ in range(21)]
    assert statuses == [200] * 20 + [429]
    assert em.too_many_requests == 2


def test_rate_limit_overall_is_thirty_a_second() -> None:
    em = BotApiEmulator(enforce_limits=True)
    statuses = [em.call("sendMessage", {"chat_id": n, "text": "x"})[0] for n in range(1, 32)]
    assert statuses == [200] * 30 + [429]


def test_over_http_the_limits_count_a_request_from_its_arrival() -> None:
    # Telegram counts a message when it arrives. An emulator slow to get to one (kept from
    # the CPU by a busy machine; here a delay) must not count it later, when the chat has
    # room again: that would make requests that came evenly spaced look like a burst.
    em = BotApiEmulator(enforce_limits=True)
    with EmulatorServer(em) as server, httpx.Client() as client:
        url = f"{server.base_url}{em.token}/sendMessage"
        for text in "abc":  # the chat's burst of three
            assert client.post(url, json={"chat_id": 1, "text": text}).status_code == 200
        em.inject(sends("delay", delay=1.2))  # a second is time enough for one more
        late = client.post(url, json={"chat_id": 1, "text": "d"}, timeout=5)
    assert (late.status_code, late.json()["parameters"]) == (429, {"retry_after": 1})


async def test_ptb_raises_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without PTB_TIMEDELTA, building RetryAfter warns (PTB 22.2+), an error under this suite.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    em = BotApiEmulator(enforce_limits=True)
    async with Bot(em.token, request=EmulatorRequest(em)) as bot:
        for text in ("first", "second", "third"):
            await bot.send_message(ALICE.id, text)
        with pytest.raises(RetryAfter) as refused:
            await bot.send_message(ALICE.id, "fourth")
    assert refused.value.retry_after == timedelta(seconds=1)


# --- over HTTP ---


async def test_polling_over_http(em: BotApiEmulator, server: EmulatorServer) -> None:
    application = with_handlers(
        ApplicationBuilder()
        .token(em.token)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
    )
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling()

        em.send_text(ALICE, "/start")
        em.send_text(ALICE, "/menu")
        greeting, question = await em.wait_for_messages_async(ALICE.id, 2)
        assert greeting.text == "Hello, <b>Alice</b>!"

        since = em.events
        em.press_button(ALICE, question.message_id, "rag:green")
        while em.last_message(ALICE.id).text != "SOC-1 is now green.":
            since = await changed_since(em, since)
        em.send_document(ALICE, "notes.txt", PAPER)
        replies = await em.wait_for_messages_async(ALICE.id, 3)
        assert replies[-1].text == f"Got notes.txt: {len(PAPER)} bytes"

        await application.updater.stop()
        await application.stop()
    assert em.callback_answers[0]["text"] == "Saved: green"
    assert em.pending_updates() == []  # the updater confirmed everything on its way out


async def changed_since(em: BotApiEmulator, since: int) -> int:
    """Wait (off the loop the bot runs on) for the user's view to change."""
    changed = await asyncio.to_thread(em.wait_for_change, since, 5.0)
    assert changed > since, "the bot did not react within 5 s"
    return changed


def test_http_bodies_and_errors(em: BotApiEmulator, server: EmulatorServer) -> None:
    url = f"{server.base_url}{em.token}"
    with httpx.Client() as client:
        assert client.get(f"{url}/getMe").json()["result"]["username"] == "csp_demo_bot"
        form = client.post(f"{url}/sendMessage", data={"chat_id": "1001", "text": "form"})
        as_json = client.post(f"{url}/sendMessage", json={"chat_id": 1001, "text": "json"})
        upload = client.post(
            f"{url}/sendDocument",
            data={"chat_id": "1001", "caption": "Plan"},
            files={"document": ("plan.yaml", PAPER, "application/x-yaml")},
        )
        wrong = client.post(f"{server.base_url}1:WRONG/getMe")
        unknown = client.post(f"{url}/frobnicate")
    assert (form.status_code, as_json.status_code, upload.status_code) == (200, 200, 200)
    assert upload.json()["result"]["document"]["file_name"] == "plan.yaml"
    assert [m.text for m in em.messages(ALICE.id)] == ["form", "json", "Plan"]
    assert em.last_message(ALICE.id).content == PAPER
    assert (wrong.status_code, wrong.json()["description"]) == (401, "Unauthorized")
    assert unknown.status_code == 404


# --- injected faults, the same over both transports ---

BOB = EmulatedUser(1002, "Bob", "Brown", "bob")


@pytest.fixture(params=["http", "in-process"])
async def bot(request: pytest.FixtureRequest, em: BotApiEmulator) -> AsyncIterator[Bot]:
    """A real PTB Bot with a short read timeout, over HTTP or in-process."""
    if request.param == "in-process":
        requests = [EmulatorRequest(em, read_timeout=0.3) for _ in range(2)]
        async with Bot(em.token, request=requests[0], get_updates_request=requests[1]) as local:
            yield local
        return
    with EmulatorServer(em) as running:
        http = [HTTPXRequest(read_timeout=0.3) for _ in range(2)]
        async with Bot(
            em.token, base_url=running.base_url, request=http[0], get_updates_request=http[1]
        ) as http_bot:
            yield http_bot


def sends(kind: FaultKind, **rule: Any) -> Fault:
    """A fault on sendMessage."""
    return Fault(kind=kind, methods={"sendMessage"}, **rule)


def texts(em: BotApiEmulator, chat_id: int = ALICE.id) -> list[str]:
    return [m.text for m in em.messages(chat_id)]


async def test_429_fault_raises_retry_after_unprocessed(
    em: BotApiEmulator, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # else RetryAfter warns (an error here)
    em.inject(sends("status", status=429, retry_after=7))
    with pytest.raises(RetryAfter) as refused:
        await bot.send_message(ALICE.id, "reminder")
    assert refused.value.retry_after == timedelta(seconds=7)
    assert texts(em) == []
    assert em.fault_hits == {"status": 1}


def test_429_fault_body_is_telegrams(em: BotApiEmulator) -> None:
    em.inject(sends("status", status=429, retry_after=3))
    assert em.call("sendMessage", {"chat_id": ALICE.id, "text": "x"}) == (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 3",
            "parameters": {"retry_after": 3},
        },
    )


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (500, "Internal Server Error"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
    ],
)
async def test_5xx_fault_raises_network_error_unprocessed(
    em: BotApiEmulator, bot: Bot, status: int, phrase: str
) -> None:
    em.inject(sends("status", status=status))
    with pytest.raises(NetworkError, match=phrase):
        await bot.send_message(ALICE.id, "reminder")
    assert texts(em) == []


@pytest.mark.parametrize("status", [401, 404])
async def test_401_and_404_faults_raise_invalid_token(
    em: BotApiEmulator, bot: Bot, status: int
) -> None:
    em.inject(sends("status", status=status))
    with pytest.raises(InvalidToken):
        await bot.send_message(ALICE.id, "reminder")
    assert texts(em) == []


async def test_malformed_body_is_not_json_and_unprocessed(em: BotApiEmulator, bot: Bot) -> None:
    em.inject(sends("malformed", times=1))
    # On a 200, PTB raises its base TelegramError ("Invalid server response"), no NetworkError.
    with pytest.raises(TelegramError, match="Invalid server response") as failed:
        await bot.send_message(ALICE.id, "reminder")
    assert not isinstance(failed.value, NetworkError)
    em.inject(sends("malformed", status=502, times=1))
    with pytest.raises(NetworkError, match=r"Bad Gateway \(502\)"):
        await bot.send_message(ALICE.id, "reminder")
    assert texts(em) == []
    assert em.fault_hits == {"malformed": 2}


async def test_drop_processes_then_times_out(em: BotApiEmulator, bot: Bot) -> None:
    em.inject(sends("drop", times=1))
    with pytest.raises(TimedOut):
        await bot.send_message(ALICE.id, "sent, never confirmed")
    assert texts(em) == ["sent, never confirmed"]
    assert em.fault_hits == {"drop": 1}


async def test_drop_that_hangs_up_first_is_a_network_error(em: BotApiEmulator, bot: Bot) -> None:
    em.inject(sends("drop", delay=0.05, times=1))
    with pytest.raises(NetworkError, match="without sending a response") as failed:
        await bot.send_message(ALICE.id, "sent")
    assert not isinstance(failed.value, TimedOut)
    assert isinstance(failed.value.__cause__, httpx.RemoteProtocolError)
    assert texts(em) == ["sent"]


async def test_reset_is_a_network_error_unprocessed(em: BotApiEmulator, bot: Bot) -> None:
    em.inject(sends("reset", times=1))
    with pytest.raises(NetworkError) as failed:
        await bot.send_message(ALICE.id, "lost")
    assert isinstance(failed.value.__cause__, httpx.ReadError | httpx.RemoteProtocolError)
    assert texts(em) == []
    assert (await bot.send_message(ALICE.id, "again")).text == "again"
    assert texts(em) == ["again"]


async def test_times_spends_a_fault(em: BotApiEmulator, bot: Bot) -> None:
    em.inject(sends("status", status=502, times=2))
    outcomes = []
    for n in range(3):
        try:
            await bot.send_message(ALICE.id, f"try {n}")
        except NetworkError:
            outcomes.append("failed")
        else:
            outcomes.append("sent")
    assert outcomes == ["failed", "failed", "sent"]
    assert texts(em) == ["try 2"]
    assert len(em.faults) == 0
    assert em.fault_hits == {"status": 2}


async def test_fault_targets_one_chat_and_its_methods(em: BotApiEmulator, bot: Bot) -> None:
    em.inject(sends("status", status=503, chat_id=ALICE.id))
    await bot.send_message(BOB.id, "to Bob")
    assert (await bot.get_me()).username == "csp_demo_bot"
    with pytest.raises(NetworkError):
        await bot.send_message(ALICE.id, "to Alice")
    assert (texts(em, BOB.id), texts(em)) == (["to Bob"], [])


async def test_a_slow_chat_does_not_hold_up_another(em: BotApiEmulator, bot: Bot) -> None:
    em.inject(sends("delay", chat_id=ALICE.id, delay=0.5))
    finished: list[str] = []

    async def send(user: EmulatedUser) -> None:
        await bot.send_message(user.id, f"to {user.first_name}", read_timeout=5)
        finished.append(user.first_name)

    slow = asyncio.create_task(send(ALICE))
    await asyncio.sleep(0)  # let Alice's call start first
    await send(BOB)
    await slow
    assert finished == ["Bob", "Alice"]
    assert (texts(em), texts(em, BOB.id)) == (["to Alice"], ["to Bob"])


def test_removed_and_cleared_faults_stop(em: BotApiEmulator) -> None:
    first = em.faults.add(sends("status", status=500))
    em.faults.add(Fault(kind="status", status=502, methods={"getme"}))
    assert em.call("sendMessage", {"chat_id": 1, "text": "x"})[0] == 500
    em.faults.remove(first)
    assert em.call("sendMessage", {"chat_id": 1, "text": "x"})[0] == 200
    assert em.call("getMe", {})[0] == 502
    em.faults.clear()
    assert em.call("getMe", {})[0] == 200
    assert list(em.faults) == []


def test_faults_with_a_probability_replay_with_the_seed() -> None:
    def pattern(seed: int) -> list[int]:
        em = BotApiEmulator(seed=seed)
        em.inject(Fault(kind="status", status=500, probability=0.5))
        return [em.call("getMe", {})[0] for _ in range(40)]

    assert pattern(7) == pattern(7)
    assert {200, 500} == set(pattern(7))


def test_direct_calls_raise_for_transport_faults(em: BotApiEmulator) -> None:
    for kind in ("malformed", "reset", "drop"):
        em.inject(Fault(kind=kind, times=1))
        with pytest.raises(FaultInjected) as injected:
            em.call("sendMessage", {"chat_id": "1001", "text": kind})
        assert injected.value.fault.kind == kind
    assert texts(em) == ["drop"]  # only a drop is processed


def test_faults_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="error status"):
        Fault(kind="status", status=200)
    with pytest.raises(ValueError, match="times"):
        Fault(kind="drop", times=0)
    with pytest.raises(ValueError, match="probability"):
        Fault(kind="delay", probability=2)
    assert Fault(kind="delay", methods="sendMessage").methods == frozenset({"sendmessage"})


async def test_refuse_works_on_both_transports(em: BotApiEmulator, bot: Bot) -> None:
    em.refuse("sendMessage", "chat is switched off")
    with pytest.raises(BadRequest, match="Chat is switched off"):
        await bot.send_message(ALICE.id, "x")


# --- offsets: an update is redelivered until a later offset confirms it ---


async def test_unanswered_get_updates_redelivers(em: BotApiEmulator, bot: Bot) -> None:
    first = em.send_text(ALICE, "one")
    em.inject(Fault(kind="drop", methods={"getupdates"}, times=1))
    with pytest.raises(TimedOut):
        await bot.get_updates(timeout=0)
    again = await bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [first]
    second = em.send_text(ALICE, "two")
    assert [u.update_id for u in await bot.get_updates(offset=first, timeout=0)] == [first, second]
    assert [u.update_id for u in await bot.get_updates(offset=first + 1, timeout=0)] == [second]
    assert await bot.get_updates(offset=second + 1, timeout=0) == ()
    assert em.pending_updates() == []
    assert em.get_updates_offsets == [None, None, first, first + 1, second + 1]


async def test_refused_get_updates_confirms_nothing(em: BotApiEmulator, bot: Bot) -> None:
    first = em.send_text(ALICE, "one")
    em.inject(Fault(kind="status", status=502, methods={"getupdates"}, times=1))
    with pytest.raises(NetworkError):
        await bot.get_updates(offset=first + 1, timeout=0)
    assert [u["update_id"] for u in em.pending_updates()] == [first]
    assert em.get_updates_offsets == []  # the refused call never reached the queue


# --- refusing connections ---


async def test_paused_server_refuses_connections_on_its_port(
    em: BotApiEmulator, server: EmulatorServer
) -> None:
    port = server.port
    async with Bot(em.token, base_url=server.base_url) as http_bot:
        server.pause()
        assert server.paused
        with pytest.raises(NetworkError) as refused:
            await http_bot.get_me()
        assert isinstance(refused.value.__cause__, httpx.ConnectError)
        server.resume()
        assert (server.port, server.paused) == (port, False)
        assert (await http_bot.send_message(ALICE.id, "back")).text == "back"


def test_users_typing_at_once_are_queued_in_update_id_order() -> None:
    """Telegram numbers updates as they arrive. A user whose update was numbered first and
    queued last would be passed over by a webhook delivery already past that number."""
    em = BotApiEmulator()
    numbered, go = threading.Event(), threading.Event()
    build, queue = em.build_message_update, em.queue
    queued: list[int] = []

    def slow_build(user: EmulatedUser, text: str, **kwargs: Any) -> dict[str, Any]:
        update = build(user, text, **kwargs)
        if text == "first":  # numbered, then held before it is queued
            numbered.set()
            go.wait(10)
        return update

    def recording_queue(update: dict[str, Any]) -> int:
        queued.append(int(update["update_id"]))
        return queue(update)

    em.build_message_update = slow_build  # type: ignore[method-assign]
    em.queue = recording_queue  # type: ignore[method-assign]
    alice = threading.Thread(target=em.send_text, args=(ALICE, "first"))
    alice.start()
    numbered.wait(10)
    bob = threading.Thread(target=em.send_text, args=(BOB, "second"))
    bob.start()
    go.set()
    alice.join(10)
    bob.join(10)
    assert [u["message"]["text"] for u in em.pending_updates()] == ["first", "second"]
    assert queued == sorted(queued)
