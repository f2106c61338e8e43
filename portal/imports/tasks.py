"""RQ glue around the import service: open the row, do the work, record failure.

Job ids follow portal/jobs/ids.py (import-<id>-check-<time>, -run-<lines>, -wait-<time>);
what keeps the same work from running twice is the import's lease (imports/lease.py): a
job that finds the import held by another worker, or loses it, stops (LeaseLost)."""

from __future__ import annotations

import logging

from portal import clock
from portal.extensions import db, rq
from portal.imports import service
from portal.imports.lease import LeaseLost
from portal.imports.models import ImportJob, ImportStatus
from portal.jobs import failures
from portal.jobs.ids import job_id

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


@rq.job(queue="default")
def run_import(import_id: int) -> None:
    job = _load(import_id)
    if job is None or job.status in (ImportStatus.FINISHED, ImportStatus.CANCELLED):
        return
    if not service.claim_for_run(job):
        db.session.commit()
        run_import.enqueue_in(
            WAIT_SECONDS,
            import_id,
            job_id=job_id("import", import_id, f"wait-{clock.now().timestamp():.0f}"),
            on_failure=failures.FAILURE_CALLBACK,
        )
        return
    db.session.commit()
    if _guarded(import_id, service.run):
        clean_staging.enqueue(import_id, job_id=job_id("import", import_id, "clean"))


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
    service.mark(job, ImportStatus.CHECKING)
    db.session.commit()
    check_import.enqueue(
        job.id,
        job_id=job_id("import", job.id, f"check-{clock.now().timestamp():.0f}"),
        on_failure=failures.FAILURE_CALLBACK,
    )


def enqueue_run(job: ImportJob) -> None:
    service.mark(job, ImportStatus.QUEUED)
    db.session.commit()
    run_import.enqueue(
        job.id,
        job_id=job_id("import", job.id, f"run-{job.staged_line}-{job.merged_line}"),
        on_failure=failures.FAILURE_CALLBACK,
    )


def _fail(import_id: int, reason: str) -> bool:
    """The worker of the import's job is gone (portal.jobs.failures): the import is
    failed, so its page offers "Continue" at once."""
    job = db.session.get(ImportJob, import_id)
    return job is not None and service.fail_lost(job, reason)


failures.register(check_import, "import", _fail)
failures.register(run_import, "import", _fail)
