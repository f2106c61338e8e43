"""The lifecycle area in the app: delete, restore, forget me, mass management, the
public sign-up form — and its buttons on the contacts pages."""

from __future__ import annotations

from flask import Flask

from portal.accounts.views import add_home_panel
from portal.contacts.views import add_actions
from portal.lifecycle.audit_texts import AUDIT_TEXTS
from portal.lifecycle.views import (
    BULK_ACTIONS,
    CARD_ACTIONS,
    bp,
    card_extras,
    home_panel,
    signup_bp,
)

__all__ = ["AUDIT_TEXTS", "init_app"]


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(signup_bp)
    add_actions(app, bulk=BULK_ACTIONS, card=CARD_ACTIONS, card_extras=[card_extras])
    add_home_panel(app, home_panel)  # the next nightly purge
