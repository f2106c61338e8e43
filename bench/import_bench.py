"""Import benchmark: the portal's import job against the database's own bulk ceiling.

    DATABASE_URL=postgresql+psycopg://... .venv/bin/python bench/import_bench.py --rows 100000
    .venv/bin/python bench/import_bench.py --rows 100000          # SQLite in a temp folder

Work measured (issue 4): a CSV with email, first and last name, two custom fields, two
tags and a sign-up date, imported in "update and add" into one group of an account that
already holds half of those emails. The ceiling does the same writes with COPY into a
staging table and set-based INSERT ... ON CONFLICT statements in one transaction (on
SQLite: executemany into a staging table, then the same set-based statements).

The portal run goes through the real job function (staging + dry-run-free merge), in a
child process so that its peak RSS is its own. `--repeat N` runs both N times on fresh
tables and prints every run with the load averages before and after it, then the
medians: other work on the machine moves single runs by a lot."""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST = ["Jürgen", "Łukasz", "Niccolò", "Eline", "Anna", "Zoë", "Małgorzata", "Sören", "Chiara"]
LAST = ["Größ", "Węgrzyn", "Mazzà", "van 't Hoff", "Schmidt", "Kowalska", "Rossi", "de Vries"]
TAGS = ["Kunde", "VIP", "Newsletter", "Händler", "Żółw", "Webinar", "Messe", "B2B"]


def make_csv(path: Path, rows: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["email", "first_name", "last_name", "Stadt", "Punkte", "tags", "signup_at"]
        )
        for i in range(rows):
            writer.writerow(
                [
                    f"user{i}@example{i % 97}.com",
                    rnd.choice(FIRST),
                    rnd.choice(LAST),
                    rnd.choice(["Köln", "Kraków", "Milano", "Utrecht"]),
                    rnd.randint(0, 1000),
                    f"{rnd.choice(TAGS)};{rnd.choice(TAGS)}",
                    f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
                ]
            )


def prepare(rows: int, workdir: Path) -> dict:
    """Fresh schema, an account with a group and the first half of the emails."""
    from portal import create_app
    from portal.accounts import service as accounts
    from portal.contacts.models import Contact, CustomField, Group, Subscription, contact_row
    from portal.extensions import db

    app = create_app({"SECRET_KEY": "bench"})
    with app.app_context():
        db.drop_all()
        db.create_all()
        account = accounts.create_account("Bench", "bench")
        group = Group(account_id=account.id, name="Newsletter")
        db.session.add(group)
        db.session.add_all(
            [
                CustomField(account_id=account.id, key="city", label="Stadt", type="text"),
                CustomField(account_id=account.id, key="points", label="Punkte", type="number"),
            ]
        )
        db.session.commit()
        half = rows // 2
        batch = 20000
        for start in range(0, half, batch):
            chunk = [
                contact_row(account.id, f"user{i}@example{i % 97}.com", "Alt", "Name")
                for i in range(start, min(start + batch, half))
            ]
            db.session.execute(db.insert(Contact), chunk)
        db.session.commit()
        ids = db.session.scalars(db.select(Contact.id).where(Contact.account_id == account.id))
        subs = [
            {
                "account_id": account.id,
                "contact_id": cid,
                "group_id": group.id,
                "active": True,
                "source": "ui",
            }
            for cid in ids
        ]
        for start in range(0, len(subs), batch):
            db.session.execute(db.insert(Subscription), subs[start : start + batch])
        db.session.commit()
        return {"account_id": account.id, "group_id": group.id}


