"""The support area's audit events told as a sentence (merged by create_app)."""

from __future__ import annotations

from datetime import datetime

from flask_babel import format_datetime, ngettext
from flask_babel import gettext as _

from portal.core.audit import AuditText


def until(e) -> str:
    try:
        return format_datetime(datetime.fromisoformat(e.details.get("until", "")), "short")
    except (TypeError, ValueError):
        return ""


def viewed(e) -> str:
    page = e.details.get("page")
    reason = e.details.get("reason", "")
    if page == "deleted":
        return ngettext(
            "Support looked at the contacts to be deleted (%(num)d shown). Reason: %(reason)s",
            "Support looked at the contacts to be deleted (%(num)d shown). Reason: %(reason)s",
            int(e.details.get("count", 0)),
            reason=reason,
        )
    sentences = {
        "overview": lambda: _(
            "Support looked at the account overview. Reason: %(reason)s", reason=reason
        ),
        "backups": lambda: _("Support looked at the backups. Reason: %(reason)s", reason=reason),
        "imports": lambda: _(
            "Support looked at the import history. Reason: %(reason)s", reason=reason
        ),
        "audit": lambda: _("Support looked at the audit log. Reason: %(reason)s", reason=reason),
    }
    sentence = sentences.get(page)
    return sentence() if sentence else e.action


def looked_up(e) -> str:
    if e.details.get("forgotten"):
        return _(
            "Support looked up an email address that was forgotten in this account; "
            "nothing about the person was shown. Reason: %(reason)s",
            reason=e.details.get("reason", ""),
        )
    return _(
        "Support looked up contact no. %(id)s by its email address. Reason: %(reason)s",
        id=e.object_id,
        reason=e.details.get("reason", ""),
    )


AUDIT_TEXTS: dict[str, AuditText] = {
    "support.access_opened": lambda e: _(
        "Support accessed your account. Reason: %(reason)s (access until %(until)s)",
        reason=e.details.get("reason", ""),
        until=until(e),
    ),
    "support.access_closed": lambda e: _(
        "Support closed its access to your account. Reason was: %(reason)s",
        reason=e.details.get("reason", ""),
    ),
    "support.viewed": viewed,
    "support.contact_looked_up": looked_up,
    "support.backup_restore_requested": lambda e: _(
        "Support asked to restore a backup of the group “%(group)s”. Reason: %(reason)s",
        group=e.details.get("group", ""),
        reason=e.details.get("reason", ""),
    ),
    "support.import_undo_requested": lambda e: _(
        "Support asked to undo an import into group “%(group)s”. Reason: %(reason)s",
        group=e.details.get("group", ""),
        reason=e.details.get("reason", ""),
    ),
}
