"""Load test (issue 10, not CI): gunicorn on loopback driven by wrk for a bounded time.

    # once: an account of 1,000,000 contacts on PostgreSQL
    DATABASE_URL=postgresql+psycopg://... .venv/bin/python bench/make_large_account.py \
        --contacts 1000000 --analyze
    # then (apt-get install wrk)
    DATABASE_URL=postgresql+psycopg://... REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/load_test.py --seconds 30 --connections 8

For each target, wrk runs `--seconds` with `--connections` keep-alive connections over
2 threads against gunicorn (`--workers` sync workers) and reports throughput and the
p50/p95/p99 latency (wrk's own histogram, read in a Lua `done()` hook). Targets: the
contact list, random contact cards, the backups page, the API upsert of a contact (new
random addresses, a write key), and — as the ceiling of the same gunicorn — a static file
served by Flask (no database, no session). While the targets run, an RQ worker keeps
importing 100,000-row files of new addresses into a group of the account (source "api"),
one after the other, so every page is measured beside a running import; the imports'
durations are reported too. Any answer that is not a 2xx (a redirect too) is counted."""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from list_http_bench import Browser, prepare, start_gunicorn  # noqa: E402

# Every answer that is not a 2xx counts as a failure — a redirect too: a page that sends
# wrk to the sign-in form would otherwise look fast and fine (wrk itself counts only
# statuses >= 400). wrk sends the same User-Agent as the urllib client that signed in,
# because the session is bound to it ("strong" session protection).
LUA_DONE = (
    f'wrk.headers["User-Agent"] = "Python-urllib/{sys.version_info[0]}.{sys.version_info[1]}"\n'
    + """
local threads = {}
setup = function(thread) table.insert(threads, thread) end
bad = 0
response = function(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  local non2xx = 0
  for _, thread in ipairs(threads) do non2xx = non2xx + thread:get("bad") end
  io.write(string.format(
    '\\nRESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,'
    .. '"errors":%d,"non2xx":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), errors, non2xx))
end
"""
)


def _lua_get(paths: list[str], cookie: str | None) -> str:
    listed = ",".join(json.dumps(p) for p in paths)
    header = f'wrk.headers["Cookie"] = {json.dumps(cookie)}\n' if cookie else ""
    return (
        header
        + f"paths = {{{listed}}}\n"
        + "request = function() return wrk.format('GET', paths[math.random(#paths)]) end\n"
        + LUA_DONE
    )


def _lua_upsert(key: str, group_id: int) -> str:
    return (
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        "counter = 0\n"
        "init = function(args)\n"
        "  -- every wrk thread has its own Lua state: seed each differently\n"
        "  math.randomseed(os.time() + tonumber(tostring({}):match('0x(%x+)'), 16) % 1000003)\n"
        "end\n"
        "request = function()\n"
        "  counter = counter + 1\n"
        '  local body = string.format(\'{"email": "load-%d-%d@example.com", '
        f'"first_name": "Łucja", "group_ids": [{group_id}]}}\', math.random(1, 1e9), counter)\n'
        "  return wrk.format('POST', '/api/v1/contacts', nil, body)\n"
        "end\n" + LUA_DONE
    )


def check_target(base: str, path: str, cookie: str | None) -> None:
    """A 200 with the page itself, not a redirect to the sign-in page."""
    request = urllib.request.Request(base + path, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        body = response.read().decode()
        if response.status != 200 or 'name="password"' in body:
            raise SystemExit(f"{path}: not the signed-in page (status {response.status})")


def run_wrk(base: str, lua: str, seconds: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(lua)
        script = fh.name
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "30s",
                "-s",
                script,
                base,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        ).stdout
    finally:
        os.unlink(script)
    line = next(row for row in out.splitlines() if row.startswith("RESULT "))
    data = json.loads(line.removeprefix("RESULT "))
    seconds_run = data["duration_us"] / 1e6
    return {
        "requests": data["requests"],
        "rps": round(data["requests"] / seconds_run, 1),
        "p50_ms": round(data["p50_us"] / 1000, 1),
        "p95_ms": round(data["p95_us"] / 1000, 1),
        "p99_ms": round(data["p99_us"] / 1000, 1),
        "errors": data["errors"],
        "non2xx": data["non2xx"],
    }


def _api_key(slug: str) -> str:
    from portal import create_app
    from portal.accounts.models import Account
    from portal.api import service as keys
    from portal.extensions import db

    app = create_app()
    with app.app_context():
        account = db.session.scalar(db.select(Account).where(Account.slug == slug))
        _key, secret = keys.create_key(
            account, name="load test", scope="write", actor=None, source="ui"
        )
        db.session.commit()
        return secret


def _start_import(app, slug: str, group_id: int, rows: int, seed: int) -> int:
    """A file of new addresses imported by the worker (source "api": no backup)."""
    from portal.accounts.models import Account
    from portal.contacts.models import Group
    from portal.extensions import db
    from portal.imports import service as imports
    from portal.imports import tasks as import_tasks

    path = Path(tempfile.mkdtemp()) / "load.csv"
    rnd = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["email", "first_name", "last_name", "tags"])
        for i in range(rows):
            address = f"import-{seed}-{i}-{rnd.randint(0, 10**6)}@example.com"
            writer.writerow([address, "Zoë", "Kowalska", "load"])
    with app.app_context():
        account = db.session.scalar(db.select(Account).where(Account.slug == slug))
        group = db.session.get(Group, group_id)
        job = imports.create_import(
            account, actor=None, group=group, source_path=path, filename="load.csv", source="api"
        )
        imports.configure(
            job, mapping=job.mapping, mode="update_add", import_consent=False, restore_deleted=False
        )
        db.session.commit()
        import_tasks.enqueue_run(job)
        return job.id


