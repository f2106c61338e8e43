"""Imports on a real `rq worker` process: the whole job, and a worker killed mid-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portal import create_app
from portal.accounts import service as accounts
from portal.config import ROOT
from portal.contacts.models import Group
from portal.extensions import db
from portal.imports import service, tasks
from portal.imports.models import ImportJob, ImportStatus
from tests.imports.conftest import contact_state, write_csv


@pytest.fixture
def web(database_url, redis_url):
    """The app as the web process has it: queues are asynchronous."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "test-secret-key",
        }
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _worker(database_url, redis_url, *, burst=True, **extra_env):
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="test-secret-key",
        **extra_env,
    )
    args = [sys.executable, "-m", "flask", "--app", "app", "rq", "worker"]
    if burst:
        args.append("--burst")
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _kill_with_work_horses(pid: int) -> None:
    """kill -9 the worker and the work horse doing the job (its own process group)."""
    for child in _children(pid):
        os.kill(child, signal.SIGKILL)
    os.killpg(pid, signal.SIGKILL)


def _rows(n):
    rows = [["email", "first_name", "last_name", "tags"]]
    rows += [
        [f"user{i}@example.com", f"Zoë{i}", f"Größ{i % 7}", f"T{i % 3};Ł{i % 2}"] for i in range(n)
    ]
    return rows


def _new_import(app, tmp_path, slug, rows):
    with app.app_context():
        account = accounts.create_account(slug.title(), slug)
        group = Group(account_id=account.id, name="Newsletter")
        db.session.add(group)
        db.session.commit()
        path = write_csv(tmp_path / f"{slug}.csv", rows)
        job = service.create_import(
            account, actor=None, group=group, source_path=path, filename=f"{slug}.csv"
        )
        service.configure(
            job, mapping=job.mapping, mode="update_add", import_consent=False, restore_deleted=False
        )
        db.session.commit()
        return account.id, job.id


def _status(app, job_id):
    with app.app_context():
        db.session.remove()
        return db.session.get(ImportJob, job_id)


def test_import_runs_on_a_real_worker(web, tmp_path, database_url, redis_url):
    account_id, job_id = _new_import(web, tmp_path, "realworker", _rows(300))
    with web.app_context():
        tasks.enqueue_check(db.session.get(ImportJob, job_id))
    out = _worker(database_url, redis_url).communicate(timeout=120)[0]
    job = _status(web, job_id)
    assert job.status == ImportStatus.READY, out[-3000:]
    assert job.dry_run["created"] == 300
    with web.app_context():
        tasks.enqueue_run(db.session.get(ImportJob, job_id))
        from portal.extensions import rq

        assert rq.get_queue().job_ids, "the run job must be waiting in the queue"
    out = _worker(database_url, redis_url).communicate(timeout=120)[0]
    with web.app_context():
        job = db.session.get(ImportJob, job_id)
        assert job.status == ImportStatus.FINISHED, out[-3000:]
        assert job.created == 300
        assert len(contact_state(account_id)) == 300


def test_killed_worker_resumes_without_doubling(web, tmp_path, database_url, redis_url):
    rows = _rows(20000)
    clean_account, clean_job = _new_import(web, tmp_path, "clean", rows)
    with web.app_context():
        service.run(db.session.get(ImportJob, clean_job))

    account_id, job_id = _new_import(web, tmp_path, "killed", rows)
    with web.app_context():
        tasks.enqueue_run(db.session.get(ImportJob, job_id))
    worker = _worker(
        database_url, redis_url, burst=False, IMPORT_BATCH_ROWS="200", IMPORT_CHUNK_ROWS="2000"
    )
    deadline = time.monotonic() + 120
    staged_at_kill = 0
    while time.monotonic() < deadline:
        job = _status(web, job_id)
        assert job.status != ImportStatus.FAILED, job.error
        if job.staged_line >= 2000:
            _kill_with_work_horses(worker.pid)
            staged_at_kill = job.staged_line
            break
        time.sleep(0.02)
    worker.wait(timeout=30)
    assert 0 < staged_at_kill < 20001, "the worker must die in the middle of the import"
    job = _status(web, job_id)
    assert job.status == ImportStatus.RUNNING and not job.staging_done

    with web.app_context():
        job = db.session.get(ImportJob, job_id)
        job.touched_at = None  # as if ten quiet minutes had passed: the page offers "continue"
        db.session.commit()
        assert service.can_resume(job)
        tasks.enqueue_run(job)
    out = _worker(
        database_url, redis_url, IMPORT_BATCH_ROWS="200", IMPORT_CHUNK_ROWS="2000"
    ).communicate(timeout=300)[0]
    with web.app_context():
        job = db.session.get(ImportJob, job_id)
        assert job.status == ImportStatus.FINISHED, out[-3000:]
        clean = db.session.get(ImportJob, clean_job)
        assert job.counters() == clean.counters()
        assert job.created == 20000
        killed_state = contact_state(account_id)
        clean_state = contact_state(clean_account)
        assert len(killed_state) == 20000

        def comparable(state):
            return {
                email: (c["first"], c["last"], c["tags"], [s[0] for s in c["subs"].values()])
                for email, c in state.items()
            }

        assert comparable(killed_state) == comparable(clean_state)
