"""Alembic migrations for the CSP Bot schema."""
