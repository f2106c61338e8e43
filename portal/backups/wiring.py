"""How the backups area hooks into the others: an automatic snapshot before a portal
import and before a portal group deletion (imports.before_import,
contacts.before_group_delete), and the audit log's texts for backup events.

Imported by backups/views.py, so every app that registers the backups pages has these
rules; register_hooks is idempotent (create_app may run more than once per process)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext

from portal.backups.models import BackupReason
from portal.backups.snapshot import backup_before_group_delete, backup_before_import
from portal.contacts import service as contacts
from portal.imports import service as imports


def register_hooks() -> None:
    """Idempotent: create_app may run more than once per process (tests)."""
    if backup_before_import not in imports.before_import:
        imports.before_import.append(backup_before_import)
    if backup_before_group_delete not in contacts.before_group_delete:
        contacts.before_group_delete.append(backup_before_group_delete)


register_hooks()


def _register_audit_texts() -> None:
    from portal.support.describe import DESCRIPTIONS

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

    DESCRIPTIONS.update(
        {
            "backup.created": created,
            "backup.downloaded": lambda e: _(
                "Backup of group “%(name)s” downloaded", name=e.details.get("name", "")
            ),
            "backup.restored": lambda e: _(
                "Backup of group “%(name)s” restored", name=e.details.get("name", "")
            ),
            "import.undone": undone,
        }
    )


_register_audit_texts()
