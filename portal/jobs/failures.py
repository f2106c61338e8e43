"""A job whose worker died is failed at once, and its row says so (issue 16, point 8).

Imports, restores (imports too), undos, mass actions, syncs and exports keep their state
on a row that the pages read. When the worker running one was killed (kill -9, the OOM
killer, a pulled plug) the row stayed "running" until ten quiet minutes had passed —
only then did the page offer "Continue", although RQ knew much earlier. Now:

- Every such job is enqueued with FAILURE_CALLBACK (RQ's `on_failure`). RQ calls it when
  the job raises, when a timeout kills it, and when its registry cleanup finds the job
  abandoned (AbandonedJobError); the portal's worker also calls it when its work horse
  dies under it (RQ moves that job to the failed registry without a callback).
- A worker that starts looks for jobs that were being worked on by a worker that is gone
  (`reap_abandoned`): a worker on this machine is gone when its process is; one on
  another machine when its Redis heartbeat has expired. Those jobs are failed through the
  same callback. The cron runs the same look every minute.
- The callback marks the row failed — only while the row is still in a working state and
  no other job for the same row is queued, scheduled or running on a live worker (the
  user may have pressed "Continue" meanwhile). The pages then offer "Continue" at once.

Each area registers, for the names of its job functions, which row a job belongs to and
how to fail it (`register`)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import socket
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from redis import Redis
from rq import Callback, Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.worker import Worker

from portal.extensions import db
from portal.jobs import QUEUES

log = logging.getLogger(__name__)

# ImportJob.error / LifecycleJob.error / … of a row whose worker died
WORKER_LOST = "worker_lost"
IDENTITY_KEY = "portal:worker-identity:{}"


@dataclass(frozen=True)
class RowKind:
    """What a job function works on: `kind` names the row (several functions may share
    one, like an import's check and run), `fail(row_id, reason)` marks it failed if it is
    still working and says whether it did."""

    kind: str
    fail: Callable[[int, str], bool]


_KINDS: dict[str, RowKind] = {}


def register(function: Callable | str, kind: str, fail: Callable[[int, str], bool]) -> None:
    """`function`: a job function (or its dotted name) whose first argument is the row id."""
    name = function if isinstance(function, str) else f"{function.__module__}.{function.__name__}"
    _KINDS[name] = RowKind(kind, fail)


def _kind_of(job: Job) -> RowKind | None:
    name = job.func_name or ""
    if name not in _KINDS and "." in name:
        # the area registers itself when its module is imported
        with contextlib.suppress(ImportError):
            importlib.import_module(name.rsplit(".", 1)[0])
    return _KINDS.get(name)


def _row_of(job: Job) -> tuple[str, int] | None:
    kind = _kind_of(job)
    if kind is None or not job.args:
        return None
    try:
        return kind.kind, int(job.args[0])
    except (TypeError, ValueError):
        return None


# --- is a worker alive? -------------------------------------------------------------------


def _machine() -> str | None:
    """This machine and process namespace: a pid means the same process only there
    (containers share host names but not process tables)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return f"{socket.gethostname()}:{boot}:{namespace}"


def _started(pid: int) -> str | None:
    """The start time of a process (field 22 of /proc/<pid>/stat): a pid used again by
    another process has another one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def announce(connection: Redis, worker_name: str, ttl: int, pid: int | None = None) -> None:
    """Written by every portal worker when it starts: where it runs, so that another
    worker on the same machine can tell at once whether it is still alive."""
    machine = _machine()
    if machine is None:
        return
    key = IDENTITY_KEY.format(worker_name)
    pid = pid or os.getpid()
    connection.hset(key, mapping={"machine": machine, "pid": pid, "started": _started(pid) or ""})
    connection.expire(key, ttl)


def worker_alive(connection: Redis, worker_name: str | None) -> bool:
    """False when the worker is certainly gone: no heartbeat in Redis any more, or it ran
    on this machine and its process is gone. A worker elsewhere with a heartbeat counts
    as alive (its heartbeat expires ≤ 90 s after it died while busy)."""
    if not worker_name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + worker_name, connection)
    if worker is None:
        return False
    identity = {
        k.decode(): v.decode()
        for k, v in connection.hgetall(IDENTITY_KEY.format(worker_name)).items()
    }
    if not identity or identity.get("machine") != _machine():
        return True
    pid = int(identity.get("pid") or 0)
    running_since = _started(pid) if pid else None
    if running_since is None:
        return False  # no such process here
    return identity.get("started") in (None, "", running_since)  # or the pid was reused


# --- what is still coming for a row ------------------------------------------------------


def _queue_names(connection: Redis) -> list[str]:
    return list(QUEUES)


def _live_job_ids(connection: Redis) -> Iterable[tuple[str, bool]]:
    """(job id, being worked on) of every job that may still run."""
    for name in _queue_names(connection):
        queue = Queue(name, connection=connection)
        for job_id in queue.get_job_ids():
            yield job_id, False
        for registry in (
            ScheduledJobRegistry(name, connection=connection),
            DeferredJobRegistry(name, connection=connection),
        ):
            for job_id in registry.get_job_ids(cleanup=False):
                yield job_id, False
        for job_id in StartedJobRegistry(name, connection=connection).get_job_ids(cleanup=False):
            yield job_id, True


def _other_work_for(connection: Redis, job: Job, row: tuple[str, int]) -> bool:
    """Is another job for the same row queued, scheduled, or running on a live worker?"""
    for job_id, started in _live_job_ids(connection):
        if job_id == job.id:
            continue
        try:
            other = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            continue
        if _row_of(other) != row:
            continue
        if not started or worker_alive(connection, other.worker_name):
            return True
    return False


# --- failing ------------------------------------------------------------------------------


def fail_row(job: Job, reason: str) -> bool:
    """Mark the job's row failed (see the module's docstring); True when it was."""
    row = _row_of(job)
    if row is None:
        return False
    if _other_work_for(job.connection, job, row):
        log.info("job %s failed, but %s %s has other work coming", job.id, *row)
        return False
    try:
        changed = _KINDS[job.func_name].fail(row[1], f"{WORKER_LOST}: {reason}"[:2000])
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("could not mark %s %s failed after job %s", *row, job.id)
        return False
    if changed:
        log.warning("%s %s marked failed: its job %s %s", *row, job.id, reason)
    return changed


def on_failure(job: Job, connection: Redis, exc_type, exc_value, tb) -> None:
    """RQ's failure callback (FAILURE_CALLBACK)."""
    reason = exc_type.__name__ if isinstance(exc_type, type) else str(exc_type)
    fail_row(job, reason)


