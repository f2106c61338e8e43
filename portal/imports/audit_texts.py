"""The imports area's audit events told as a sentence (merged by create_app)."""

from __future__ import annotations

from flask_babel import gettext as _

from portal.core.audit import AuditText


def finished(e) -> str:
    d = e.details or {}
    names = ("created", "updated", "restored", "reactivated", "unchanged")
    counts = {name: d.get(name, 0) for name in names}
    counts["skipped"] = d.get("skipped", 0) + d.get("invalid", 0)
    if d.get("group"):
        return _(
            "Import into group “%(group)s” finished: %(created)s new, %(updated)s "
            "updated, %(restored)s restored, %(reactivated)s reactivated, %(unchanged)s "
            "unchanged, %(skipped)s skipped or invalid",
            group=d["group"],
            **counts,
        )
    return _(
        "Import finished: %(created)s new, %(updated)s updated, %(restored)s restored, "
        "%(reactivated)s reactivated, %(unchanged)s unchanged, %(skipped)s skipped or "
        "invalid",
        **counts,
    )


AUDIT_TEXTS: dict[str, AuditText] = {
    "import.finished": finished,
    "import.discarded": lambda e: _(
        "Import of “%(file)s” discarded before it ran", file=(e.details or {}).get("file", "")
    ),
}
