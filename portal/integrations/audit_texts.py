"""The integrations area's audit events told as a sentence (merged by create_app)."""

from __future__ import annotations

from flask_babel import gettext as _

from portal.core.audit import AuditText
from portal.integrations import profiles


def label(e) -> str:
    profile = profiles.PROFILES.get(e.details.get("profile", ""))
    return str(profile.label) if profile else e.details.get("profile", "")


AUDIT_TEXTS: dict[str, AuditText] = {
    "integration.linked": lambda e: _(
        "Provider linked: %(provider)s (%(host)s)",
        provider=label(e),
        host=e.details.get("host", ""),
    ),
    "integration.reset": lambda e: _(
        "Link to %(provider)s reset by the support team: %(reason)s",
        provider=label(e),
        reason=e.details.get("reason", ""),
    ),
    "integration.mapping_accepted": lambda e: _(
        "Tag mapping for the provider accepted (%(num)d tags)", num=e.details.get("tags", 0)
    ),
    "export.downloaded": lambda e: _(
        "Export downloaded (%(format)s, %(what)s)",
        format=str(e.details.get("format", "")).upper(),
        what=e.details.get("group") or _("all contacts"),
    ),
}
