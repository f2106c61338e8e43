"""Domain events: what happened to which contact, told by the services that did it.

Services call emit() inside the transaction that makes the change; the receivers of
portal.core.signals.contact_changed (the integrations area writes an outbox row per event
for a linked provider, connected in its init_app) add their rows
to the same session, so an event exists exactly when its change was committed. An event
carries ids and small facts only — never a copy of the person's data: whoever needs the
contact reads its current state when it sends (and finds nothing after "forget me")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from portal.core import signals

CONTACT_CREATED = "contact.created"
CONTACT_UPDATED = "contact.updated"
CONTACT_DELETED = "contact.deleted"  # soft: "to be deleted"
CONTACT_RESTORED = "contact.restored"
CONTACT_PURGED = "contact.purged"  # removed for good by the nightly purge
CONTACT_FORGOTTEN = "contact.forgotten"
SUBSCRIPTION_CHANGED = "subscription.changed"
TAG_ADDED = "tag.added"
TAG_REMOVED = "tag.removed"
CONTACT_SYNCED = "contact.synced"  # sent by a full sync

KINDS = (
    CONTACT_CREATED,
    CONTACT_UPDATED,
    CONTACT_DELETED,
    CONTACT_RESTORED,
    CONTACT_PURGED,
    CONTACT_FORGOTTEN,
    SUBSCRIPTION_CHANGED,
    TAG_ADDED,
    TAG_REMOVED,
    CONTACT_SYNCED,
)


@dataclass(frozen=True)
class Event:
    """`contact_ids`, or for large sets `id_select`: a SELECT of contact ids that
    listeners run set-based (INSERT ... SELECT) before the change removes the rows."""

    account_id: int
    kind: str
    contact_ids: tuple[int, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    id_select: Any = None


def listened() -> bool:
    """Whether anybody receives the events (a linked provider's area): without, the
    services skip building them."""
    return bool(signals.contact_changed.receivers)


def emit(account_id: int, kind: str, contact_ids: Iterable[int], **data: Any) -> None:
    """Tell the receivers of signals.contact_changed; a no-op when nobody listens."""
    if not listened():
        return
    ids = tuple(contact_ids)
    if not ids:
        return
    signals.contact_changed.send(
        Event(account_id=account_id, kind=kind, contact_ids=ids, data=data)
    )


def emit_select(account_id: int, kind: str, id_select: Any, **data: Any) -> None:
    """The same for every contact id the SELECT returns (a group's members, say)."""
    if not listened():
        return
    signals.contact_changed.send(
        Event(account_id=account_id, kind=kind, data=data, id_select=id_select)
    )
