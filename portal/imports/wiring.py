"""The imports area in the app: upload, mapping, check, progress and report pages."""

from __future__ import annotations

from flask import Flask

from portal.accounts.views import add_home_panel
from portal.imports.audit_texts import AUDIT_TEXTS
from portal.imports.views import bp, home_panel

__all__ = ["AUDIT_TEXTS", "init_app"]


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    add_home_panel(app, home_panel)  # running and latest imports
