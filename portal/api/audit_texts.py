"""The api area's audit events told as a sentence (merged by create_app)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.core.audit import AuditText

scopes = {"read": _l("read"), "write": _l("read and write")}

AUDIT_TEXTS: dict[str, AuditText] = {
    "api_key.created": lambda e: _(
        "API key “%(name)s” created (%(scope)s)",
        name=e.details.get("name", ""),
        scope=str(scopes.get(e.details.get("scope"), e.details.get("scope", ""))),
    ),
    "api_key.revoked": lambda e: _("API key “%(name)s” revoked", name=e.details.get("name", "")),
    "api.import_started": lambda e: _(
        "Import into “%(group)s” started through the API",
        group=e.details.get("group", ""),
    ),
}
