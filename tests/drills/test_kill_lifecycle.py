"""kill -9 in the middle of a mass deletion of 50,000 contacts and in the middle of the
nightly purge; a new worker finishes the work; the end state is the clean run's."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update

from portal import events
from portal.accounts.models import Account
from portal.contacts.models import Contact, ContactStatus
from portal.contacts.queries import ContactFilter
from portal.core.audit import AuditEvent
from portal.extensions import db
from portal.lifecycle import mass, service, tasks
from portal.lifecycle.models import LifecycleAction, LifecycleJob, LifecycleStatus
from tests.drills.conftest import (
    account_state,
    emails_by_id,
    failed_on_the_next_worker,
    fresh,
    link_provider,
    new_account,
    outbox_per_contact,
)
from tests.workers import wait_for

N = 50_000
BERLIN = ZoneInfo("Europe/Berlin")


def _mass_delete(account_id: int) -> int:
    """The owner deletes every active contact from the mass-management page (confirmed)."""
    account = db.session.get(Account, account_id)
    job = mass.draft_for_filter(
        account,
        LifecycleAction.DELETE,
        ContactFilter(status="active"),
        tz=BERLIN,
        actor=None,
        source="ui",
    )
    mass.confirm(job)
    db.session.commit()
    return job.id


def _audited(account_id: int, action: str) -> list[dict]:
    return list(
        db.session.scalars(
            db.select(AuditEvent.details)
            .where(AuditEvent.account_id == account_id, AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
    )


def test_mass_deletion_killed_mid_way_ends_like_a_clean_run(web, workers):
    with web.app_context():
        clean = new_account("clean", N)
        link_provider(clean)
        clean_job = _mass_delete(clean)
        mass.run(db.session.get(LifecycleJob, clean_job))  # what the job runs, in-process

        drill = new_account("drill", N)
        link_provider(drill)
        job_id = _mass_delete(drill)
        total = db.session.get(LifecycleJob, job_id).total
        assert total > N * 0.8
        tasks.enqueue(db.session.get(LifecycleJob, job_id))

    worker = workers(burst=False)
    with web.app_context():
        at_kill = wait_for(
            lambda: (j := fresh(LifecycleJob, job_id)).processed >= 3 * mass.BATCH and j,
            timeout=60,
            message="the mass deletion must get going",
            worker=worker,
        )
        worker.kill()
        killed_at = time.monotonic()
        job = fresh(LifecycleJob, job_id)
        assert job.status == LifecycleStatus.RUNNING.value, worker.output()[-3000:]
        assert job.processed < total, "the worker must die in the middle of the work"
        assert job.processed >= at_kill.processed
        assert not mass.can_resume(job), "nobody has noticed yet"

        # the next worker fails the job at once, and the page offers to continue
        job = failed_on_the_next_worker(workers, LifecycleJob, job_id, killed_at)
        assert mass.can_resume(job)
        tasks.enqueue(job)
    out = workers().finish(timeout=120)

    with web.app_context():
        job = fresh(LifecycleJob, job_id)
        reference = db.session.get(LifecycleJob, clean_job)
        assert job.status == LifecycleStatus.FINISHED.value, out[-3000:]
        assert (job.total, job.processed, job.changed) == (
            reference.total,
            reference.processed,
            reference.changed,
        )
        assert job.changed == total
        assert account_state(drill) == account_state(clean)
        # one "deleted" event per contact in the outbox, none doubled, none missing
        for account_id in (drill, clean):
            per_contact = outbox_per_contact(account_id, events.CONTACT_DELETED)
            assert set(per_contact.values()) == {1}
            assert len(per_contact) == total
        # and the owner reads the right count in the recent changes
        assert [d["count"] for d in _audited(drill, "contacts.deleted")] == [total]


def _night(account_id: int, window_start: datetime) -> set[int]:
    """Almost everyone was deleted the day before tonight's window; a few contacts were
    deleted after it began (they wait for tomorrow night). Returns who must go."""
    late = db.session.scalars(
        db.select(Contact.id)
        .where(Contact.account_id == account_id)
        .order_by(Contact.id)
        .limit(500)
    ).all()
    db.session.execute(
        update(Contact)
        .where(Contact.account_id == account_id)
        .values(status=ContactStatus.DELETED.value, deleted_at=window_start - timedelta(days=1))
    )
    db.session.execute(
        update(Contact)
        .where(Contact.id.in_(late))
        .values(deleted_at=window_start + timedelta(minutes=1))
    )
    db.session.commit()
    return set(emails_by_id(account_id)) - set(late)


def _next_window(now: datetime) -> datetime:
    day = now.astimezone(BERLIN).date() + timedelta(days=1)
    return service.purge_window(day, BERLIN)[0]


def test_nightly_purge_killed_mid_way_is_finished_by_the_next_hourly_run(web, workers):
    now = datetime.now(BERLIN)
    window = _next_window(now)
    first_run = window + timedelta(minutes=5)  # the cron's 02:05 run
    second_run = window + timedelta(hours=1, minutes=5)  # and its 03:05 run

    with web.app_context():
        clean = new_account("clean", N, groups=1)
        link_provider(clean)
        must_go_clean = _night(clean, window)
        assert service.purge_due(now=first_run) == len(must_go_clean)

        drill = new_account("drill", N, groups=1)
        link_provider(drill)
        must_go = _night(drill, window)
        tasks.purge_deleted_contacts.enqueue()  # what `rq cron` enqueues at :05

    def left():
        return db.session.scalar(
            db.select(db.func.count(Contact.id)).where(Contact.account_id == drill)
        )

    worker = workers(burst=False, clock_offset=(first_run - now).total_seconds())
    with web.app_context():
        wait_for(
            lambda: left() <= N - 2 * service.PURGE_BATCH,
            timeout=60,
            message="the purge must get going",
            worker=worker,
        )
        worker.kill()
        assert 0 < left() - 500 < len(must_go), "the worker must die in the middle of the purge"
        tasks.purge_deleted_contacts.enqueue()  # an hour later, the next run
    out = workers(clock_offset=(second_run - now).total_seconds()).finish(timeout=120)

    with web.app_context():
        db.session.remove()
        assert left() == 500, out[-3000:]
        assert account_state(drill) == account_state(clean)
        # every purged contact told the provider exactly once
        purged = outbox_per_contact(drill, events.CONTACT_PURGED)
        assert set(purged) == must_go and set(purged.values()) == {1}
        assert len(outbox_per_contact(clean, events.CONTACT_PURGED)) == len(must_go_clean)
        # the recent changes tell the owner how many contacts the purge removed
        counted = sum(d["count"] for d in _audited(drill, "contacts.purged"))
        assert counted == len(must_go) == len(must_go_clean)