def run_portal(csv_path: Path, ids: dict) -> dict:
    """In a child process: the real import job, timed, with its own peak RSS."""
    code = f"""
import json, threading, time
def status_mb(key):
    # VmHWM: this process's own peak; ru_maxrss would include the forking parent's
    status = open("/proc/self/status").read()
    return int(status.split(key + ":")[1].split()[0]) / 1024
def peak_rss_mb():
    return status_mb("VmHWM")
samples = []
def sample():  # resident memory every half second: flat, or growing with the file?
    while True:
        samples.append(status_mb("VmRSS"))
        time.sleep(0.5)
from pathlib import Path
from portal import create_app
from portal.extensions import db
from portal.accounts.models import Account
from portal.contacts.models import Group
from portal.imports import service
app = create_app({{"SECRET_KEY": "bench"}})
with app.app_context():
    account = db.session.get(Account, {ids["account_id"]})
    group = db.session.get(Group, {ids["group_id"]})
    job = service.create_import(account, actor=None, group=group,
                                source_path=Path({str(csv_path)!r}), filename="bench.csv",
                                source="api")
    service.configure(job, mapping=job.mapping, mode="update_add", import_consent=True,
                      restore_deleted=False)
    db.session.commit()
    rss_before = status_mb("VmRSS")
    threading.Thread(target=sample, daemon=True).start()
    started = time.perf_counter()
    service.run(job)
    elapsed = time.perf_counter() - started
    quarters = [round(samples[min(len(samples) - 1, len(samples) * q // 4)]) for q in (1, 2, 3, 4)]
    print(json.dumps({{"seconds": elapsed, "created": job.created, "updated": job.updated,
        "unchanged": job.unchanged, "invalid": job.invalid, "mapping": job.mapping,
        "rss_mb": peak_rss_mb(), "rss_before_mb": round(rss_before),
        "rss_quarters_mb": quarters}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=os.environ, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


CEILING_PG = """
CREATE TEMP TABLE stage (email text, first_name text, last_name text, city text, points text,
                         tags text, signup_at text) ON COMMIT DROP;
