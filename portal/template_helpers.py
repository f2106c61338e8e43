"""Globals and filters every template may use."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Flask, current_app, g, request
from flask_babel import format_datetime, format_decimal, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal import clock, i18n, tenancy
from portal.accounts.forms import ROLE_LABELS
from portal.backups.models import Backup, BackupReason
from portal.imports import forms as import_forms


def _nav_items():
    """The account navigation; an area appears once its page exists."""

    items = [
        ("contacts.list_contacts", _l("Contacts")),
        ("contacts.list_groups", _l("Groups")),
        ("imports.list_imports", _l("Imports")),
        ("backups.list_backups", _l("Backups")),
        ("account.settings", _l("Settings")),
        ("integrations.overview", _l("Integrations")),
    ]
    return [
        (endpoint, label) for endpoint, label in items if endpoint in current_app.view_functions
    ]


def _lang_url(code: str) -> str:
    """The current page in another language (works on error pages too)."""
    args = request.args.to_dict(flat=False)
    args["lang"] = [code]
    return f"{request.path}?{urlencode(args, doseq=True)}"


def _role_label(role: str) -> str:

    return str(ROLE_LABELS.get(role, role))


def _import_label(table: str):
    def label(value: str) -> str:

        return import_forms.label(getattr(import_forms, table), value)

    return label


# --- display helpers of the backups pages (the page and the staff console) ------------

BACKUP_REASON_LABELS = {
    BackupReason.IMPORT.value: _l("Before an import"),
    BackupReason.GROUP_DELETED.value: _l("Before the group was deleted"),
    BackupReason.MANUAL.value: _l("Made by hand"),
}


def days_left(backup: Backup, now: datetime | None = None, tz: ZoneInfo | None = None) -> int:
    """Calendar days (in the reader's timezone) until the cleanup removes it: 30 on the
    day it was made, 0 on its last day."""
    tz = tz or ZoneInfo("UTC")
    today = (now or clock.now()).astimezone(tz).date()
    return max(0, (backup.expires_at.astimezone(tz).date() - today).days)


def expiry_text(backup: Backup, now: datetime | None = None, tz: ZoneInfo | None = None) -> str:
    days = days_left(backup, now, tz)
    if days == 0:
        return _("today")
    return ngettext("in %(num)d day", "in %(num)d days", days)


def human_size(size: int) -> str:
    """1.5 MB / 1,5 MB - in the reader's number format."""
    for factor, label in (
        (1024**3, _l("%(size)s GB")),
        (1024**2, _l("%(size)s MB")),
        (1024, _l("%(size)s KB")),
    ):
        if size >= factor:
            return str(label) % {"size": format_decimal(size / factor, format="#,##0.#")}
    return ngettext("%(num)d byte", "%(num)d bytes", size)


def register_template_helpers(app: Flask) -> None:
    @app.context_processor
    def portal_globals():
        account = g.get("account")
        return {
            "current_account": account,
            "current_membership": g.get("membership"),
            "my_accounts": (
                # no user outside a request: a mail rendered by a worker
                tenancy.user_accounts(current_user)
                if current_user and current_user.is_authenticated
                else []
            ),
            "nav_items": _nav_items() if account is not None else [],
            "language_names": i18n.LANGUAGE_NAMES,
            "current_language": i18n.current_language(),
            "reader_timezone": i18n.select_timezone(),
            "lang_url": _lang_url,
            "can": tenancy.can,
            "has_endpoint": lambda endpoint: endpoint in current_app.view_functions,
            "role_label": _role_label,
            "mode_label": _import_label("MODE_LABELS"),
            "status_label": _import_label("STATUS_LABELS"),
            "source_label": _import_label("SOURCE_LABELS"),
        }

    app.jinja_env.filters["datetime"] = lambda value, fmt="medium": (
        format_datetime(value, fmt) if value else ""
    )
    app.jinja_env.filters["number"] = lambda value: format_decimal(value or 0)
