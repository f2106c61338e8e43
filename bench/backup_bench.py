"""Backup benchmarks (issue 5).

    # 1. the snapshot of one big group (builds the account once, then reuses it), on
    #    each file store in turn (--stores folder,postgresql: the same group, alternating)
    DATABASE_URL=postgresql+psycopg://... .venv/bin/python bench/backup_bench.py snapshot \
        --contacts 1000000

    # 1b. that group's backup downloaded through a real gunicorn (signed in, the backups
    #     page's link), on each file store in turn: time and the web worker's memory
    DATABASE_URL=postgresql+psycopg://... .venv/bin/python bench/backup_bench.py download

    # 2. a portal import without the automatic backup, and with it on each file store
    #    (--stores folder,postgresql; drops and recreates every table, like
    #    bench/import_bench.py: use a scratch database, or --into-group-of SLUG)
    DATABASE_URL=postgresql+psycopg://.../scratch .venv/bin/python bench/backup_bench.py \
        import --rows 100000

Every measured run happens in a child process, so that its peak RSS (VmHWM) is its own.
The snapshot child reports its resident memory before the snapshot and its peak after:
the difference is what the snapshot itself needed (flat: it streams through a
server-side cursor, compresses and hashes as it writes)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEMORY = """
def mem_mb(field):
    status = open("/proc/self/status").read()
    return int(status.split(field + ":")[1].split()[0]) / 1024
"""

# CPU seconds the database's server processes (this database's backends, on this
# machine) have used so far: with the client's own process_time, what the work cost
# whatever else the shared machine runs (the wall clock stretches with the load).
DB_CPU = """
import os as _os
def db_cpu():
    pids = db.session.scalars(db.text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).all()
    used = {}
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / _os.sysconf("SC_CLK_TCK")
    return used
def db_cpu_since(before):
    after = db_cpu()
    return sum(t - before.get(pid, 0) for pid, t in after.items())
