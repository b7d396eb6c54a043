"""The Telegram layer: context, one module per feature, templates, and reminder delivery.

It imports `scheduler` and `models`, never `bot`; features are registered in
`handlers.registry`.
"""
