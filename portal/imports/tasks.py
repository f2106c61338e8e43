"""RQ glue around the import service: open the row, do the work, record failure.

Job ids name the import row and the step (import-<id>-check-<time>, -run-<lines>,
-wait-<time>) for whoever reads the queues; they do not keep a second job out. What
keeps the same work from running twice is the import's lease (imports/lease.py): a job
that finds the import held by another worker, or loses it, stops (LeaseLost)."""

from __future__ import annotations

import logging
from datetime import timedelta

from portal import clock
from portal.core import sql
from portal.extensions import db, rq
from portal.imports import service
from portal.imports.lease import LeaseLost
from portal.imports.models import ACTIVE_STATUSES, ImportJob, ImportStatus
from portal.jobs import failures

log = logging.getLogger(__name__)
WAIT_SECONDS = 5


def _load(import_id: int) -> ImportJob | None:
    job = db.session.get(ImportJob, import_id)
    if job is None:
        log.warning("import %s is gone", import_id)
    return job


def _guarded(import_id: int, work) -> bool:
    """Do the work; True when it was done. The service records a failure on the import
    itself (if this worker still holds it); a worker that was taken over by another
    one ends its job quietly."""
    job = _load(import_id)
    if job is None:
        return False
    try:
        work(job)
    except LeaseLost:
        log.warning("import %s was taken over by another worker; this one stops", import_id)
        return False
    except Exception:
        log.exception("import %s failed", import_id)
        raise
    return True


@rq.job(queue="default")
def check_import(import_id: int) -> None:
    _guarded(import_id, service.check)


def _group_is_busy(job: ImportJob) -> bool:
    """Another import into the same group is running: this one waits its turn."""
    if job.group_id is None:
        return False
    sql.lock_group(job.group_id)  # serialize the check per group
    stale = clock.now() - timedelta(minutes=10)
    other = db.session.scalar(
        db.select(ImportJob.id).where(
            ImportJob.group_id == job.group_id,
            ImportJob.id != job.id,
            ImportJob.status == ImportStatus.RUNNING.value,
            ImportJob.touched_at > stale,
        )
    )
    return other is not None


@rq.job(queue="default")
def run_import(import_id: int) -> None:
    job = _load(import_id)
    if job is None or job.status in (ImportStatus.FINISHED, ImportStatus.CANCELLED):
        return
    if _group_is_busy(job):
        job.status = ImportStatus.WAITING.value
        db.session.commit()
        run_import.enqueue_in(
            WAIT_SECONDS,
            import_id,
            job_id=f"import-{import_id}-wait-{int(clock.now().timestamp())}",
            on_failure=failures.FAILURE_CALLBACK,
        )
        return
    job.status = ImportStatus.RUNNING.value
    job.touched_at = clock.now()
    db.session.commit()
    if _guarded(import_id, service.run):
        clean_staging.enqueue(import_id, job_id=f"import-{import_id}-clean")


@rq.job(queue="low")
def clean_staging(import_id: int) -> None:
    job = _load(import_id)
    if job is not None and job.status == ImportStatus.FINISHED:
        service.drop_staging(job)


@rq.job(queue="low")
def sweep_uploads() -> int:
    """Daily (see portal/jobs/cron.py)."""
    return service.sweep_uploads()


def enqueue_check(job: ImportJob) -> None:
    job.status = ImportStatus.CHECKING.value
    job.touched_at = clock.now()
    db.session.commit()
    check_import.enqueue(
        job.id,
        job_id=f"import-{job.id}-check-{clock.now().timestamp():.0f}",
        on_failure=failures.FAILURE_CALLBACK,
    )


def enqueue_run(job: ImportJob) -> None:
    job.status = ImportStatus.QUEUED.value
    job.touched_at = clock.now()
    db.session.commit()
    run_import.enqueue(
        job.id,
        job_id=f"import-{job.id}-run-{job.staged_line}-{job.merged_line}",
        on_failure=failures.FAILURE_CALLBACK,
    )


def _fail(import_id: int, reason: str) -> bool:
    """The worker of the import's job is gone (portal.jobs.failures): the import is
    failed, so its page offers "Continue" at once."""
    job = db.session.get(ImportJob, import_id)
    if job is None or job.status not in {s.value for s in ACTIVE_STATUSES}:
        return False
    job.status = ImportStatus.FAILED.value
    job.error = reason
    return True


failures.register(check_import, "import", _fail)
failures.register(run_import, "import", _fail)
