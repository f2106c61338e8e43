"""The backups area in the app: the backups page, and the automatic backup before a
portal import and before a group is deleted (receivers of portal.core.signals)."""

from __future__ import annotations

from flask import Flask

from portal.accounts.views import add_home_panel
from portal.backups.audit_texts import AUDIT_TEXTS
from portal.backups.snapshot import backup_before_group_delete, backup_before_import
from portal.backups.views import bp, home_panel
from portal.core import signals

__all__ = ["AUDIT_TEXTS", "init_app"]


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    add_home_panel(app, home_panel)  # the newest backups
    # process-wide and idempotent (blinker keeps one entry per receiver): tests create
    # many apps in one process
    signals.before_import.connect(backup_before_import, weak=False)
    signals.before_group_delete.connect(backup_before_group_delete, weak=False)
