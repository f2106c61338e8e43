"""The integrations area in the app: the provider link pages, the outbox every contact
change writes for a linked provider, the delivery after each commit, and the exports
that "forget me" withdraws."""

from __future__ import annotations

from flask import Flask

from portal.core import signals
from portal.extensions import db
from portal.integrations.audit_texts import AUDIT_TEXTS
from portal.integrations.export import withdraw_on_erasure
from portal.integrations.service import write_outbox
from portal.integrations.tasks import listen_to_commits
from portal.integrations.views import bp

__all__ = ["AUDIT_TEXTS", "init_app"]


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    # process-wide and idempotent, like the session listener below
    signals.contact_changed.connect(write_outbox, weak=False)
    signals.before_erasure.connect(withdraw_on_erasure, weak=False)
    listen_to_commits(db.session)