"""


def _child(code: str, env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env or os.environ,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- 1. snapshot of a large group ---------------------------------------------------------


def ensure_group(slug: str, contacts: int) -> dict:
    """An account `slug` whose single group holds `contacts` contacts (built once, with
    tags, custom fields, sign-offs and activities, by the contacts area's bulk builder)."""
    from sqlalchemy import text

    from portal import create_app
    from portal.accounts import service as accounts
    from portal.accounts.models import Account
    from portal.contacts import demo
    from portal.contacts.models import Group, Subscription
    from portal.extensions import db

    app = create_app()
    with app.app_context():
        account = db.session.scalar(db.select(Account).where(Account.slug == slug))
        if account is None:
            account = accounts.create_account(f"Backup bench {slug}", slug)
            db.session.commit()
        group = db.session.scalar(db.select(Group).where(Group.account_id == account.id))
        have = 0
        if group is not None:
            have = db.session.scalar(
                db.select(db.func.count()).where(Subscription.group_id == group.id)
            )
        if have < contacts:
            print(f"building {contacts - have:,} contacts ...", file=sys.stderr)
            demo.build_large_account(account, contacts - have, group_count=1, activities=0.3)
            with db.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
            group = db.session.scalar(db.select(Group).where(Group.account_id == account.id))
            have = db.session.scalar(
                db.select(db.func.count()).where(Subscription.group_id == group.id)
            )
        return {"account_id": account.id, "group_id": group.id, "contacts": have}


def run_snapshot(ids: dict, store: str) -> dict:
    code = (
        MEMORY
        + DB_CPU
        + f"""
import json, time
from portal import create_app
from portal.backups import read, retention
from portal.backups.snapshot import snapshot
from portal.contacts.models import Group
from portal.core.storage import get_storage
from portal.extensions import db
app = create_app({{"SECRET_KEY": "bench"}})
with app.app_context():
    group = db.session.get(Group, {ids["group_id"]})
    db.session.execute(db.text("SELECT 1"))
    rss_before = mem_mb("VmRSS")
    db_before = db_cpu() if db.engine.dialect.name == "postgresql" else None
    cpu_started = time.process_time()
    started = time.perf_counter()
    backup = snapshot(group, reason="manual")
    db.session.commit()
    snapshot_s = time.perf_counter() - started
    client_cpu_s = time.process_time() - cpu_started
    db_cpu_s = db_cpu_since(db_before) if db_before is not None else None
    peak = mem_mb("VmHWM")
    started = time.perf_counter()
    read.verify(backup)
    verify_s = time.perf_counter() - started
    started = time.perf_counter()
    raw = sum(len(chunk) for chunk in read.download_stream(backup))
    download_s = time.perf_counter() - started
    result = {{"snapshot_s": snapshot_s, "client_cpu_s": client_cpu_s, "db_cpu_s": db_cpu_s,
        "contacts": backup.contact_count, "size": backup.size,
        "csv_bytes": raw, "verify_s": verify_s, "download_s": download_s,
        "rss_before_mb": rss_before, "peak_rss_mb": peak,
        "peak_after_download_mb": mem_mb("VmHWM"),
        "store": type(get_storage()).__name__}}
    retention.delete_backup(backup)
    db.session.commit()
    print(json.dumps(result))
"""
    )
    return _child(code, dict(os.environ, FILE_STORE=store))


def snapshot_main(args) -> None:
    ids = ensure_group(args.slug, args.contacts)
    stores = args.stores.split(",")
    runs: dict[str, list[dict]] = {store: [] for store in stores}
    for i in range(args.repeat):
        for store in stores if i % 2 == 0 else reversed(stores):
            runs[store].append(run_snapshot(ids, store))
    for store in stores:
        snapshot_report(store, runs[store])


def snapshot_report(store: str, runs: list[dict]) -> None:
    best = min(runs, key=lambda r: r["snapshot_s"])
    print(
        json.dumps(
            {
                "database": os.environ["DATABASE_URL"].split("://")[0],
                "file_store": f"{store} ({best['store']})",
                "contacts": best["contacts"],
                "snapshot_s": [round(r["snapshot_s"], 2) for r in runs],
                "snapshot_s_median": round(statistics.median(r["snapshot_s"] for r in runs), 2),
                "client_cpu_s": [round(r["client_cpu_s"], 2) for r in runs],
                "db_cpu_s": [r["db_cpu_s"] and round(r["db_cpu_s"], 2) for r in runs],
                "contacts_per_s": round(best["contacts"] / best["snapshot_s"]),
                "file_mb": round(best["size"] / 1e6, 1),
                "csv_mb": round(best["csv_bytes"] / 1e6, 1),
                "verify_s": round(best["verify_s"], 2),
                "download_stream_s": round(best["download_s"], 2),
                "rss_before_mb": round(best["rss_before_mb"]),
                "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs)),
                "peak_rss_after_download_mb": round(max(r["peak_after_download_mb"] for r in runs)),
            },
            indent=2,
        )
    )


# --- 1b. the download through the web, on each file store -------------------------------

BENCH_LOGIN = ("bench-owner@example.com", "bench-download-password")


def ensure_owner(account_id: int) -> None:
    """A login that may download the account's backups (its owner)."""
    from portal import create_app
    from portal.accounts import service as accounts
    from portal.accounts.models import Account
    from portal.extensions import db

    app = create_app()
    with app.app_context():
        user = accounts.find_user_by_email(BENCH_LOGIN[0])
        if user is None:
            user = accounts.create_user(BENCH_LOGIN[0], BENCH_LOGIN[1], name="Bench")
        if not any(m.account_id == account_id for m in user.memberships):
            accounts.add_member(db.session.get(Account, account_id), user, "owner")
        db.session.commit()


def make_backup(ids: dict, store: str) -> int:
    code = f"""
import json
from portal import create_app
from portal.backups.snapshot import snapshot
from portal.contacts.models import Group
from portal.extensions import db
app = create_app()
with app.app_context():
    backup = snapshot(db.session.get(Group, {ids["group_id"]}), reason="manual")
    db.session.commit()
    print(json.dumps({{"id": backup.id, "size": backup.size}}))
"""
    return _child(code, dict(os.environ, FILE_STORE=store))["id"]


def delete_backup(backup_id: int, store: str) -> None:
    code = f"""
import json
from portal import create_app
from portal.backups.models import Backup
from portal.backups.retention import delete_backup
from portal.extensions import db
app = create_app()
with app.app_context():
    delete_backup(db.session.get(Backup, {backup_id}))
    db.session.commit()
    print("{{}}")
"""
    _child(code, dict(os.environ, FILE_STORE=store))


def _status_mb(pid: int, field: str) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split(field + ":")[1].split()[0]) / 1024


