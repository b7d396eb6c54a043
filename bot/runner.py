"""Running the bot for real: long polling against Telegram (or any Bot API server)."""

from __future__ import annotations

from bot.app import build_application
from bot.context import Services
from bot.logs import configure_logging
from bot.settings import Settings
from bot.templating import Templates
from models.clock import Clock, system_clock
from models.db import Database
from models.migrate import upgrade


def make_services(settings: Settings, *, clock: Clock = system_clock) -> Services:
    """Open and migrate the database and build what every handler needs."""
    database = Database.from_url(settings.database_url)
    upgrade(database.engine)
    return Services(settings=settings, db=database, clock=clock, templates=Templates(settings.tz))


def run_polling(settings: Settings) -> int:
    """Run until interrupted; pending migrations are applied first."""
    token = settings.require_token()
    configure_logging(token=token)
    services = make_services(settings)
    application = build_application(services, token=token, base_url=settings.telegram_api_url)
    try:
        application.run_polling()
    finally:
        services.db.close()
    return 0
