"""The portal's RQ worker: Flask-RQ's (every job in a `flask rq work-horse` subprocess,
inside the app context) plus what issue 16, point 8 asks — a job whose worker died is
failed at once and its row offers "Continue" (portal.jobs.failures).

- On start it says where it runs (machine, process) and fails the jobs of workers that
  are gone; its periodic maintenance does the same.
- When its work horse dies under it (killed, out of memory), the job's failure callback
  runs: RQ moves such a job to the failed registry without calling it.

Only Flask-RQ and RQ are imported here: portal.extensions makes the extension from it."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from flask_rq import RQ
from flask_rq._make import make_default_connection
from flask_rq._worker import FlaskSubprocessWorker  # pinned (pyproject.toml): Flask-RQ 1.0

from portal.jobs.scheduler import DEFAULT_LEASE_SECONDS, SingleCronScheduler

log = logging.getLogger(__name__)

IDENTITY_TTL = 7 * 24 * 3600  # renewed by every maintenance run


class PortalWorker(FlaskSubprocessWorker):
    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        self._reap()

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        self._reap()

    def _reap(self) -> None:
        """Announce this worker, then fail the jobs of workers that are gone. Never keeps
        the worker from working."""
        # failures reads rows through portal.extensions, which imports this module
        from portal.jobs import failures

        try:
            failures.announce(self.connection, self.name, IDENTITY_TTL)
            if reaped := failures.reap_abandoned(self.connection):
                self.log.warning(
                    "Worker %s: failed %d job(s) of workers that are gone", self.name, reaped
                )
        except Exception:
            log.exception("worker %s: could not look for abandoned jobs", self.name)

    def register_death(self) -> None:
        from portal.jobs import failures  # see _reap: portal.extensions imports this module

        super().register_death()
        self.connection.delete(failures.IDENTITY_KEY.format(self.name))

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage) -> None:  # type: ignore[no-untyped-def]
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        from portal.jobs import failures

        if job.failure_callback is None:
            return
        try:
            job.execute_failure_callback(
                self.death_penalty_class,
                failures.WorkerLost,
                failures.WorkerLost(f"work horse ended: {ret_val}"),
                traceback.extract_stack(),
            )
        except Exception:
            log.exception("job %s: the failure callback failed", job.id)


class PortalRQ(RQ):
    """Flask-RQ whose `flask rq worker` is a PortalWorker and whose `flask rq cron` is a
    SingleCronScheduler (one scheduler enqueues, however many run)."""

    def make_cron_scheduler(self) -> Any:

        app = self._get_current_app()
        scheduler = SingleCronScheduler(
            make_default_connection(app),
            name=app.name,
            lease_seconds=int(app.config.get("CRON_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)),
        )
        for item in self._cron_job_data:
            scheduler.register(**item)
        return scheduler

    def make_worker(self, queues: Any = None, **kwargs: Any) -> PortalWorker:
        made = super().make_worker(queues, **kwargs)
        return PortalWorker(made.queues, job_class=made.job_class, **kwargs)