def _gunicorn_worker(master: int) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                return int(entry.name)
    raise RuntimeError("gunicorn has no worker")


def run_web_download(slug: str, backup_id: int, store: str) -> dict:
    """A real gunicorn (one sync worker) on FILE_STORE=`store`, signed in through the
    login form, the backup downloaded as the backups page's link does it, streamed by
    the client in 1 MB pieces and thrown away. The worker's resident memory is read
    from /proc before the download and sampled every 50 ms during it; its VmHWM after."""
    import re
    import socket
    import threading
    import time

    import requests

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, FILE_STORE=store, RATELIMIT_ENABLED="false")
    fd, log_name = tempfile.mkstemp(prefix="bench-gunicorn-", suffix=".log")
    log = os.fdopen(fd, "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "app:app"]
        + ["--timeout", "600"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        web = requests.Session()
        deadline = time.monotonic() + 60
        while True:
            try:  # a loaded machine may take its time to boot the worker
                page = web.get(f"{base}/login", timeout=60)
                break
            except (requests.ConnectionError, requests.Timeout):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(Path(log_name).read_text()[-3000:]) from None
                time.sleep(0.2)
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page.text)
        signed_in = web.post(
            f"{base}/login",
            data={"email": BENCH_LOGIN[0], "password": BENCH_LOGIN[1], "csrf_token": token[1]},
            allow_redirects=False,
        )
        assert signed_in.status_code == 302, signed_in.text[-2000:]
        web.get(f"{base}/a/{slug}/backups")  # the page the link is on
        worker = _gunicorn_worker(server.pid)
        rss_before = _status_mb(worker, "VmRSS")
        hwm_before = _status_mb(worker, "VmHWM")
        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(_status_mb(worker, "VmRSS"))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        received = 0
        with web.get(f"{base}/a/{slug}/backups/{backup_id}/download", stream=True) as answer:
            assert answer.status_code == 200, answer.status_code
            assert "csv" in answer.headers["Content-Type"], answer.headers
            first_byte_s = time.perf_counter() - started
            for piece in answer.iter_content(chunk_size=1 << 20):
                received += len(piece)
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        return {
            "store": store,
            "bytes": received,
            "download_s": seconds,
            "first_byte_s": first_byte_s,
            "worker_rss_before_mb": rss_before,
            "worker_hwm_before_mb": hwm_before,
            "worker_rss_max_during_mb": max(samples),
            "worker_hwm_after_mb": _status_mb(worker, "VmHWM"),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        Path(log_name).unlink(missing_ok=True)


def download_main(args) -> None:
    ids = ensure_group(args.slug, args.contacts)
    ensure_owner(ids["account_id"])
    stores = args.stores.split(",")
    runs: dict[str, list[dict]] = {store: [] for store in stores}
    for i in range(args.repeat):
        for store in stores if i % 2 == 0 else reversed(stores):
            backup_id = make_backup(ids, store)
            try:
                runs[store].append(run_web_download(args.slug, backup_id, store))
            finally:
                delete_backup(backup_id, store)
    for store in stores:
        done = runs[store]
        print(
            json.dumps(
                {
                    "database": os.environ["DATABASE_URL"].split("://")[0],
                    "file_store": store,
                    "contacts": ids["contacts"],
                    "csv_mb": round(done[0]["bytes"] / 1e6, 1),
                    "download_s": [round(r["download_s"], 2) for r in done],
                    "download_s_median": round(statistics.median(r["download_s"] for r in done), 2),
                    "first_byte_s": [round(r["first_byte_s"], 2) for r in done],
                    "worker_rss_before_mb": [round(r["worker_rss_before_mb"]) for r in done],
                    "worker_hwm_before_mb": [round(r["worker_hwm_before_mb"]) for r in done],
                    "worker_rss_max_during_mb": [
                        round(r["worker_rss_max_during_mb"]) for r in done
                    ],
                    "worker_hwm_after_mb": [round(r["worker_hwm_after_mb"]) for r in done],
                    # what the download added: resident memory during it over before it,
                    # and how far it raised the worker's peak
                    "rss_rise_median_mb": round(
                        statistics.median(
                            r["worker_rss_max_during_mb"] - r["worker_rss_before_mb"] for r in done
                        ),
                        1,
                    ),
                    "peak_rise_median_mb": round(
                        statistics.median(
                            r["worker_hwm_after_mb"] - r["worker_hwm_before_mb"] for r in done
                        ),
                        1,
                    ),
                },
                indent=2,
            )
        )


# --- 2. portal import with and without the automatic backup -------------------------------


def run_portal_import(
    csv_path: Path, ids: dict, backups: bool, undo: bool, store: str = "folder"
) -> dict:
    """The portal's path: dry run (check) and run, source "ui"; the backup is made by
    the before_import hook inside run() when the group's switch is on, into the file
    store `store`. Without the undo the backup is deleted again at the end, so that the
    runs into a big group do not pile up 33 MB files."""
    code = (
        MEMORY
        + DB_CPU
        + f"""
import json, time
from pathlib import Path
from portal import create_app
from portal.accounts.models import Account
from portal.backups import read, retention
from portal.backups import undo as backup_undo
from portal.core.storage import get_storage
from portal.contacts.models import Group
from portal.extensions import db
from portal.imports import service
from portal.backups import snapshot as backup_snapshot
snapshot_s = []
_snapshot = backup_snapshot.snapshot
def _timed(*args, **kwargs):
    started = time.perf_counter()
    try:
        return _snapshot(*args, **kwargs)
    finally:
        snapshot_s.append(time.perf_counter() - started)
backup_snapshot.snapshot = _timed
app = create_app({{"SECRET_KEY": "bench"}})
with app.app_context():
    if {ids.get("reset_sql")!r}:
        db.session.execute(db.text({ids.get("reset_sql")!r}))
        db.session.commit()
    account = db.session.get(Account, {ids["account_id"]})
    group = db.session.get(Group, {ids["group_id"]})
    group.automatic_backups = {backups!r}
    db.session.commit()
    job = service.create_import(account, actor=None, group=group,
                                source_path=Path({str(csv_path)!r}), filename="bench.csv",
                                source="ui")
    service.configure(job, mapping=job.mapping, mode="update_add", import_consent=True,
                      restore_deleted=False)
    db.session.commit()
    db_before = db_cpu() if db.engine.dialect.name == "postgresql" else None
    cpu_started = time.process_time()
    started = time.perf_counter()
    service.check(job)
    checked = time.perf_counter()
    service.run(job)
    finished = time.perf_counter()
    client_cpu_s = time.process_time() - cpu_started
    db_cpu_s = db_cpu_since(db_before) if db_before is not None else 0.0
    result = {{"check_s": checked - started, "run_s": finished - checked,
               "client_cpu_s": client_cpu_s, "db_cpu_s": db_cpu_s,
               "total_s": finished - started, "backup_id": job.backup_id,
               "created": job.created, "updated": job.updated, "rss_mb": mem_mb("VmHWM"),
               "snapshot_s": sum(snapshot_s)}}
    if job.backup_id:
        backup = read.live_backup(account.id, job.backup_id)
        result["backup_contacts"] = backup.contact_count
        if {undo!r}:
            service.drop_staging(job)
            undo = backup_undo.request_undo(job, actor=None)
            db.session.commit()
            started = time.perf_counter()
            backup_undo.run_undo(undo)
            result["undo_s"] = time.perf_counter() - started
            result["undo"] = {{"status": undo.status, "restored": undo.restored,
                              "removed": undo.removed, "deleted": undo.deleted}}
        else:
            retention.delete_backup(backup)
            db.session.commit()
    result["store"] = type(get_storage()).__name__
    print(json.dumps(result))
"""
    )
    return _child(code, dict(os.environ, FILE_STORE=store))


def import_main(args) -> None:
    """Without a backup, and with it on each file store: the same import, fresh tables
    (or the reset big group) for every run, the order rotating from one round to the
    next so that no mode always runs first on a warm or a cold cache."""
    from bench.import_bench import make_csv, prepare

    workdir = Path(tempfile.mkdtemp(prefix="backup-bench-"))
    csv_path = workdir / "bench.csv"
    make_csv(csv_path, args.rows)
    big = None
    if args.into_group_of:
        # the big group of `snapshot`: the file's 100k addresses are new there; they are
        # deleted again before every run, so that every run does the same work
        big = ensure_group(args.into_group_of, 0)
        big["reset_sql"] = (
            f"DELETE FROM contacts WHERE account_id = {int(big['account_id'])} "
            "AND email LIKE 'user%@example%.com'"
        )
    stores = args.stores.split(",")
    modes = ["without"] + [f"with {store}" for store in stores]
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    for i in range(args.repeat):
        for mode in modes[i % len(modes) :] + modes[: i % len(modes)]:
            # fresh tables with half the emails in the group, or the reset big group
            ids = big or prepare(args.rows, workdir)
            store = mode.removeprefix("with ") if mode != "without" else stores[0]
            undo = mode == f"with {stores[0]}" and i == 0 and big is None and not args.no_undo
            runs[mode].append(run_portal_import(csv_path, ids, mode != "without", undo, store))
    median = {mode: statistics.median(r["total_s"] for r in runs[mode]) for mode in modes}
    first = runs[modes[1]][0]
    print(
        json.dumps(
            {
                "rows": args.rows,
                "database": os.environ["DATABASE_URL"].split("://")[0],
                "group_before_import": first.get("backup_contacts"),
                **{
                    f"{mode.replace(' ', '_backup_')}_s": [
                        round(r["total_s"], 2) for r in runs[mode]
                    ]
                    for mode in modes
                },
                "median_s": {mode: round(value, 2) for mode, value in median.items()},
                "ratio_with_to_without": {
                    store: round(median[f"with {store}"] / median["without"], 3) for store in stores
                },
                "ratio_to_first_store": {
                    store: round(median[f"with {store}"] / median[f"with {stores[0]}"], 3)
                    for store in stores[1:]
                },
                # the work, whatever else the machine runs: CPU seconds of this
                # process and of the database's backends (medians)
                "cpu_s_median": {
                    mode: round(
                        statistics.median(r["client_cpu_s"] + r["db_cpu_s"] for r in runs[mode]), 2
                    )
                    for mode in modes
                },
                "cpu_ratio_to_first_store": {
                    store: round(
                        statistics.median(
                            r["client_cpu_s"] + r["db_cpu_s"] for r in runs[f"with {store}"]
                        )
                        / statistics.median(
                            r["client_cpu_s"] + r["db_cpu_s"] for r in runs[f"with {stores[0]}"]
                        ),
                        3,
                    )
                    for store in stores[1:]
                },
                "snapshot_in_import_s": {
                    store: [round(r["snapshot_s"], 2) for r in runs[f"with {store}"]]
                    for store in stores
                },
                "store_classes": {store: runs[f"with {store}"][0]["store"] for store in stores},
                "peak_rss_mb": round(max(r["rss_mb"] for m in modes[1:] for r in runs[m])),
                "undo_s": round(first["undo_s"], 2) if "undo_s" in first else None,
                "undo": first.get("undo"),
            },
            indent=2,
        )
    )


def main() -> None:
    from bench.keys import use_bench_keys

    use_bench_keys()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    snap = sub.add_parser("snapshot")
    snap.add_argument("--contacts", type=int, default=1_000_000)
    snap.add_argument("--slug", default="backupbench")
    snap.add_argument("--repeat", type=int, default=3)
    snap.add_argument(
        "--stores",
        default="folder,postgresql",
        help="file stores to run the snapshot on, in turn (FILE_STORE values)",
    )
    down = sub.add_parser("download")
    down.add_argument("--contacts", type=int, default=1_000_000)
    down.add_argument("--slug", default="backupbench")
    down.add_argument("--repeat", type=int, default=3)
    down.add_argument("--stores", default="folder,postgresql")
    imp = sub.add_parser("import")
    imp.add_argument("--rows", type=int, default=100_000)
    imp.add_argument("--repeat", type=int, default=3)
    imp.add_argument(
        "--into-group-of",
        metavar="SLUG",
        help="import into the big group of this account (built by `snapshot`) instead of "
        "a fresh 50%% group; the database is not dropped",
    )
    imp.add_argument("--no-undo", action="store_true", help="leave out the timed undo")
    imp.add_argument(
        "--stores",
        default="folder,postgresql",
        help="file stores the backup is written to, in turn (FILE_STORE values); the "
        "ratios compare each with the first",
    )
    args = parser.parse_args()
    os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="backup-bench-instance-"))
    if "DATABASE_URL" not in os.environ:
        raise SystemExit("set DATABASE_URL (PostgreSQL for the numbers that count)")
    if args.what == "snapshot":
        snapshot_main(args)
    elif args.what == "download":
        download_main(args)
    else:
        import_main(args)


if __name__ == "__main__":
    main()
