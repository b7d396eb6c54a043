"""The reminder layer: what is due when (pure functions of data and a clock), outbox, pacing.

It imports only `models`, and no Telegram types: `handlers.delivery` does the sending.
"""
