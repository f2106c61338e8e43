"""Exactly one scheduler (issue 18, point 3): however many `flask rq cron` run (one per
machine), one enqueues the cron table; when it dies, another takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from rq import Queue

from portal.config import ROOT
from portal.extensions import rq
from portal.jobs import tasks
from portal.jobs.scheduler import LEASE_KEY, SingleCronScheduler
from tests.workers import worker_env


def _scheduler(connection, lease_seconds: int = 150) -> SingleCronScheduler:
    scheduler = SingleCronScheduler(connection, name="portal", lease_seconds=lease_seconds)
    scheduler.register(tasks.heartbeat.func, queue_name="default", args=("cron",), interval=60)
    return scheduler


def _heartbeats(connection) -> int:
    return sum(
        1
        for job in Queue("default", connection=connection).jobs
        if job.func_name.endswith("heartbeat")
    )


def test_two_schedulers_enqueue_a_due_job_once(ctx):
    connection = rq.queue.connection
    first, second = _scheduler(connection), _scheduler(connection)
    first.register_birth(), second.register_birth()
    enqueued = [len(first.enqueue_jobs()), len(second.enqueue_jobs())]
    assert enqueued == [1, 0] and _heartbeats(connection) == 1
    assert connection.get(LEASE_KEY).decode() == first.name
    # turn after turn: the holder renews its lease, the other never enqueues
    for _ in range(3):
        first.enqueue_jobs(), second.enqueue_jobs()
    assert _heartbeats(connection) == 1 and connection.ttl(LEASE_KEY) > 100
    # the holder stops on purpose: it gives the lease back, the other one takes over and
    # runs what fell due meanwhile (here: its own never-run job)
    first.register_death()
    assert len(second.enqueue_jobs()) == 1 and _heartbeats(connection) == 2
    assert connection.get(LEASE_KEY).decode() == second.name


def test_a_dead_holders_lease_runs_out_and_another_takes_over(ctx):
    connection = rq.queue.connection
    dead, other = _scheduler(connection, lease_seconds=1), _scheduler(connection, lease_seconds=1)
    assert len(dead.enqueue_jobs()) == 1  # then it is killed: no renewal, no release
    assert other.enqueue_jobs() == []
    assert other.calculate_sleep_interval() <= 1  # it looks again soon
    time.sleep(1.3)
    assert len(other.enqueue_jobs()) == 1 and other.leading
    # the dead one's lease is not renewed by a late turn of it: it lost it
    assert dead.enqueue_jobs() == [] and not dead.leading


def test_two_cron_processes_enqueue_once_and_the_survivor_takes_over(database_url, redis_url, ctx):
    """Two real `flask rq cron` processes on one Redis, as on two machines."""
    connection = rq.queue.connection
    env = worker_env(database_url, redis_url, CRON_LEASE_SECONDS="3")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "rq", "cron"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while _heartbeats(connection) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(5)  # both have turned several times, past the first lease's expiry
        assert _heartbeats(connection) == 1
        holder_pid = int(connection.get(LEASE_KEY).decode().split(":")[-2])
        holder = next(p for p in processes if p.pid == holder_pid)
        survivor = next(p for p in processes if p is not holder)
        os.killpg(holder.pid, signal.SIGKILL)  # the machine is gone: no release
        holder.wait(timeout=10)
        deadline = time.monotonic() + 30
        while _heartbeats(connection) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _heartbeats(connection) == 2  # the survivor took over within the lease
        assert int(connection.get(LEASE_KEY).decode().split(":")[-2]) == survivor.pid
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(timeout=20)
        assert connection.get(LEASE_KEY) is None  # stopped on purpose: lease given back
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
