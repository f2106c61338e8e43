"""The support area in the app: the staff console under /support/ (staff only), the
account's own log of staff access, and the staff actions other areas' services offer."""

from __future__ import annotations

from flask import Flask

from portal.support import account_views, views
from portal.support.audit_texts import AUDIT_TEXTS
from portal.support.describe import describe_event
from portal.support.integration_actions import RESET_INTEGRATION

__all__ = ["AUDIT_TEXTS", "init_app"]


def init_app(app: Flask) -> None:
    app.register_blueprint(views.bp)  # /support/, staff only
    app.register_blueprint(account_views.bp)  # the account's own log of staff access
    views.add_account_action(app, RESET_INTEGRATION)
    # the audit log's sentences, in every page that lists events (the group page, the
    # account's log, the console): the texts are the areas', merged by create_app
    app.add_template_global(describe_event, "describe_event")
