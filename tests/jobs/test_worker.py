"""A real job, enqueued by the web app, executed by a real `rq worker` process."""

from __future__ import annotations

import subprocess
import sys
import time

from portal.config import ROOT
from portal.extensions import db, rq
from portal.jobs import service, tasks
from portal.jobs.models import Heartbeat
from tests.helpers.apps import web_app
from tests.workers import worker_env


def test_heartbeat_job_runs_on_a_real_worker_process(app, web, database_url, redis_url):
    # `web` is a second app like the web process: queues are asynchronous (not TESTING).
    with web.app_context():
        job = tasks.heartbeat.enqueue("worker-test")
        assert job.get_status() == "queued"
        assert db.session.get(Heartbeat, "worker-test") is None

    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "rq", "worker", "--burst"],
        cwd=ROOT,
        env=worker_env(database_url, redis_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]

    with web.app_context():
        job.refresh()
        assert job.get_status() == "finished", result.stderr[-2000:]
        assert job.return_value() == 1
        beat = db.session.get(Heartbeat, "worker-test")
        assert beat is not None and beat.beats == 1
        assert beat.last_seen.timestamp() >= started - 5


def test_heartbeat_is_idempotent_per_name(ctx):
    assert service.beat("cron") == 1
    assert service.beat("cron") == 2
    assert service.last_beat("cron").beats == 2


def test_tests_run_jobs_synchronously(ctx):
    """In TESTING the queue runs jobs at once, so services are testable without a worker."""
    job = tasks.heartbeat.enqueue("sync")
    assert job.get_status() == "finished"
    assert rq.queue.is_async is False


def test_cron_table_registers_heartbeat_and_cleanup(app):
    with app.app_context():
        scheduler = rq.make_cron_scheduler()
        names = {job.func_name for job in scheduler.get_jobs()}
    assert "portal.jobs.tasks.heartbeat" in names
    assert "portal.jobs.tasks.cleanup_expired" in names
    assert "portal.imports.tasks.sweep_uploads" in names  # uploaded lists kept 7 days at most


def test_cleanup_removes_only_expired_invitations(app, make_account, make_user, time_machine):
    from datetime import timedelta

    from portal import clock
    from portal.accounts.models import Invitation

    account_id = make_account("acme")
    with app.app_context():
        now = clock.now()
        db.session.add_all(
            [
                Invitation(
                    account_id=account_id,
                    email="old@x.example",
                    role="viewer",
                    token_hash="a" * 64,
                    expires_at=now - timedelta(days=1),
                ),
                Invitation(
                    account_id=account_id,
                    email="new@x.example",
                    role="viewer",
                    token_hash="b" * 64,
                    expires_at=now + timedelta(days=1),
                ),
            ]
        )
        db.session.commit()
        assert service.cleanup_expired() == 1
        time_machine.move_to(now + timedelta(days=2))
        assert service.cleanup_expired() == 1
        assert db.session.scalar(db.select(db.func.count(Invitation.id))) == 0


def test_jobs_get_the_portals_timeout_not_rqs_three_minutes(database_url, redis_url):
    """RQ kills a job after 180 s by default, which would cut a large import or purge
    short; every queue of the portal uses JOB_TIMEOUT_SECONDS instead."""
    with web_app(database_url, redis_url, JOB_TIMEOUT_SECONDS=7200) as web, web.app_context():
        for name in ("high", "default", "low"):
            job = rq.get_queue(name).enqueue(tasks.heartbeat.func, "timeout-test")
            assert job.timeout == 7200
            job.delete()
