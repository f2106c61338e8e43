"""Recovery benchmark (issue 17): the dry run of a restore on a large group, and the
restore itself (PostgreSQL or SQLite).

    DATABASE_URL=postgresql+psycopg://.../scratch .venv/bin/python bench/recovery_bench.py \
        --contacts 100000 --repeat 3

Builds (once) an account whose single group holds `--contacts` contacts (as
bench/backup_bench.py does), takes a backup, then changes the group as the issue's case
does at scale: 1 % of the names changed, 1 % new members, 0.5 % signed off. Every run
is a child process: the dry run (restore_preview, nothing written) `--repeat` times,
then one restore in "exact" mode (plan again + apply, one transaction)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.backup_bench import MEMORY, _child, ensure_group  # noqa: E402

PREPARE = """
import json
from datetime import timedelta
from portal import clock, create_app
from portal.backups.snapshot import snapshot
from portal.contacts.models import Contact, Group, Subscription, contact_row
from portal.extensions import db
app = create_app({{"SECRET_KEY": "bench"}})
with app.app_context():
    group = db.session.get(Group, {group_id})
    backup = snapshot(group, reason="manual")
    db.session.commit()
    ids = db.session.scalars(db.select(Subscription.contact_id).where(
        Subscription.group_id == group.id).order_by(Subscription.contact_id)).all()
    n = len(ids)
    renamed = ids[::100]
    db.session.execute(db.update(Contact).where(Contact.id.in_(renamed)).values(
        first_name="Umbenannt"))
    signed_off = ids[50::200]
    later = clock.now() + timedelta(seconds=1)
    db.session.execute(db.update(Subscription).where(Subscription.group_id == group.id,
        Subscription.contact_id.in_(signed_off), Subscription.active).values(
        active=False, deactivated_at=later, optout_reason="unsubscribed"))
    rows = [contact_row(group.account_id, f"later{{i}}-{{backup.id}}@bench.example", "Neu")
            for i in range(n // 100)]
    db.session.execute(db.insert(Contact), rows)
    new_ids = db.session.scalars(db.select(Contact.id).where(
        Contact.email.like(f"later%-{{backup.id}}@bench.example"))).all()
    db.session.execute(db.insert(Subscription), [
        {{"account_id": group.account_id, "contact_id": i, "group_id": group.id,
          "active": True, "activated_at": later, "source": "ui"}} for i in new_ids])
    db.session.commit()
    print(json.dumps({{"backup_id": backup.id, "members": n}}))
"""

PREVIEW = (
    MEMORY
    + """
import json, time
from portal import create_app
from portal.backups.restore import restore_preview
from portal.backups.models import Backup
from portal.extensions import db
app = create_app({{"SECRET_KEY": "bench"}})
with app.app_context():
    backup = db.session.get(Backup, {backup_id})
    started = time.perf_counter()
    preview = restore_preview(backup)
    elapsed = time.perf_counter() - started
    print(json.dumps({{"preview_s": elapsed, "counts": preview.counts,
        "peak_rss_mb": mem_mb("VmHWM")}}))
"""
)

RESTORE = """
import json, time
from portal import create_app
from portal.backups.restore import request_restore, run_restore
from portal.backups.models import Backup, BackupRestore
from portal.extensions import db
app = create_app({{"SECRET_KEY": "bench"}})
with app.app_context():
    backup = db.session.get(Backup, {backup_id})
    restore = request_restore(backup, mode="exact", expected={{}}, actor=None)
    db.session.commit()
    started = time.perf_counter()
    run_restore(restore)
    elapsed = time.perf_counter() - started
    restore = db.session.get(BackupRestore, restore.id)
    print(json.dumps({{"restore_s": elapsed, "status": restore.status, "counts": restore.counts}}))
"""


def main() -> None:
    from bench.keys import use_bench_keys

    use_bench_keys()
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slug", default="recoverybench")
    args = parser.parse_args()
    ids = ensure_group(args.slug, args.contacts)
    prepared = _child(PREPARE.format(group_id=ids["group_id"]))
    previews = [_child(PREVIEW.format(**prepared)) for _ in range(args.repeat)]
    restore = _child(RESTORE.format(**prepared))
    print(
        json.dumps(
            {
                "database": os.environ.get("DATABASE_URL", "sqlite").split("://")[0],
                "members_at_backup": prepared["members"],
                "preview_s": [round(p["preview_s"], 2) for p in previews],
                "preview_counts": previews[0]["counts"],
                "preview_peak_rss_mb": round(max(p["peak_rss_mb"] for p in previews)),
                "restore_s": round(restore["restore_s"], 2),
                "restore_counts": restore["counts"],
                "load": os.getloadavg(),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
