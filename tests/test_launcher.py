"""`make run` keeps its processes running (issue 16, point 14): the real launcher with
the embedded Valkey, web, worker and cron. A killed worker left web and cron running
without one (honcho never noticed: the worker's scheduler kept its output open), a
killed Valkey left all three without the queue, and Ctrl-C printed tracebacks (Valkey
stopped at the same moment as the processes using it)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from portal.launcher import RestartBudget, running
from tests.workers import wait_for

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree(pid: int) -> dict[int, str]:
    """Every descendant of `pid` with its command line."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        parents[int(entry)] = int(fields[1])
        commands[int(entry)] = argv.decode(errors="replace")
    found, todo = {}, [pid]
    while todo:
        current = todo.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                found[child] = commands[child]
                todo.append(child)
    return found


def _pids(pid: int, marker: str) -> list[int]:
    return sorted(p for p, cmd in _tree(pid).items() if marker in cmd and "/bin/sh" not in cmd)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            body = json.load(answer)
    except OSError:
        return False
    return body.get("status") == "ok" and body.get("queue") == "ok"


class Run:
    """`python -m portal.launcher` in a process group of its own, as a terminal runs it."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = _free_port()
        self.log = tmp_path / "make-run.log"
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(
            INSTANCE_PATH=str(tmp_path / "instance"),
            WEB_PORT=str(self.port),
            SECRET_KEY="launcher-test",
            PYTHONUNBUFFERED="1",
        )
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "portal.launcher"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole group
        return self.process.wait(timeout=60)

    def kill(self) -> None:
        for pid in _tree(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@pytest.fixture
def make_run(tmp_path):
    run = Run(tmp_path)
    yield run
    run.kill()


def _wait_healthy(run: Run, message: str, timeout: float = 120) -> None:
    wait_for(
        lambda: _healthy(run.port) or run.process.poll() is not None,
        timeout=timeout,
        message=f"{message}\n{run.output()[-3000:]}",
        interval=0.5,
    )
    assert run.process.poll() is None, run.output()[-3000:]


def test_make_run_restarts_what_dies_and_stops_quietly(make_run):
    run = make_run
    _wait_healthy(run, "make run must come up")

    # the worker is killed: web, worker and cron start again, with one line saying so
    (worker,) = _pids(run.process.pid, "rq worker")[:1]
    os.kill(worker, signal.SIGKILL)
    wait_for(
        lambda: "make run: worker.1 stopped" in run.output(),
        timeout=30,
        message=f"the launcher must notice the dead worker\n{run.output()[-3000:]}",
        interval=0.5,
    )
    wait_for(
        lambda: (pids := _pids(run.process.pid, "rq worker")) and worker not in pids,
        timeout=60,
        message="a new worker must start",
        interval=0.5,
    )
    _wait_healthy(run, "web and the queue must answer again")

    # the embedded Valkey is killed: it starts again on the same port, the others too
    (valkey,) = _pids(run.process.pid, "valkey-server")
    port = run.output().split("127.0.0.1:", 1)[1].split("/", 1)[0]
    os.kill(valkey, signal.SIGKILL)
    wait_for(
        lambda: "the embedded Valkey stopped; started again on the same port" in run.output(),
        timeout=30,
        message=f"the launcher must start Valkey again\n{run.output()[-3000:]}",
        interval=0.5,
    )
    (again,) = _pids(run.process.pid, "valkey-server")
    assert again != valkey and f"127.0.0.1:{port}" in _tree(run.process.pid)[again]
    _wait_healthy(run, "web and the queue must answer after Valkey came back")
    assert _pids(run.process.pid, "rq worker") and _pids(run.process.pid, "rq cron")

    # Ctrl-C: everything stops, in order, without a traceback, and nothing is left
    everyone = _tree(run.process.pid)
    before = len(run.output())
    assert run.ctrl_c() == 0
    output = run.output()[before:]  # (the worker's complaint about the lost Valkey was real)
    assert "Traceback" not in output and "Error" not in output, output[-5000:]
    assert output.rstrip().endswith("make run: stopped.")
    time.sleep(0.5)
    left = {pid: cmd for pid, cmd in everyone.items() if running(pid)}
    assert left == {}, left


def test_a_process_that_keeps_dying_stops_everything_with_one_line():
    budget = RestartBudget(allowed=3, window=120)
    assert [budget.spend(now=t) for t in (0, 10, 20, 30)] == [True, True, True, False]
    later = RestartBudget(allowed=3, window=120)
    assert all(later.spend(now=t) for t in (0, 100, 200, 300, 400))  # spread out: fine