"""


def run_ceiling(csv_path: Path, ids: dict) -> float:
    """The database's own bulk path for the same writes, in one transaction."""
    from portal import create_app
    from portal.extensions import db

    app = create_app({"SECRET_KEY": "bench"})
    with app.app_context():
        dialect = db.engine.dialect.name
        started = time.perf_counter()
        conn = db.session.connection()
        acc, gid = ids["account_id"], ids["group_id"]
        if dialect == "postgresql":
            raw = conn.connection.driver_connection
            with raw.cursor() as cur:
                cur.execute(CEILING_PG)
                with (
                    csv_path.open("rb") as fh,
                    cur.copy("COPY stage FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
                ):
                    while data := fh.read(1 << 20):
                        copy.write(data)
        else:
            conn.exec_driver_sql(
                "CREATE TEMP TABLE stage (email, first_name, last_name, city, "
                "points, tags, signup_at)"
            )
            with csv_path.open(newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                next(reader)
                conn.exec_driver_sql(
                    "INSERT INTO stage VALUES (?, ?, ?, ?, ?, ?, ?)", [tuple(r) for r in reader]
                )
        json_fields = (
            "json_build_object('city', s.city, 'points', s.points::int)"
            if dialect == "postgresql"
            else "json_object('city', s.city, 'points', CAST(s.points AS INTEGER))"
        )
        merged = (
            "CAST(CAST(contacts.fields AS jsonb) || CAST(excluded.fields AS jsonb) AS json)"
            if dialect == "postgresql"
            else "json_patch(contacts.fields, excluded.fields)"
        )
        now = "now()" if dialect == "postgresql" else "CURRENT_TIMESTAMP"
        conn.exec_driver_sql(f"""
            INSERT INTO contacts (account_id, email, first_name, last_name, fields, status,
                                  created_at, updated_at, search_name, search_name_rev)
            SELECT {acc}, s.email, s.first_name, s.last_name, {json_fields}, 'active', {now},
                   {now}, lower(s.first_name || ' ' || s.last_name),
                   lower(s.last_name || ' ' || s.first_name)
            FROM stage s WHERE true
            ON CONFLICT (account_id, email) DO UPDATE SET first_name = excluded.first_name,
                last_name = excluded.last_name, fields = {merged},
                search_name = excluded.search_name, search_name_rev = excluded.search_name_rev,
                updated_at = excluded.updated_at""")
        signup = "CAST(s.signup_at AS timestamp)" if dialect == "postgresql" else "s.signup_at"
        conn.exec_driver_sql(f"""
            INSERT INTO subscriptions (account_id, contact_id, group_id, active, activated_at,
                                       source)
            SELECT {acc}, c.id, {gid}, true, {signup}, 'api'
            FROM stage s JOIN contacts c ON c.account_id = {acc} AND c.email = s.email
            WHERE true
            ON CONFLICT (contact_id, group_id) DO NOTHING""")
        split = (
            "SELECT DISTINCT email, unnest(string_to_array(tags, ';')) AS name FROM stage"
            if dialect == "postgresql"
            else "SELECT email, substr(tags, 1, instr(tags, ';') - 1) AS name FROM stage "
            "UNION SELECT email, substr(tags, instr(tags, ';') + 1) FROM stage"
        )
        conn.exec_driver_sql(f"""
            INSERT INTO tags (account_id, name, created_at)
            SELECT DISTINCT {acc}, t.name, {now} FROM ({split}) t WHERE true
            ON CONFLICT (account_id, name) DO NOTHING""")
        conn.exec_driver_sql(f"""
            INSERT INTO contact_tags (contact_id, tag_id)
            SELECT c.id, tg.id FROM ({split}) t
            JOIN contacts c ON c.account_id = {acc} AND c.email = t.email
            JOIN tags tg ON tg.account_id = {acc} AND tg.name = t.name WHERE true
            ON CONFLICT (contact_id, tag_id) DO NOTHING""")
        db.session.commit()
        return time.perf_counter() - started


def measure(csv_path: Path, rows: int, workdir: Path, with_ceiling: bool) -> dict:
    """One run: the ceiling (fresh tables), then the portal's job (fresh tables)."""
    run: dict = {"load_before": [round(x, 2) for x in os.getloadavg()]}
    if with_ceiling:
        ids = prepare(rows, workdir)
        ceiling = run_ceiling(csv_path, ids)
        run["ceiling_s"] = round(ceiling, 2)
        run["ceiling_rows_s"] = round(rows / ceiling)
    ids = prepare(rows, workdir)
    portal = run_portal(csv_path, ids)
    run["portal_s"] = round(portal["seconds"], 2)
    run["portal_rows_s"] = round(rows / portal["seconds"])
    run["portal_rss_mb"] = round(portal["rss_mb"])
    run["portal_rss_before_mb"] = portal["rss_before_mb"]
    # resident memory at the end of each quarter of the import
    run["portal_rss_quarters_mb"] = portal["rss_quarters_mb"]
    run["counts"] = {k: portal[k] for k in ("created", "updated", "unchanged", "invalid")}
    if with_ceiling:
        run["ratio"] = round(portal["seconds"] / ceiling, 2)
    run["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return run


def main() -> None:
    from bench.keys import use_bench_keys

    use_bench_keys()
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs (fresh tables each), for a median"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="import-bench-"))
    os.environ.setdefault("INSTANCE_PATH", str(workdir / "instance"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.db'}")
    csv_path = workdir / "bench.csv"
    make_csv(csv_path, args.rows)
    db_kind = "postgresql" if os.environ["DATABASE_URL"].startswith("postgres") else "sqlite"
    results: dict = {
        "rows": args.rows,
        "database": db_kind,
        "file_mb": round(csv_path.stat().st_size / 1e6, 1),
        "cpus": os.cpu_count(),
    }
    runs = []
    for _ in range(args.repeat):
        runs.append(measure(csv_path, args.rows, workdir, not args.skip_ceiling))
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    if len(runs) == 1:
        results.update(runs[0])
    else:
        results["runs"] = runs
        for key in ("ceiling_s", "portal_s", "ratio", "portal_rss_mb"):
            if key in runs[0]:
                results[f"median_{key}"] = statistics.median(r[key] for r in runs)
    print(json.dumps(results, indent=2))
    print(
        f"bench peak RSS (parent) {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
