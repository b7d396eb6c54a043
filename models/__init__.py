"""The CSP domain: tables, the database, migrations, plan import and domain operations.

Nothing here knows about Telegram. Operations are keyword-only functions that take a
SQLModel `Session`; the bot runs each one whole in a worker thread (`Database.run`).
"""
