"""The contacts area's audit events told as a sentence (merged by create_app)."""

from __future__ import annotations

from flask_babel import gettext as _

from portal.core.audit import AuditText


def backups(value) -> str:
    return _("on") if value else _("off")


def settings_changed(e) -> str:
    change = (e.details.get("changes") or {}).get("automatic_backups") or {}
    return _(
        "Automatic backups of group “%(name)s”: %(old)s → %(new)s",
        name=e.details.get("name", ""),
        old=backups(change.get("old")),
        new=backups(change.get("new")),
    )


AUDIT_TEXTS: dict[str, AuditText] = {
    "group.created": lambda e: _("Group “%(name)s” created", name=e.details.get("name")),
    "group.renamed": lambda e: _(
        "Group “%(old)s” renamed to “%(new)s”",
        old=e.details.get("old"),
        new=e.details.get("new"),
    ),
    "group.deleted": lambda e: _("Group “%(name)s” deleted", name=e.details.get("name")),
    "group.settings_changed": settings_changed,
    "contact.updated": lambda e: _("Contact %(id)s edited", id=e.object_id),
    # the label the account gave it ("Geburtstag"), the key for older entries
    "custom_field.created": lambda e: _(
        "Custom field “%(key)s” created", key=e.details.get("label") or e.details.get("key")
    ),
}
