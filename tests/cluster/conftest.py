"""Nodes of a small cluster on one machine: the web (gunicorn) and RQ workers as separate
processes, each with its own working directory, instance folder and temp folder, and
nothing shared but what several machines share — the PostgreSQL database, Redis and the
environment (the same SECRET_KEY and SUPPRESSION_KEY). See docs/decisions/two-nodes.md.

Separate folders alone would not do: the portal keeps absolute paths in the database
(an upload's `stored_path`, an export's `path`), and on one machine every process can
open every path. So each node runs in a mount namespace of its own (`unshare --mount`,
we run as root) in which the other nodes' folders are covered by an empty tmpfs: a file
one node writes to its own disk is not there for another one, exactly as on separate
hosts. The network stays shared (PostgreSQL and Redis listen on 127.0.0.1 only)."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.workers import Worker

APP = "portal:create_app()"  # not `app`: a node's working directory holds no checkout
# what a node must not inherit from the test process: every node has its own folders
NODE_LOCAL = ("INSTANCE_PATH", "BACKUP_DIR", "OUTBOX_DIR", "TMPDIR", "FILE_STORE")


class FileNotOnThisNode(AssertionError):
    """A file one node wrote is missing on another: what a store on one node's disk does
    to a cluster (the folder store's run is expected to fail with exactly this)."""


@dataclass
class Node:
    """One host of the cluster: its own working directory, instance folder and temp."""

    name: str
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def instance(self) -> Path:
        return self.home / "instance"

    def files(self) -> list[str]:
        """Every file on this node's disk, relative to its home (for failure messages)."""
        return sorted(str(p.relative_to(self.home)) for p in self.home.rglob("*") if p.is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """Starts nodes on the test database and Redis; stops whatever runs at the end."""

    NODES = ("a", "b", "c")

    def __init__(self, root: Path, app, store: str) -> None:
        self.root = root
        self.store = store
        for name in self.NODES:  # all at once: each node hides the others' from the start
            for folder in ("instance", "tmp"):
                (self.home(name) / folder).mkdir(parents=True)
        # the keys of the session app, which made the database (its suppression list
        # knows its key: a node with another one refuses every check)
        self.shared = {
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "SECRET_KEY": app.config["SECRET_KEY"],
            "SUPPRESSION_KEY": app.config["SUPPRESSION_KEY"],
            "FILE_STORE": store,
        }
        self.base_url = f"http://127.0.0.1:{free_port()}"
        self.web_process: subprocess.Popen | None = None
        self.workers: list[Worker] = []
        self.logs: list[Path] = []

    def home(self, name: str) -> Path:
        return self.root / f"node-{name}"

    def node(self, name: str, **extra: str) -> Node:
        home = self.home(name)
        env = {k: v for k, v in os.environ.items() if k not in NODE_LOCAL}
        env |= self.shared | {
            "INSTANCE_PATH": str(home / "instance"),
            "TMPDIR": str(home / "tmp"),
            "HOME": str(home),
            "BASE_URL": self.base_url,
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
        return Node(name, home, env)

    def _popen(self, node: Node, args: list[str], log_name: str) -> subprocess.Popen:
        """`args` on `node`: in its own mount namespace, where the other nodes' folders are
        empty (unshare execs, so the process id is the command's own)."""
        hide = [
            f"mount -t tmpfs -o size=1m,mode=0700 node-elsewhere {shlex.quote(str(self.home(n)))}"
            for n in self.NODES
            if n != node.name
        ]
        script = " && ".join([*hide, 'exec "$@"'])
        wrapped = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        log = node.home / log_name
        self.logs.append(log)
        with log.open("w") as out:
            return subprocess.Popen(
                [*wrapped, f"node-{node.name}", *args],
                cwd=node.home,
                env=node.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def start_web(self, node: Node, timeout: float = 30) -> str:
        """gunicorn on `node`, as in production; its URL once /healthz answers."""
        port = self.base_url.rsplit(":", 1)[1]
        args = [sys.executable, "-m", "gunicorn", "-w", "1", "--threads", "4"]
        args += ["-b", f"127.0.0.1:{port}", "--timeout", "120", "--no-control-socket", APP]
        self.web_process = self._popen(node, args, "web.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.web_process.poll() is not None:
                break
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.base_url}/healthz", timeout=2).ok:
                    return self.base_url
            time.sleep(0.1)
        raise AssertionError(f"the web node did not start:\n{self.output()}")

    def start_worker(self, node: Node) -> Worker:
        """`flask rq worker` on `node`, running until it is stopped (or killed)."""
        name = f"{node.name}-{uuid.uuid4().hex[:8]}"
        args = [sys.executable, "-m", "flask", "--app", APP, "rq", "worker", "--name", name]
        process = self._popen(node, args, f"worker-{name}.log")
        worker = Worker(process, node.home / f"worker-{name}.log", name)
        self.workers.append(worker)
        return worker

    def output(self) -> str:
        """The last lines of every node's log, for a failure message."""
        parts = []
        for log in self.logs:
            with contextlib.suppress(OSError):
                parts.append(f"--- {log.parent.name}/{log.name}:\n{log.read_text()[-2500:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for worker in self.workers:
            worker.kill()
        if self.web_process is not None and self.web_process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.web_process.pid, signal.SIGTERM)
            try:
                self.web_process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.web_process.pid, signal.SIGKILL)
                self.web_process.wait(timeout=15)


def _separate_disks() -> str | None:
    """Why nodes cannot have disks of their own here (None when they can)."""
    try:
        probe = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "true"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare: {exc}"
    return None if probe.returncode == 0 else f"unshare --mount: {probe.stderr.strip()}"


@pytest.fixture
def cluster(request, app, tmp_path):
    """A Cluster on the file store the test is parametrized with (`store`). Depends on the
    session `app`, which made the tables; its cleanup empties them after the test."""
    if why := _separate_disks():
        message = f"nodes need mount namespaces (root, util-linux) for disks of their own: {why}"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(message + " — CI=true, so this is a failure, not a skip.", pytrace=False)
        pytest.skip(message)
    made = Cluster(tmp_path, app, request.param)
    try:
        yield made
    finally:
        made.stop()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(made.output())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
