"""The full sync after a provider is linked: one `contact.synced` event per contact.

The run walks the account's contacts (not those "to be deleted") by id and writes their
events to the outbox in batches; each batch commits its events together with the run's
checkpoint, so a killed worker resumes after the last committed contact and no contact
is queued twice for the same run. Delivery then sends them in order (delivery.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select

from portal import clock, events
from portal.contacts.models import Contact, ContactStatus
from portal.extensions import db
from portal.integrations.models import (
    EventStatus,
    OutgoingEvent,
    ProviderLink,
    RunStatus,
    SyncRun,
)

if TYPE_CHECKING:
    from portal.accounts.models import User

BATCH = 1000
STALE_AFTER = timedelta(minutes=10)


def _live(account_id: int):
    return (Contact.account_id == account_id, Contact.status == ContactStatus.ACTIVE.value)


def start(link: ProviderLink, *, actor: User | None) -> SyncRun:
    total = db.session.scalar(select(func.count(Contact.id)).where(*_live(link.account_id))) or 0
    run = SyncRun(
        account_id=link.account_id,
        link_id=link.id,
        created_by_id=getattr(actor, "id", None),
        total=total,
        touched_at=clock.now(),
    )
    db.session.add(run)
    db.session.flush()
    return run


def latest(link: ProviderLink) -> SyncRun | None:
    return db.session.scalar(
        select(SyncRun).where(SyncRun.link_id == link.id).order_by(SyncRun.id.desc()).limit(1)
    )


def run(sync: SyncRun, *, batch: int = BATCH) -> None:
    if sync.status == RunStatus.FINISHED.value:
        return
    sync.status = RunStatus.RUNNING.value
    sync.touched_at = clock.now()
    db.session.commit()
    while True:
        query = select(Contact.id).where(*_live(sync.account_id))
        if sync.checkpoint is not None:
            query = query.where(Contact.id > sync.checkpoint)
        ids = list(db.session.scalars(query.order_by(Contact.id).limit(batch)))
        if not ids:
            break
        now = clock.now()
        db.session.execute(
            insert(OutgoingEvent),
            [
                {
                    "account_id": sync.account_id,
                    "link_id": sync.link_id,
                    "contact_id": contact_id,
                    "kind": events.CONTACT_SYNCED,
                    "data": {"sync": sync.id},
                    "sync_id": sync.id,
                    "status": EventStatus.PENDING.value,
                    "attempts": 0,
                    "created_at": now,
                    "last_error": "",
                }
                for contact_id in ids
            ],
        )
        sync.processed += len(ids)
        sync.checkpoint = ids[-1]
        sync.touched_at = now
        db.session.commit()
        db.session.info.setdefault("outbox_links", set()).add(sync.link_id)
    sync.status = RunStatus.FINISHED.value
    sync.finished_at = clock.now()
    db.session.commit()


def delivered(sync: SyncRun) -> int:
    return (
        db.session.scalar(
            select(func.count(OutgoingEvent.id)).where(
                OutgoingEvent.sync_id == sync.id,
                OutgoingEvent.status == EventStatus.DELIVERED.value,
            )
        )
        or 0
    )


def progress(sync: SyncRun) -> dict:
    done = delivered(sync)
    total = max(sync.total, sync.processed)
    return {
        "status": sync.status,
        "total": total,
        "queued": sync.processed,
        "delivered": done,
        "percent": 100 if total == 0 else min(100, int(100 * done / total)),
    }


def can_resume(sync: SyncRun, now=None) -> bool:
    if sync.status == RunStatus.FAILED.value:
        return True
    if sync.status in (RunStatus.QUEUED.value, RunStatus.RUNNING.value):
        return (sync.touched_at or sync.created_at) < (now or clock.now()) - STALE_AFTER
    return False
