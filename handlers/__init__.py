"""The Telegram face of CSP Bot: one module per feature, registered in `handlers.registry`."""
