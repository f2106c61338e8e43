"""The backups area's audit events told as a sentence (merged by create_app)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext

from portal.backups.models import BackupReason
from portal.core.audit import AuditText


def created(e) -> str:
    reason = e.details.get("reason")
    count = int(e.details.get("contacts") or 0)
    if reason == BackupReason.GROUP_DELETED:
        return ngettext(
            "Backup of group “%(name)s” with %(num)d contact saved before its deletion",
            "Backup of group “%(name)s” with %(num)d contacts saved before its deletion",
            count,
            name=e.details.get("name", ""),
        )
    return ngettext(
        "Backup of group “%(name)s” with %(num)d contact saved before an import",
        "Backup of group “%(name)s” with %(num)d contacts saved before an import",
        count,
        name=e.details.get("name", ""),
    )


def undone(e) -> str:
    return _(
        "Import into group “%(name)s” undone: %(restored)s contacts set back, %(removed)s "
        "removed from the group, %(deleted)s deleted",
        name=e.details.get("group", ""),
        restored=e.details.get("restored", 0),
        removed=e.details.get("removed", 0),
        deleted=e.details.get("deleted", 0),
    )


AUDIT_TEXTS: dict[str, AuditText] = {
    "backup.created": created,
    "backup.downloaded": lambda e: _(
        "Backup of group “%(name)s” downloaded", name=e.details.get("name", "")
    ),
    "backup.restored": lambda e: _(
        "Backup of group “%(name)s” restored", name=e.details.get("name", "")
    ),
    "import.undone": undone,
}
