"""Delivering the outbox to the linked provider: signed JSON, in order, with retries.

- Strictly in id order per link, so every contact's events arrive in the order they
  happened. Up to BATCH events go in one POST: {"events": [...]}.
- The body is built when it is sent, from the contact's current state (the outbox keeps
  no copy of anyone's data); a contact that is gone is sent as {"id": …, "gone": true}.
- Signature (like Stripe's): header `X-Portal-Signature: t=<unix time>,v1=<hex>`, where
  v1 = HMAC-SHA256(secret, "<t>.<body>"). `X-Portal-Event-Ids` names the events, so a
  receiver can drop a batch it has already seen (delivery is at least once).
- A failed batch (network error or any status outside 2xx) waits 30 s, 1, 2, 4 … minutes
  (at most RETRY_CAP) and blocks the events behind it; after MAX_AGE it is marked failed
  (visible in the delivery log, can be sent again) and the queue moves on. Nothing waits
  in Redis: the outbox is in the database, so a receiver down for an hour loses nothing.
- One worker delivers a link at a time: a lease on the link row, taken with a
  conditional UPDATE (works on SQLite and PostgreSQL alike)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import or_, select, update

from portal import clock
from portal.accounts.models import Account
from portal.contacts.models import Contact, Group, Subscription, Tag
from portal.contacts.queries import tags_by_contact
from portal.extensions import db
from portal.integrations import profiles, targets
from portal.integrations.models import (
    EventStatus,
    LinkStatus,
    OutgoingEvent,
    ProviderLink,
    TagMapping,
)

log = logging.getLogger(__name__)

BATCH = 100
TIMEOUT_SECONDS = 10
RETRY_FIRST = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
MAX_AGE = timedelta(days=3)
LEASE = timedelta(minutes=2)
USER_AGENT = "RecipientPortal/1.0 (+webhooks)"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str, body: bytes, header: str, *, tolerance: int = 300, now: float | None = None
) -> bool:
    """What a receiver does (and what the tests' receiver does)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def retry_delay(attempts: int) -> timedelta:
    return min(RETRY_FIRST * (2 ** max(attempts - 1, 0)), RETRY_CAP)


# --- the body ----------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class _Contacts:
    """The current state of a batch's contacts, in four queries."""

    def __init__(self, link: ProviderLink, ids: set[int]):
        self.by_id: dict[int, Contact] = {
            c.id: c
            for c in db.session.scalars(
                select(Contact).where(Contact.account_id == link.account_id, Contact.id.in_(ids))
            )
        }
        self.tags: dict[int, list[Tag]] = tags_by_contact(ids)
        self.groups: dict[int, list[tuple[Subscription, str]]] = {}
        for sub, name in db.session.execute(
            select(Subscription, Group.name)
            .join(Group, Group.id == Subscription.group_id)
            .where(Subscription.contact_id.in_(ids))
            .order_by(Group.name)
        ):
            self.groups.setdefault(sub.contact_id, []).append((sub, name))
        self.mapping = {
            m.tag_id: m
            for m in db.session.scalars(select(TagMapping).where(TagMapping.link_id == link.id))
        }
        self.profile = profiles.PROFILES[link.profile]

    def _tag(self, tag: Tag) -> Any:
        mapped = self.mapping.get(tag.id)
        if self.profile.numeric_ids:
            return {
                "id": mapped.remote_id if mapped else None,
                "name": mapped.remote_name if mapped else tag.name,
            }
        return mapped.remote_name if mapped else tag.name

    def describe(self, contact_id: int | None, kind: str) -> dict[str, Any] | None:
        if contact_id is None:
            return None
        contact = self.by_id.get(contact_id)
        if contact is None or kind in ("contact.forgotten", "contact.purged"):
            return {"id": contact_id, "gone": True}
        return {
            "id": contact.id,
            "email": contact.email,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "status": contact.status,
            "fields": contact.fields or {},
            "tags": [self._tag(t) for t in self.tags.get(contact.id, [])],
            "groups": [
                {
                    "name": name,
                    "active": sub.active,
                    "signed_up_at": _iso(sub.activated_at),
                    "signed_off_at": _iso(sub.deactivated_at),
                    "optout_reason": sub.optout_reason,
                }
                for sub, name in self.groups.get(contact.id, [])
            ],
        }


def build_body(link: ProviderLink, batch: list[OutgoingEvent]) -> bytes:
    account = db.session.get(Account, link.account_id)
    state = _Contacts(link, {e.contact_id for e in batch if e.contact_id is not None})
    payload = {
        "account": account.slug,
        "events": [
            {
                "id": e.id,
                "type": e.kind,
                "occurred_at": _iso(e.created_at),
                "contact": state.describe(e.contact_id, e.kind),
                "data": e.data or {},
            }
            for e in batch
        ],
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


# --- sending ---------------------------------------------------------------------------


@dataclass
class Outcome:
    delivered: int = 0
    failed_attempts: int = 0
    given_up: int = 0
    waiting: bool = False  # stopped at a batch whose next attempt is later


def _take_lease(link_id: int, now: datetime) -> bool:
    result = db.session.execute(
        update(ProviderLink)
        .where(
            ProviderLink.id == link_id,
            or_(ProviderLink.delivering_until.is_(None), ProviderLink.delivering_until < now),
        )
        .values(delivering_until=now + LEASE)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def _release_lease(link_id: int) -> None:
    db.session.execute(
        update(ProviderLink)
        .where(ProviderLink.id == link_id)
        .values(delivering_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _next_batch(link: ProviderLink) -> list[OutgoingEvent]:
    return list(
        db.session.scalars(
            select(OutgoingEvent)
            .where(
                OutgoingEvent.link_id == link.id,
                OutgoingEvent.status == EventStatus.PENDING.value,
            )
            .order_by(OutgoingEvent.id)
            .limit(BATCH)
        )
    )


def _post(
    http: requests.Session,
    link: ProviderLink,
    body: bytes,
    batch: list[OutgoingEvent],
    now: datetime,
):
    """One POST through the guarded session (targets.py): public addresses only,
    checked at the connection; a redirect is an answer, never followed."""
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Portal-Signature": sign(link.secret, body, int(now.timestamp())),
        "X-Portal-Event-Ids": f"{batch[0].id}-{batch[-1].id}",
    }
    response = http.post(
        link.url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
    )
    response.close()
    return response


def deliver(link_id: int, *, now: datetime | None = None, max_batches: int = 1000) -> Outcome:
    """Send what is due for the link, batch after batch, until the outbox is empty, a
    batch fails, or the next attempt lies in the future."""
    outcome = Outcome()
    now = now or clock.now()
    if not _take_lease(link_id, now):
        return outcome
    http = targets.session()
    try:
        for _ in range(max_batches):
            link = db.session.get(ProviderLink, link_id)
            if link is None or link.status != LinkStatus.LINKED.value:
                break
            batch = _next_batch(link)
            if not batch:
                break
            head = batch[0]
            if head.next_attempt_at is not None and head.next_attempt_at > now:
                outcome.waiting = True
                break
            # a batch carries only events that share the head's retry state
            batch = [e for e in batch if e.attempts == head.attempts] or [head]
            if not _send(http, link, batch, now, outcome):
                break
            db.session.refresh(link)
    finally:
        http.close()
        _release_lease(link_id)
    return outcome


def _send(
    http: requests.Session,
    link: ProviderLink,
    batch: list[OutgoingEvent],
    now: datetime,
    outcome: Outcome,
) -> bool:
    body = build_body(link, batch)
    status, error = None, ""
    try:
        response = _post(http, link, body, batch, now)
        status = response.status_code
        ok = 200 <= status < 300
        if not ok:
            error = targets.REDIRECT if 300 <= status < 400 else f"HTTP {status}"
    except (requests.RequestException, targets.TargetRefused) as exc:
        # the log says what kind of failure, never the connection's own text (hosts,
        # ports, "connection refused": what a scan of the network would want to know)
        ok, error = False, targets.failure_code(exc)
        log.info("delivery to link %s: %s", link.id, exc)
    for event in batch:
        event.last_status = status
        event.attempts += 1
        if ok:
            event.status = EventStatus.DELIVERED.value
            event.delivered_at = now
            event.last_error = ""
        else:
            event.last_error = error
            if now - event.created_at > MAX_AGE:
                event.status = EventStatus.FAILED.value
            else:
                event.next_attempt_at = now + retry_delay(event.attempts)
    db.session.commit()
    if ok:
        outcome.delivered += len(batch)
        return True
    if all(e.status == EventStatus.FAILED.value for e in batch):
        outcome.given_up += len(batch)
        return True  # move on behind the batch that was given up
    outcome.failed_attempts += 1
    log.warning("delivery to link %s failed: %s", link.id, error)
    return False


def resend(event: OutgoingEvent) -> None:
    """The owner sends a failed event again: it goes to the end of the queue."""
    copy = OutgoingEvent(
        account_id=event.account_id,
        link_id=event.link_id,
        contact_id=event.contact_id,
        kind=event.kind,
        data={**(event.data or {}), "resent_from": event.id},
        sync_id=event.sync_id,
    )
    db.session.add(copy)
    db.session.flush()


def links_with_work(now: datetime | None = None) -> list[int]:
    now = now or clock.now()
    return list(
        db.session.scalars(
            select(OutgoingEvent.link_id)
            .join(ProviderLink, ProviderLink.id == OutgoingEvent.link_id)
            .where(
                ProviderLink.status == LinkStatus.LINKED.value,
                OutgoingEvent.status == EventStatus.PENDING.value,
                or_(OutgoingEvent.next_attempt_at.is_(None), OutgoingEvent.next_attempt_at <= now),
            )
            .distinct()
        )
    )


def log_for(link: ProviderLink, limit: int = 50) -> list[OutgoingEvent]:
    return list(
        db.session.scalars(
            select(OutgoingEvent)
            .where(OutgoingEvent.link_id == link.id)
            .order_by(OutgoingEvent.id.desc())
            .limit(limit)
        )
    )


def counts_for(link: ProviderLink) -> dict[str, int]:
    rows = db.session.execute(
        select(OutgoingEvent.status, db.func.count())
        .where(OutgoingEvent.link_id == link.id)
        .group_by(OutgoingEvent.status)
    )
    counts = {s.value: 0 for s in EventStatus}
    counts.update(dict(rows.all()))
    return counts
