"""Redis goes away in the middle of an import of 100,000 rows and comes back empty (a
real redis-server that this test starts, kills -9 and starts again on its port, with
no persistence): the import either finishes or is marked failed and can be run again,
and then ends exactly like a clean run of the same file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from portal import create_app
from portal.accounts.models import Account
from portal.contacts import service as contacts
from portal.extensions import db
from portal.imports import service as imports
from portal.imports import tasks
from portal.imports.models import ImportJob, ImportRow, ImportStatus
from tests.drills.conftest import account_state, fresh, new_account
from tests.imports.conftest import write_csv
from tests.workers import TEST_KEYS, wait_for

ROWS = 100_000
MONITORING = ("--job-monitoring-interval", "1")


class RedisServer:
    """Debian's redis-server on a free loopback port, without persistence: after a
    restart it is empty, as a Redis that lost its memory."""

    def __init__(self, folder: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server not found (apt-get install redis-server)"
            if os.environ.get("CI", "").strip().lower() == "true":
                pytest.fail(message + " — CI=true, so this is a failure, not a skip.")
            pytest.skip(message)
        self.binary = binary
        self.folder = folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = (self.folder / "redis.log").open("a")
        self.process = subprocess.Popen(
            [
                self.binary,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.folder)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        wait_for(lambda: self._pings(client), timeout=10, message="redis-server must start")

    @staticmethod
    def _pings(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


def _rows(n: int) -> list[list[str]]:
    rows = [["email", "first_name", "last_name", "tags"]]
    rows += [
        [f"user{i}@example.com", f"Zoë{i}", f"Größ{i % 7}", f"T{i % 3};Ł{i % 2}"] for i in range(n)
    ]
    return rows


def _new_import(account_id: int, path: Path) -> int:
    account = db.session.get(Account, account_id)
    group = contacts.create_group(account, "Newsletter", actor=None, source="ui")
    job = imports.create_import(
        account, actor=None, group=group, source_path=path, filename="list.csv", source="ui"
    )
    imports.configure(
        job, mapping=job.mapping, mode="update_add", import_consent=False, restore_deleted=False
    )
    db.session.commit()
    return job.id


def _staged(job_id: int) -> int:
    db.session.remove()
    return db.session.scalar(
        db.select(db.func.count()).select_from(ImportRow).where(ImportRow.import_id == job_id)
    )


def _settled(job_id: int) -> ImportJob | None:
    job = fresh(ImportJob, job_id)
    return job if job.status in (ImportStatus.FINISHED, ImportStatus.FAILED) else None


def test_redis_restart_during_an_import(database_url, redis_server, workers, tmp_path):
    web = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_server.url,
            **TEST_KEYS,
            "BACKUP_DIR": str(tmp_path / "backups"),
        }
    )
    path = write_csv(tmp_path / "list.csv", _rows(ROWS))
    with web.app_context():
        clean = new_account("clean", 0)
        clean_job = _new_import(clean, path)
        imports.run(db.session.get(ImportJob, clean_job))  # what the job runs, in-process
        assert _staged(clean_job) > 0  # until the clean-up job drops it

        drill = new_account("drill", 0)
        job_id = _new_import(drill, path)
        tasks.enqueue_run(db.session.get(ImportJob, job_id))

    # the worker reports to Redis every second while the job runs (RQ's default is
    # 30 s), so the outage surely falls on a heartbeat, not between two
    worker = workers(burst=False, redis=redis_server.url, options=MONITORING)
    with web.app_context():
        wait_for(
            lambda: fresh(ImportJob, job_id).staged_line >= ROWS // 10,
            timeout=60,
            message="the import must get going",
            worker=worker,
        )
        redis_server.kill()
        time.sleep(1.5)  # Redis is down while the worker goes on (and misses heartbeats)
        redis_server.start()
        job = wait_for(
            lambda: _settled(job_id),
            timeout=90,
            message="the import must finish or be marked failed",
        )
        outcome = job.status
        if not worker.alive():
            # RQ's worker quits when a heartbeat finds Redis gone (its work horse goes
            # on and finishes the job); the supervisor starts it again
            worker = workers(burst=False, redis=redis_server.url, options=MONITORING)
        if job.status == ImportStatus.FAILED:
            assert imports.can_resume(job), "a failed import can be run again"
            tasks.enqueue_run(job)  # "run again" on the import's page
            job = wait_for(
                lambda: _settled(job_id),
                timeout=90,
                message="the import run again must finish",
                worker=worker,
            )
        print(f"after the Redis restart the import was {outcome}, then {job.status}")
        assert job.status == ImportStatus.FINISHED, worker.output()[-3000:]
        # the queue works again: the staging clean-up the import enqueued at its end ran
        wait_for(
            lambda: _staged(job_id) == 0,
            timeout=60,
            message="the import's staging must be cleaned up after the restart",
            worker=worker,
        )
        reference = db.session.get(ImportJob, clean_job)
        assert job.counters() == reference.counters()
        assert job.created == ROWS
        assert account_state(drill) == account_state(clean)
    with web.app_context():
        db.session.remove()
        db.engine.dispose()
