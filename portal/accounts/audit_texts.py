"""The accounts area's audit events told as a sentence (merged by create_app)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.accounts.forms import ROLE_LABELS
from portal.core.audit import AuditEvent, AuditText

SETTING_LABELS = {
    "name": _l("Account name"),
    "timezone": _l("Timezone"),
    "default_locale": _l("Default language"),
    "automatic_backups": _l("Automatic backups"),
}


def _role(value: str) -> str:
    return str(ROLE_LABELS.get(value, value))


def _value(field: str, value) -> str:
    if isinstance(value, bool):
        return _("on") if value else _("off")
    return str(value)


def _settings_changed(event: AuditEvent) -> str:
    parts = []
    for field, change in (event.details or {}).items():
        parts.append(
            _(
                "%(setting)s: %(old)s → %(new)s",
                setting=str(SETTING_LABELS.get(field, field)),
                old=_value(field, change.get("old")),
                new=_value(field, change.get("new")),
            )
        )
    return _("Settings changed: %(changes)s", changes="; ".join(parts))


AUDIT_TEXTS: dict[str, AuditText] = {
    "user.login": lambda e: _("Signed in"),
    "user.password_reset": lambda e: _("Password reset"),
    "account.created": lambda e: _("Account created"),
    "account.settings_changed": _settings_changed,
    "member.added": lambda e: _(
        "%(email)s joined as %(role)s",
        email=e.details.get("email", ""),
        role=_role(e.details.get("role", "")),
    ),
    "member.invited": lambda e: _(
        "%(email)s invited as %(role)s",
        email=e.details.get("email", ""),
        role=_role(e.details.get("role", "")),
    ),
    "member.role_changed": lambda e: _(
        "Role of %(email)s changed from %(old)s to %(new)s",
        email=e.details.get("email", ""),
        old=_role(e.details.get("old", "")),
        new=_role(e.details.get("new", "")),
    ),
    "member.removed": lambda e: _(
        "%(email)s removed from the team", email=e.details.get("email", "")
    ),
    "account.sender_requested": lambda e: _(
        "Confirmation mail sent to the new sender address %(email)s",
        email=e.details.get("email", ""),
    ),
    "account.sender_confirmed": lambda e: _(
        "Sender address %(email)s confirmed", email=e.details.get("new", "")
    ),
    "account.sender_removed": lambda e: _("Own sender address removed"),
}
