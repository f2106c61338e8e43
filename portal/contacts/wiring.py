"""The contacts area in the app: the list, the card, the groups."""

from __future__ import annotations

from flask import Flask

from portal.accounts.views import add_home_panel
from portal.contacts.audit_texts import AUDIT_TEXTS
from portal.contacts.views import bp, home_panel

__all__ = ["AUDIT_TEXTS", "init_app"]


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    add_home_panel(app, home_panel)  # contacts by status, the largest groups
