"""A job whose worker died fails its row at once (issue 16, point 8): an import stayed
"running" without a "Continue" button for ten minutes although RQ knew the job had
failed. Real workers for the kills; the registry cases in-process on the real Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry

from portal.accounts import service as accounts
from portal.extensions import db, rq
from portal.imports import service as imports
from portal.imports import tasks as import_tasks
from portal.imports.models import ImportJob, ImportStatus
from portal.integrations import tasks as integration_tasks
from portal.integrations.models import ExportRun, RunStatus
from portal.jobs import failures
from portal.lifecycle import tasks as lifecycle_tasks
from portal.lifecycle.models import LifecycleJob, LifecycleStatus
from tests.imports.test_worker import _new_import, _rows, _status
from tests.workers import start_worker, wait_for


def test_a_killed_work_horse_fails_its_import_at_once_and_the_worker_goes_on(
    web,  # noqa: F811
    tmp_path,
    database_url,
    redis_url,
):
    """The OOM killer takes the work horse, the worker lives: the import is failed within
    seconds (not after ten quiet minutes), "Continue" works on the same worker."""
    _account, job_id = _new_import(web, tmp_path, "horse", _rows(20000))
    with web.app_context():
        import_tasks.enqueue_run(db.session.get(ImportJob, job_id))
    worker = start_worker(
        database_url, redis_url, burst=False, IMPORT_BATCH_ROWS="200", IMPORT_CHUNK_ROWS="2000"
    )
    try:
        wait_for(
            lambda: _status(web, job_id).staged_line >= 1000,
            timeout=60,
            message="the import must get going",
            worker=worker,
        )
        for horse in worker.horses():
            os.kill(horse, signal.SIGKILL)
        killed_at = time.monotonic()
        job = wait_for(
            lambda: (j := _status(web, job_id)).status == ImportStatus.FAILED and j,
            timeout=30,
            message="the import must be failed when its work horse died",
            worker=worker,
        )
        assert time.monotonic() - killed_at < 30 and job.error.startswith("worker_lost")
        with web.app_context():
            job = db.session.get(ImportJob, job_id)
            assert imports.can_resume(job)
            import_tasks.enqueue_run(job)
        wait_for(
            lambda: _status(web, job_id).status == ImportStatus.FINISHED,
            timeout=240,
            message="the same worker continues the import",
            worker=worker,
        )
        assert _status(web, job_id).created == 20000
    finally:
        worker.kill()


@pytest.fixture
def connection(ctx):
    connection = rq.get_queue().connection
    yield connection
    connection.flushdb()


def _mass_job(account_id: int, status: str = LifecycleStatus.RUNNING.value) -> LifecycleJob:
    job = LifecycleJob(
        account_id=account_id,
        action="delete",
        selection={"scope": "ids", "ids": []},
        status=status,
    )
    db.session.add(job)
    db.session.commit()
    return job


def _enqueued(connection, function, row_id: int, job_id: str) -> Job:
    queue = Queue("default", connection=connection)
    name = f"{function.__module__}.{function.__name__}"  # as RQ stores a job function
    return queue.enqueue(name, row_id, job_id=job_id, on_failure=failures.FAILURE_CALLBACK)


def _as_started_by(connection, job: Job, worker_name: str, expires: float) -> None:
    """The job as RQ keeps one a worker took: in the started registry (heartbeat until
    `expires`), no longer in the queue, with the worker's name."""
    Queue("default", connection=connection).remove(job.id)
    job.worker_name = worker_name
    job.save()
    connection.zadd(
        StartedJobRegistry("default", connection=connection).key, {f"{job.id}:e1": expires}
    )


def test_rq_finding_an_abandoned_job_calls_back_and_the_row_fails(connection, make_account):
    """RQ's own cleanup of a job whose heartbeat expired calls the failure callback."""
    run = ExportRun(account_id=make_account("acme"), format="csv", status=RunStatus.RUNNING.value)
    db.session.add(run)
    db.session.commit()
    job = _enqueued(connection, integration_tasks.run_export, run.id, f"export-{run.id}")
    _as_started_by(connection, job, "somewhere-else", expires=1)  # long expired
    assert failures.reap_abandoned(connection) == 0  # RQ's cleanup did it
    db.session.expire_all()
    assert run.status == RunStatus.FAILED.value and run.error.startswith("worker_lost")
    assert job.id in FailedJobRegistry("default", connection=connection).get_job_ids()