def _import_state(app, import_id: int) -> tuple[str, float | None]:
    from portal.extensions import db
    from portal.imports.models import ImportJob

    with app.app_context():
        job = db.session.get(ImportJob, import_id)
        seconds = None
        if job.started_at and job.finished_at:
            seconds = (job.finished_at - job.started_at).total_seconds()
        db.session.remove()
        return job.status, seconds


class ImportLoop(threading.Thread):
    """Keeps an import running on the worker while the targets are measured: when one
    ends, the next file (new addresses) is queued."""

    def __init__(self, slug: str, group_id: int, rows: int) -> None:
        super().__init__(daemon=True)
        from portal import create_app

        self.app = create_app()
        self.slug, self.group_id, self.rows = slug, group_id, rows
        self.stop = threading.Event()
        self.running = threading.Event()
        self.done: list[dict] = []

    def run(self) -> None:
        seed = 0
        while not self.stop.is_set():
            import_id = _start_import(self.app, self.slug, self.group_id, self.rows, seed)
            while True:
                status, seconds = _import_state(self.app, import_id)
                if status == "running":
                    self.running.set()
                if status in ("finished", "failed"):
                    break
                time.sleep(0.5)
            self.done.append({"status": status, "seconds": seconds, "rows": self.rows})
            seed += 1


def main() -> None:
    from bench.keys import use_bench_keys

    use_bench_keys()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slug", default="bench")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--import-rows", type=int, default=100_000)
    args = parser.parse_args()

    facts = prepare(args.slug)
    key = _api_key(args.slug)
    env = dict(os.environ, RATELIMIT_ENABLED="false")
    server, base = start_gunicorn(workers=args.workers)
    worker = None
    try:
        browser = Browser(base)
        browser.login(facts["email"])
        cookie = None
        for handler in browser.opener.handlers:
            if hasattr(handler, "cookiejar"):
                cookie = "; ".join(f"{c.name}={c.value}" for c in handler.cookiejar)
        slug = args.slug
        ceiling = run_wrk(
            base, _lua_get(["/static/css/portal.css"], None), args.seconds, args.connections
        )

        worker = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "rq", "worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        imports = ImportLoop(slug, facts["group"], args.import_rows)
        imports.start()
        if not imports.running.wait(timeout=120):  # the pages are measured while it runs
            raise SystemExit("the import did not start on the worker")
        for path in (
            f"/a/{slug}/contacts",
            f"/a/{slug}/contacts/{facts['ids'][0]}",
            f"/a/{slug}/backups",
        ):
            check_target(base, path, cookie)
        targets = {
            "contact list": _lua_get([f"/a/{slug}/contacts"], cookie),
            "contact card": _lua_get([f"/a/{slug}/contacts/{i}" for i in facts["ids"]], cookie),
            "backups page": _lua_get([f"/a/{slug}/backups"], cookie),
            "API upsert": _lua_upsert(key, facts["group"]),
        }
        results = {"ceiling (static file)": ceiling}
        for name, lua in targets.items():
            results[name] = run_wrk(base, lua, args.seconds, args.connections)
        imports.stop.set()
        imports.join(timeout=3600)
        finished = [d for d in imports.done if d["status"] == "finished"]
        results["imports while measuring"] = {
            "imports": len(imports.done),
            "finished": len(finished),
            "rows_each": args.import_rows,
            "seconds_each": [round(d["seconds"], 1) for d in finished if d["seconds"]],
        }
        print(
            json.dumps(
                {
                    "database": facts["dialect"],
                    "contacts": facts["contacts"],
                    "gunicorn_workers": args.workers,
                    "connections": args.connections,
                    "seconds_per_target": args.seconds,
                    "results": results,
                },
                indent=2,
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
        if worker is not None and worker.poll() is None:
            worker.terminate()


if __name__ == "__main__":
    main()
