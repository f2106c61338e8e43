"""The accounts area in the app: sign-in, the team, the settings, the account's home."""

from __future__ import annotations

from flask import Flask

from portal.accounts import service
from portal.accounts.audit_texts import AUDIT_TEXTS
from portal.accounts.views import account_bp, bp
from portal.extensions import login_manager

__all__ = ["AUDIT_TEXTS", "init_app"]


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(account_bp)
    # the session and the remember cookie name a sign-in, not a user id: a cookie of an
    # ended sign-in opens nothing (portal.accounts.service.start_login)
    login_manager.user_loader(service.user_for_login)
