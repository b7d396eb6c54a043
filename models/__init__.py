"""The bottom layer, the domain: tables, database, values, access, plan import, operations.

It imports none of the other layers, and nothing here knows about Telegram. Operations are
keyword-only functions that take a SQLModel `Session`; the bot runs each one whole in a
worker thread (`Database.run`).
"""
