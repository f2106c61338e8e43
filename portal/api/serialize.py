"""Rows as the API shows them (see schemas.COMPONENTS), and tenant-safe lookups."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flask import g
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.api import schemas as s
from portal.api.core import ApiError
from portal.contacts import counts as contact_counts
from portal.contacts import queries
from portal.contacts.models import Contact, Group, Subscription, Tag
from portal.extensions import db
from portal.tenancy import owned

MAX_ID = s.MAX_ID  # no id is larger (BIGINT)

NOT_FOUND = {
    "Contact": _l("There is no contact with this id."),
    "Group": _l("There is no group with this id."),
    "Tag": _l("There is no tag with this id."),
    "ImportJob": _l("There is no import with this id."),
    "Backup": _l("There is no backup with this id, or it has expired."),
}


def owned_or_404(model, object_id: int | None):
    """The row of the key's account with this id; another account's id is a 404."""
    obj = owned(model, object_id)
    if obj is None:
        raise ApiError(404, NOT_FOUND.get(model.__name__))
    return obj


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def tag_json(tag: Tag) -> dict[str, Any]:
    return {"id": tag.id, "name": tag.name}


def subscription_json(sub: Subscription, group_name: str) -> dict[str, Any]:
    return {
        "group_id": sub.group_id,
        "group_name": group_name,
        "active": bool(sub.active),
        "activated_at": iso(sub.activated_at),
        "deactivated_at": iso(sub.deactivated_at),
        "optout_reason": sub.optout_reason,
        "source": sub.source or "",
    }


def _state(contact: Contact, subs: Iterable[Subscription]) -> str:
    if contact.is_deleted:
        return "deleted"
    flags = {bool(s.active) for s in subs}
    return "unsubscribed" if flags == {False} else "active"


def contact_json(
    contact: Contact,
    *,
    tags: list[Tag] | None = None,
    subscriptions: list[tuple[Subscription, str]] | None = None,
) -> dict[str, Any]:
    if subscriptions is None:
        subscriptions = [(s, grp.name) for s, grp in queries.contact_subscriptions(contact)]
    if tags is None:
        tags = list(contact.tags)
    return {
        "id": contact.id,
        "email": contact.email,
        "first_name": contact.first_name or "",
        "last_name": contact.last_name or "",
        "fields": dict(contact.fields or {}),
        "status": contact.status,
        "state": _state(contact, [s for s, _ in subscriptions]),
        "deleted_at": iso(contact.deleted_at),
        "created_at": iso(contact.created_at),
        "updated_at": iso(contact.updated_at),
        "tags": [tag_json(t) for t in tags],
        "subscriptions": [subscription_json(s, name) for s, name in subscriptions],
    }


def contacts_json(page_contacts: list[Contact], tags: dict[int, list[Tag]]) -> list[dict]:
    """A page of contacts with their tags (already loaded) and their subscriptions
    (one query for the whole page)."""
    ids = [c.id for c in page_contacts]
    subs: dict[int, list[tuple[Subscription, str]]] = {i: [] for i in ids}
    if ids:
        rows = db.session.execute(
            select(Subscription, Group.name)
            .join(Group, Group.id == Subscription.group_id)
            .where(Subscription.contact_id.in_(ids))
            .order_by(Group.name)
        )
        for sub, name in rows:
            subs[sub.contact_id].append((sub, name))
    return [
        contact_json(c, tags=tags.get(c.id, []), subscriptions=subs[c.id]) for c in page_contacts
    ]


def group_json(group: Group, counts: contact_counts.GroupCounts | None = None) -> dict[str, Any]:
    if counts is None:
        counts = contact_counts.group_counts(g.account, [group.id])[group.id]
    return {
        "id": group.id,
        "name": group.name,
        "automatic_backups": bool(group.automatic_backups),
        "created_at": iso(group.created_at),
        "counts": {
            "active": counts.active,
            "inactive": counts.inactive,
            "to_be_deleted": counts.to_be_deleted,
        },
    }
