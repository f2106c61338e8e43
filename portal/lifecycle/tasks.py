"""RQ glue: mass actions, the hourly purge and the sweeps. The work is in mass.py and
service.py, plain functions that tests call directly."""

from __future__ import annotations

import logging

from portal.extensions import db, rq
from portal.jobs import failures
from portal.jobs.ids import job_id
from portal.lifecycle import mass, service, signup
from portal.lifecycle.models import LifecycleJob

log = logging.getLogger(__name__)


@rq.job(queue="default")
def run_mass_action(job_id: int) -> None:
    job = db.session.get(LifecycleJob, job_id)
    if job is None:
        log.warning("mass action %s is gone", job_id)
        return
    try:
        mass.run(job)
    except Exception as exc:
        log.exception("mass action %s failed", job_id)
        mass.fail(job, f"{type(exc).__name__}: {exc}")
        raise


def enqueue(job: LifecycleJob) -> None:
    """Commit the row first, then enqueue: the worker must find it. A double click is
    safe because mass.run works from the row's checkpoint (portal/jobs/ids.py)."""
    mass.queue_again_if_failed(job)
    db.session.commit()
    run_mass_action.enqueue(
        job.id,
        job_id=job_id("lifecycle", job.id, job.checkpoint or 0),
        on_failure=failures.FAILURE_CALLBACK,
    )


def _fail(job_id: int, reason: str) -> bool:
    """The worker of the mass action is gone (portal.jobs.failures): failed at once,
    so the page offers "Continue"."""
    job = db.session.get(LifecycleJob, job_id)
    return job is not None and mass.fail_lost(job, reason)


failures.register(run_mass_action, "lifecycle_job", _fail)


@rq.job(queue="default")
def purge_deleted_contacts() -> int:
    """Hourly: accounts whose local time is 02:00–04:00 lose their contacts "to be deleted"."""
    return service.purge_due()


@rq.job(queue="low")
def sweep() -> int:
    """Daily: unconfirmed mass-action drafts and expired sign-up requests."""
    return mass.sweep_drafts() + signup.sweep_expired()


def register_cron() -> None:
    purge_deleted_contacts.cron_register("5 * * * *")
    sweep.cron_register("27 4 * * *")
