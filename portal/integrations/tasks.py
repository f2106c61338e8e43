"""RQ glue of the integrations area: deliveries, full syncs, exports.

After a commit that wrote outbox rows, a delivery job for the link is enqueued (at most
one every few seconds per link, debounced in Redis); a cron entry every minute picks up
retries that have come due and anything a lost job left behind."""

from __future__ import annotations

import logging

from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.extensions import db, rq
from portal.integrations import delivery, export, sync
from portal.integrations.models import ExportRun, RunStatus, SyncRun
from portal.jobs import failures
from portal.jobs.ids import job_id

log = logging.getLogger(__name__)
DEBOUNCE_SECONDS = 2


@rq.job(queue="default")
def deliver_link(link_id: int) -> int:
    sent = delivery.deliver(link_id).delivered
    # events committed while this job ran found the debounce key set: look once more
    rq.get_queue("default").connection.delete(_debounce_key(link_id))
    if link_id in delivery.links_with_work():
        sent += delivery.deliver(link_id).delivered
    return sent


def _debounce_key(link_id: int) -> str:
    return f"portal:deliver:{link_id}"


@rq.job(queue="default")
def deliver_due() -> int:
    """Every minute: every link with events that are due."""
    return sum(delivery.deliver(link_id).delivered for link_id in delivery.links_with_work())


def _guarded(model, row_id: int, work) -> bool:
    """Run `work(row)`; a failure marks the row failed with the error (the page offers
    to continue or to try again) and is raised for RQ's own log."""
    row = db.session.get(model, row_id)
    if row is None:
        return False
    try:
        work(row)
    except Exception as exc:
        log.exception("%s %s failed", model.__tablename__, row_id)
        db.session.rollback()
        row = db.session.get(model, row_id)
        row.status = RunStatus.FAILED.value
        row.error = f"{type(exc).__name__}: {exc}"[:2000]
        db.session.commit()
        raise
    return True


@rq.job(queue="default")
def run_sync(sync_id: int) -> None:
    if _guarded(SyncRun, sync_id, sync.run):
        schedule_delivery(db.session.get(SyncRun, sync_id).link_id)


@rq.job(queue="low")
def run_export(export_id: int) -> None:
    _guarded(ExportRun, export_id, export.run)


@rq.job(queue="low")
def sweep_exports() -> int:
    return export.sweep_expired() + export.sweep_orphans()


def enqueue_sync(run: SyncRun) -> None:
    db.session.commit()
    run_sync.enqueue(
        run.id,
        job_id=job_id("sync", run.id, run.checkpoint or 0),
        on_failure=failures.FAILURE_CALLBACK,
    )


def enqueue_export(run: ExportRun) -> None:
    db.session.commit()
    run_export.enqueue(
        run.id, job_id=job_id("export", run.id), on_failure=failures.FAILURE_CALLBACK
    )


def _failer(model):
    def fail(row_id: int, reason: str) -> bool:
        """The worker of the run is gone (portal.jobs.failures): failed at once, so the
        page offers "Continue" (a sync) or "try again" (an export)."""
        row = db.session.get(model, row_id)
        if row is None or row.status not in (RunStatus.QUEUED.value, RunStatus.RUNNING.value):
            return False
        row.status = RunStatus.FAILED.value
        row.error = reason
        return True

    return fail


failures.register(run_sync, "sync", _failer(SyncRun))
failures.register(run_export, "export", _failer(ExportRun))


def schedule_delivery(link_id: int) -> None:
    queue = rq.get_queue("default")
    if not queue.is_async:  # tests run deliveries themselves, with their own clock
        return
    if queue.connection.set(_debounce_key(link_id), 1, nx=True, ex=DEBOUNCE_SECONDS):
        deliver_link.enqueue(link_id)


def _after_commit(session: Session) -> None:
    links = session.info.pop("outbox_links", None)
    for link_id in links or ():
        try:
            schedule_delivery(link_id)
        except Exception:  # Redis down: the cron entry delivers within a minute
            log.warning("could not schedule the delivery for link %s", link_id, exc_info=True)


def _after_rollback(session: Session) -> None:
    session.info.pop("outbox_links", None)


def _after_soft_rollback(session: Session, previous_transaction) -> None:
    _after_rollback(session)


def listen_to_commits(session) -> None:
    """After a commit of `session` (db.session, connected by the area's init_app): the
    links that got outbox rows are delivered soon; a rollback forgets them."""
    if not event.contains(session, "after_commit", _after_commit):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_soft_rollback", _after_soft_rollback)


def register_cron() -> None:
    deliver_due.cron_register(60)
    sweep_exports.cron_register("51 * * * *")
