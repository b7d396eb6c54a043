"""Errors the domain raises for the caller to show; their text is fit for a user to read."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses, with a reason a user can act on."""


class NotFound(DomainError):
    """Something named does not exist."""
