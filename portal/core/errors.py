"""The one refusal every area raises and every page, API call and command catches."""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal the user should read; the message is already translated (lazy)."""
