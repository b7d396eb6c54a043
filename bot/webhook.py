"""The web server: Telegram's webhook, and health checks for a load balancer.

A small Starlette app served by uvicorn in the bot's own event loop (python-telegram-bot's
built-in webhook server answers Telegram before the update is stored, and has no health
routes). The webhook route checks `X-Telegram-Bot-Api-Secret-Token`, stores the update in
the inbox through `Intake.accept`, and answers 200 only after that commit; anything else
gets a non-2xx answer, so Telegram delivers the update again.

- `POST <path of CSPBOT_WEBHOOK_URL>`: an update from Telegram.
- `GET /healthz`: the process is up.
- `GET /readyz`: the database answers and the inbox is not backed up.

Once the instance is stopping (`Intake.refusing`, set on SIGTERM), both `/readyz` and the
webhook answer 503: the load balancer takes it out of rotation, and Telegram sends what it
refused again, to an instance that is staying.
- `/app/...`: the dashboard, a Telegram Mini App (`handlers.dashboard`).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from csp_bot.bot.intake import Intake
from csp_bot.handlers.dashboard import dashboard_routes
from csp_bot.models.inbox import inbox_backlog

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Not ready while this many updates have waited longer than BACKLOG_AGE unhandled.
BACKLOG_LIMIT = 100
BACKLOG_AGE = timedelta(minutes=1)


def web_app(intake: Intake, *, webhook_path: str | None, secret: str | None) -> Starlette:
    """The routes: health and the dashboard always, the webhook when a path (and its
    secret) is given."""
    application = intake.application
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", _readyz(intake), methods=["GET"]),
        *dashboard_routes(application.services, bot_token=application.bot.token),
    ]
    if webhook_path is not None:
        assert secret, "webhook mode needs CSPBOT_WEBHOOK_SECRET"
        routes.append(Route(webhook_path, _webhook(intake, secret), methods=["POST"]))
    return Starlette(routes=routes)


async def healthz(request: Request) -> Response:
    """The process is up."""
    return PlainTextResponse("ok")


def _readyz(intake: Intake) -> Any:
    async def readyz(request: Request) -> Response:
        """Ready when the database answers and the inbox keeps up, and not stopping."""
        if intake.refusing:
            return JSONResponse({"ready": False, "reason": "stopping"}, 503)
        try:
            backlog = await intake.db.run(inbox_backlog, now=intake.clock(), older_than=BACKLOG_AGE)
        except Exception as failure:
            log.warning("not ready: the database does not answer (%s)", type(failure).__name__)
            return JSONResponse({"ready": False, "reason": "database unreachable"}, 503)
        if backlog >= BACKLOG_LIMIT:
            return JSONResponse({"ready": False, "reason": f"{backlog} updates waiting"}, 503)
        return JSONResponse({"ready": True, "waiting": backlog})

    return readyz


def _webhook(intake: Intake, secret: str) -> Any:
    async def webhook(request: Request) -> Response:
        """One update from Telegram: 200 once it is committed to the inbox."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return PlainTextResponse("forbidden", 403)
        if intake.refusing:
            return PlainTextResponse("stopping", 503)
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("not JSON", 400)
        if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
            return PlainTextResponse("not an update", 400)
        try:
            await intake.accept([payload])
        except Exception:
            log.exception(
                "could not store update %s; Telegram sends it again", payload["update_id"]
            )
            return PlainTextResponse("not stored", 503)
        return PlainTextResponse("ok")

    return webhook


def web_server(app: Starlette, listen: str) -> uvicorn.Server:
    """A uvicorn server for `app` on `host:port`, run inside the bot's event loop."""
    host, _, port = listen.rpartition(":")
    config = uvicorn.Config(
        app,
        host=host.strip("[]") or "0.0.0.0",
        port=int(port),
        log_level="warning",
        access_log=False,  # the path may be secret, and Telegram calls it for every update
        lifespan="off",
    )
    return EmbeddedServer(config)


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside the bot's loop: the bot's runner handles the signals, not uvicorn."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