FAILURE_CALLBACK = Callback(on_failure)


def reap_abandoned(connection: Redis) -> int:
    """Jobs that were being worked on by a worker that is gone: moved to RQ's failed
    registry and their rows failed. Returns how many. Jobs whose heartbeat expired are
    RQ's own cleanup's (which calls the same callback)."""
    reaped = 0
    for name in _queue_names(connection):
        registry = StartedJobRegistry(name, connection=connection)
        registry.cleanup()  # expired heartbeats: RQ fails them and calls the callback
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
            try:
                job = Job.fetch(job_id, connection=connection)
            except NoSuchJobError:
                connection.zrem(registry.key, f"{job_id}:{execution_id}")
                continue
            if worker_alive(connection, job.worker_name):
                continue
            log.warning("job %s: its worker %s is gone", job.id, job.worker_name)
            _move_to_failed(registry, job, f"{job_id}:{execution_id}")
            if job.failure_callback is not None:
                with contextlib.suppress(Exception):
                    job.execute_failure_callback(
                        _NoDeathPenalty, WorkerLost, WorkerLost(), traceback.extract_stack()
                    )
            reaped += 1
    return reaped


class WorkerLost(Exception):
    """The worker that ran the job is gone (killed, or its machine)."""


class _NoDeathPenalty:
    """execute_failure_callback wants a timeout class; the callback is quick."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> bool:
        return False


def _move_to_failed(registry: StartedJobRegistry, job: Job, entry: str) -> None:
    with job.connection.pipeline() as pipe:
        pipe.zrem(registry.key, entry)
        job.set_status(JobStatus.FAILED, pipeline=pipe)
        FailedJobRegistry(job.origin, connection=job.connection).add(
            job, exc_string="Moved to the failed registry: its worker is gone", pipeline=pipe
        )
        pipe.execute()
