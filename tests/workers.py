"""Real `flask --app app rq worker` processes for tests: start one, kill it -9 together
with its work horse, wait for something to show in the database.

Run as `python -m tests.workers rq worker ...` it is the same `flask --app app` command
with the portal's clock moved by PORTAL_TEST_CLOCK_OFFSET seconds (time-machine, ticking):
the work horses such a worker starts run this entry too (Flask-RQ repeats the command
line up to `rq`), so the whole job sees the moved clock — the nightly purge at 03:05
Berlin time, or a lease that ran out two minutes ago, without waiting for either."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
CLOCK_OFFSET = "PORTAL_TEST_CLOCK_OFFSET"
T = TypeVar("T")
# What every test process shares, as every node of an installation must: on PostgreSQL
# the portal does not start without both in the environment (portal.config.check_shared_keys).
TEST_KEYS = {"SECRET_KEY": "test-secret-key", "SUPPRESSION_KEY": "5eed" * 16}


def worker_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        **TEST_KEYS,
        **extra,
    )


class Worker:
    """One worker process (its own process group); output goes to a file, so a chatty
    worker never blocks on a full pipe. Its work horses are found by the worker's name
    on their command line, also after the worker itself died and left them behind."""

    def __init__(self, process: subprocess.Popen, log: Path, name: str):
        self.process = process
        self.log = log
        self.name = name

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def finish(self, timeout: float) -> str:
        """Wait for a burst worker to run out of work; its output."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the worker ran longer than {timeout} s:\n{self.output()[-3000:]}"
            ) from None
        return self.output()

    def horses(self) -> list[int]:
        """The work horses of this worker (`... rq work-horse <queue> rq:worker:<name> ...`)."""
        mark = f"rq:worker:{self.name}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"work-horse" in argv and mark in argv:
                    found.append(int(entry))
        return found

    def kill(self) -> None:
        """kill -9, as the machine's OOM killer or a pulled plug would: the worker and
        every work horse of it, also one whose worker is already gone."""
        for horse in self.horses():
            with contextlib.suppress(ProcessLookupError):
                os.kill(horse, signal.SIGKILL)
        if self.process.poll() is None:
            kill_with_work_horses(self.pid)
        self.process.wait(timeout=30)

    def alive(self) -> bool:
        return self.process.poll() is None


def start_worker(
    database_url: str,
    redis_url: str,
    *,
    burst: bool = True,
    clock_offset: float = 0,
    options: Sequence[str] = (),
    **extra_env: str,
) -> Worker:
    """`flask --app app rq worker [options]` on the test database and Redis; with
    `clock_offset` through this module's entry (see the docstring)."""
    env = worker_env(database_url, redis_url, **extra_env)
    if clock_offset:
        env[CLOCK_OFFSET] = str(clock_offset)
        args = [sys.executable, "-m", "tests.workers", "rq", "worker"]
    else:
        args = [sys.executable, "-m", "flask", "--app", "app", "rq", "worker"]
    name = f"test-{uuid.uuid4().hex[:12]}"
    args += ["--name", name]
    if burst:
        args.append("--burst")
    args += options
    fd, log_name = tempfile.mkstemp(prefix="portal-worker-", suffix=".log")
    with os.fdopen(fd, "w") as log:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Worker(process, Path(log_name), name)


def children(pid: int) -> list[int]:
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


def kill_with_work_horses(pid: int) -> None:
    """kill -9 the worker and the work horse doing the job (its own process group)."""
    for child in children(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def wait_for(
    probe: Callable[[], T],
    *,
    timeout: float,
    message: str,
    worker: Worker | None = None,
    interval: float = 0.02,
) -> T:
    """Poll `probe` until it returns something true; that value. Fails after `timeout`
    (or when `worker` died first), with the worker's output."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        gone = worker is not None and not worker.alive()
        if gone or time.monotonic() > deadline:
            why = "the worker exited" if gone else f"waited {timeout} s"
            log = worker.output()[-3000:] if worker is not None else ""
            raise AssertionError(f"{message} ({why})\n{log}")
        time.sleep(interval)


def _main() -> None:
    offset = float(os.environ.get(CLOCK_OFFSET) or 0)
    if offset:
        from datetime import UTC, datetime, timedelta

        import time_machine

        time_machine.travel(datetime.now(UTC) + timedelta(seconds=offset), tick=True).start()
    from flask.cli import main

    sys.argv = ["flask", "--app", "app", *sys.argv[1:]]
    main()


if __name__ == "__main__":
    _main()
