"""`make run`: prepare everything and start web, worker and cron with honcho.

This process owns the embedded Valkey when REDIS_URL is unset: it starts it,
hands REDIS_URL to the children through the environment, and stops it when
honcho ends (Ctrl-C or SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess  # nosec B404  # runs the portal's own fixed commands
import sys
from pathlib import Path

from portal.config import ROOT, instance_path


def _flask(*args: str, env: dict, check: bool = True) -> int:
    cmd = [sys.executable, "-m", "flask", "--app", "app", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, check=check).returncode  # nosec B603  # fixed


def main() -> int:
    env = dict(os.environ)
    # The Procfile's commands must find this environment's flask, not the system's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    instance = instance_path()
    instance.mkdir(parents=True, exist_ok=True)
    server = None
    if not env.get("REDIS_URL"):
        from portal.jobs.embedded import start_server

        server, url = start_server(instance)
        env["REDIS_URL"] = url
        print(f"Embedded Valkey (Redis-compatible) at {url}", flush=True)
    try:
        _flask("db", "upgrade", env=env)
        if _flask("portal", "is-empty", env=env, check=False) == 0:
            _flask("portal", "seed-demo", env=env)
        else:
            _flask("portal", "demo-logins", env=env, check=False)
        port = env.get("WEB_PORT", "5000")
        env["WEB_PORT"] = port
        print(f"\n  Recipient portal: http://127.0.0.1:{port}/login", flush=True)
        print("  Stop with Ctrl-C.\n", flush=True)
        procfile = Path(ROOT / "Procfile")
        honcho = subprocess.Popen(  # nosec B603  # a fixed command line, no user input
            [sys.executable, "-m", "honcho", "start", "-f", str(procfile), "-d", str(ROOT)],
            env=env,
        )

        def forward(signum, _frame):
            honcho.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        return honcho.wait()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
