"""The lifecycle area's audit events told as a sentence (merged by create_app)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext

from portal.core.audit import AuditText


def count(e) -> int:
    return int(e.details.get("count", 0))


def forgotten(e) -> str:
    return ngettext(
        "%(num)d contact erased for good (“forget me”, %(records)d records); the "
        "address is kept only as a keyed hash.",
        "%(num)d contacts erased for good (“forget me”, %(records)d records); the "
        "addresses are kept only as keyed hashes.",
        int(e.details.get("addresses") or e.details.get("contacts") or 0),
        records=sum(
            int(e.details.get(k, 0))
            for k in (
                "contacts",
                "subscriptions",
                "tag_links",
                "activities",
                "failed_rows",
                "staged_rows",
                "signup_requests",
            )
        ),
    )


AUDIT_TEXTS: dict[str, AuditText] = {
    "contacts.deleted": lambda e: ngettext(
        "%(num)d contact marked “to be deleted”",
        "%(num)d contacts marked “to be deleted”",
        count(e),
    ),
    "contacts.restored": lambda e: ngettext(
        "%(num)d contact restored", "%(num)d contacts restored", count(e)
    ),
    "contacts.purged": lambda e: ngettext(
        "Nightly purge: %(num)d deleted contact removed for good",
        "Nightly purge: %(num)d deleted contacts removed for good",
        count(e),
    ),
    "contacts.forgotten": forgotten,
    "lifecycle.draft_cancelled": lambda e: ngettext(
        "A prepared action on %(num)d contact was cancelled before it started; "
        "nothing was changed.",
        "A prepared action on %(num)d contacts was cancelled before it started; "
        "nothing was changed.",
        count(e),
    ),
    "signup.confirmed": lambda e: _(
        "Sign-up through the form of “%(group)s” confirmed", group=e.details.get("group")
    ),
    "group.form_link_renewed": lambda e: _(
        "New address for the sign-up form of “%(name)s”", name=e.details.get("name")
    ),
}