def test_a_dead_worker_on_this_machine_is_noticed_at_once(connection, make_account):
    """Its heartbeat would last another minute; its process is gone."""
    account_id = make_account("acme")
    mass_job = _mass_job(account_id)
    job = _enqueued(connection, lifecycle_tasks.run_mass_action, mass_job.id, "lifecycle-1-0")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _pretend_worker(connection, "dead-worker", dead.pid)
    _as_started_by(connection, job, "dead-worker", expires=time.time() + 90)
    assert failures.reap_abandoned(connection) == 1
    db.session.expire_all()
    assert mass_job.status == LifecycleStatus.FAILED.value
    assert job.id in FailedJobRegistry("default", connection=connection).get_job_ids()
    assert job.id not in StartedJobRegistry("default", connection=connection).get_job_ids()


def test_a_live_worker_keeps_its_job(connection, make_account):
    mass_job = _mass_job(make_account("acme"))
    job = _enqueued(connection, lifecycle_tasks.run_mass_action, mass_job.id, "lifecycle-1-0")
    _pretend_worker(connection, "busy-worker", os.getpid())  # this very process: alive
    _as_started_by(connection, job, "busy-worker", expires=time.time() + 90)
    assert failures.reap_abandoned(connection) == 0
    db.session.expire_all()
    assert mass_job.status == LifecycleStatus.RUNNING.value


def test_a_row_with_other_work_coming_is_not_failed(connection, make_account):
    """The user pressed "Continue" after the first job failed: a late callback of the
    first job must not fail the row the second one works on."""
    mass_job = _mass_job(make_account("acme"), status=LifecycleStatus.QUEUED.value)
    first = _enqueued(connection, lifecycle_tasks.run_mass_action, mass_job.id, "lifecycle-1-0")
    Queue("default", connection=connection).remove(first.id)
    _enqueued(connection, lifecycle_tasks.run_mass_action, mass_job.id, "lifecycle-1-1000")
    failures.on_failure(first, connection, failures.WorkerLost, failures.WorkerLost(), None)
    db.session.expire_all()
    assert mass_job.status == LifecycleStatus.QUEUED.value
    # without the second job, the same callback fails it
    Queue("default", connection=connection).empty()
    failures.on_failure(first, connection, failures.WorkerLost, failures.WorkerLost(), None)
    db.session.expire_all()
    assert mass_job.status == LifecycleStatus.FAILED.value


def test_every_job_with_a_row_is_enqueued_with_the_callback(connection, make_account, app):
    """The enqueue helpers of imports, mass actions, syncs, exports and undos attach the
    failure callback (the functions the failure handlers are registered for)."""
    account = accounts.create_account("Beta", "beta")
    db.session.commit()
    registered = {name for name in failures._KINDS}
    assert registered >= {
        "portal.imports.tasks.check_import",
        "portal.imports.tasks.run_import",
        "portal.lifecycle.tasks.run_mass_action",
        "portal.integrations.tasks.run_sync",
        "portal.integrations.tasks.run_export",
        "portal.backups.tasks.undo_import",
    }
    queue = Queue("default", connection=connection, is_async=True)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_async_queues(app, queue))
        mass_job = _mass_job(account.id, status=LifecycleStatus.DRAFT.value)
        mass_job.status = LifecycleStatus.QUEUED.value
        lifecycle_tasks.enqueue(mass_job)
        run = ExportRun(account_id=account.id, format="csv")
        db.session.add(run)
        db.session.flush()
        integration_tasks.enqueue_export(run)
    ids = [i for name in ("default", "low") for i in Queue(name, connection=connection).job_ids]
    jobs = [Job.fetch(i, connection=connection) for i in ids]
    assert len(jobs) == 2
    assert all(j.failure_callback is failures.on_failure for j in jobs)


@contextlib.contextmanager
def _async_queues(app, queue):
    """The session app runs jobs at once (TESTING); here they must wait in Redis."""
    queues = rq._queues[app]
    before = dict(queues)
    for name in list(queues):
        queues[name] = Queue(name, connection=queue.connection, is_async=True)
    try:
        yield
    finally:
        queues.clear()
        queues.update(before)


def _pretend_worker(connection, name: str, pid: int) -> None:
    """A worker's keys as RQ and the portal write them: its heartbeat and where it runs."""
    connection.hset(f"rq:worker:{name}", mapping={"name": name, "pid": pid, "hostname": "h"})
    connection.expire(f"rq:worker:{name}", 420)
    connection.sadd("rq:workers", f"rq:worker:{name}")
    failures.announce(connection, name, 600, pid=pid)


def test_the_cron_looks_for_abandoned_jobs_every_minute(app):
    """Until a worker starts, the cron's look fails the rows of dead workers' jobs."""
    with app.app_context():
        entries = {job.func_name: job for job in rq.make_cron_scheduler().get_jobs()}
    assert entries["portal.jobs.tasks.reap_abandoned"].interval == 60
