"""The top layer, assembly: settings, building and running the Application, the CLI, the demo."""

import os

# Opt in to PTB 22's timedelta durations (RetryAfter.retry_after and friends) now, instead
# of a deprecation warning on every 429 Telegram answers.
os.environ.setdefault("PTB_TIMEDELTA", "true")
