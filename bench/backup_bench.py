"""Backup benchmarks (issue 5).

    # 1. the snapshot of one big group (builds the account once, then reuses it), on
    #    each file store in turn (--stores folder,postgresql: the same group, alternating)
    DATABASE_URL=postgresql+psycopg://... .venv/bin/python bench/backup_bench.py snapshot \
        --contacts 1000000

    # 2. a portal import with the automatic backup against the same import without one
    #    (drops and recreates every table, like bench/import_bench.py: use a scratch database)
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
    started = time.perf_counter()
    backup = snapshot(group, reason="manual")
    db.session.commit()
    snapshot_s = time.perf_counter() - started
    peak = mem_mb("VmHWM")
    started = time.perf_counter()
    read.verify(backup)
    verify_s = time.perf_counter() - started
    started = time.perf_counter()
    raw = sum(len(chunk) for chunk in read.download_stream(backup))
    download_s = time.perf_counter() - started
    result = {{"snapshot_s": snapshot_s, "contacts": backup.contact_count, "size": backup.size,
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


# --- 2. portal import with and without the automatic backup -------------------------------


def run_portal_import(csv_path: Path, ids: dict, backups: bool, undo: bool) -> dict:
    """The portal's path: dry run (check) and run, source "ui"; the backup is made by
    the before_import hook inside run() when the group's switch is on."""
    code = (
        MEMORY
        + f"""
import json, time
from pathlib import Path
from portal import create_app
from portal.accounts.models import Account
from portal.backups import read
from portal.backups import undo as backup_undo
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
    started = time.perf_counter()
    service.check(job)
    checked = time.perf_counter()
    service.run(job)
    finished = time.perf_counter()
    result = {{"check_s": checked - started, "run_s": finished - checked,
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
    print(json.dumps(result))
"""
    )
    return _child(code)


def import_main(args) -> None:
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
    runs: dict[str, list[dict]] = {"without": [], "with": []}
    for i in range(args.repeat):
        for mode in ("without", "with") if i % 2 == 0 else ("with", "without"):
            # fresh tables with half the emails in the group, or the reset big group
            ids = big or prepare(args.rows, workdir)
            undo = mode == "with" and i == 0 and big is None
            runs[mode].append(run_portal_import(csv_path, ids, mode == "with", undo))
    without = statistics.median(r["total_s"] for r in runs["without"])
    with_backup = statistics.median(r["total_s"] for r in runs["with"])
    first = runs["with"][0]
    print(
        json.dumps(
            {
                "rows": args.rows,
                "database": os.environ["DATABASE_URL"].split("://")[0],
                "group_before_import": first.get("backup_contacts"),
                "without_backup_s": [round(r["total_s"], 2) for r in runs["without"]],
                "with_backup_s": [round(r["total_s"], 2) for r in runs["with"]],
                "ratio_median": round(with_backup / without, 3),
                "snapshot_in_import_s": [round(r["snapshot_s"], 2) for r in runs["with"]],
                "peak_rss_mb": round(max(r["rss_mb"] for r in runs["with"])),
                "undo_s": round(first["undo_s"], 2) if "undo_s" in first else None,
                "undo": first.get("undo"),
            },
            indent=2,
        )
    )


def main() -> None:
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
    imp = sub.add_parser("import")
    imp.add_argument("--rows", type=int, default=100_000)
    imp.add_argument("--repeat", type=int, default=3)
    imp.add_argument(
        "--into-group-of",
        metavar="SLUG",
        help="import into the big group of this account (built by `snapshot`) instead of "
        "a fresh 50%% group; the database is not dropped",
    )
    args = parser.parse_args()
    os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="backup-bench-instance-"))
    if "DATABASE_URL" not in os.environ:
        raise SystemExit("set DATABASE_URL (PostgreSQL for the numbers that count)")
    if args.what == "snapshot":
        snapshot_main(args)
    else:
        import_main(args)


if __name__ == "__main__":
    main()
