"""The API area in the app: /api/v1 (CSRF-exempt, no cookies) and the API key pages
under /a/<account>/settings/api."""

from __future__ import annotations

from flask import Flask

from portal.api import (
    core,
    endpoints,  # noqa: F401 - the endpoints declare their operations on core.bp
)
from portal.api.audit_texts import AUDIT_TEXTS

__all__ = ["AUDIT_TEXTS", "init_app"]


def init_app(app: Flask) -> None:
    core.init_app(app)
