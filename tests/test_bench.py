"""Every benchmark of docs/BENCHMARKS.md still runs, at a size of seconds.

The benchmarks run their measured work in child processes from code kept in strings,
which neither ruff nor an import sees: after the modules were split (issue 19) the
import benchmark stopped at `backups.delete_backup`, and nobody noticed until the next
measurement. Each test here runs one chain of benchmarks as a user of docs/BENCHMARKS.md
would, on a scratch PostgreSQL database of its own (they drop and create tables), and
checks the figures they print describe the work that was asked for.

Left out: bench/load_test.py, which drives its load with `wrk` (not a Python package;
docs/BENCHMARKS.md names it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from portal.extensions import db
from tests.helpers.parallel import redis_url_for_worker, scratch_postgresql, worker_id
from tests.imports.conftest import postgresql_only

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    postgresql_only("the benchmarks of docs/BENCHMARKS.md measure PostgreSQL"),
]


@pytest.fixture
def bench_database(request) -> Iterator[str]:
    """An empty database with the portal's tables, named after the test and the worker."""
    name = f"bench_{request.node.name.removeprefix('test_')[:20]}{worker_id()}"
    with scratch_postgresql(os.environ["TEST_DATABASE_URL"], name) as url:
        engine = create_engine(url)
        db.metadata.create_all(engine)
        engine.dispose()
        yield url


def run_bench(database_url: str, *args: str, timeout: int = 300) -> str:
    """Run a benchmark script as docs/BENCHMARKS.md does; what it printed."""
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url_for_worker(os.environ.get("TEST_REDIS_URL", "")),
    )
    done = subprocess.run(  # noqa: S603 - our own scripts, fixed arguments
        [sys.executable, str(ROOT / "bench" / args[0]), *args[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def last_json(output: str) -> dict:
    """The figures a benchmark prints last, as one JSON object."""
    start = output.rfind("\n{")
    assert start >= 0 or output.startswith("{"), output[-2000:]
    value, _ = json.JSONDecoder().raw_decode(output[start + 1 :] if start >= 0 else output)
    return value


def test_import_benchmarks(bench_database):
    ceiling = last_json(
        run_bench(bench_database, "import_bench.py", "--rows", "2000", "--skip-ceiling")
    )
    assert ceiling["rows"] == 2000
    imports = last_json(
        run_bench(bench_database, "backup_bench.py", "import", "--rows", "2000", "--repeat", "1")
    )
    assert imports["group_before_import"] == 1000, "half of the file's addresses were in the group"
    assert imports["store_classes"] == {
        "folder": "LocalStorage",
        "postgresql": "DatabaseWithFolder",
    }
    undone = {"status": "finished", "restored": 1000, "removed": 1000, "deleted": 1000}
    assert imports["undo"] == undone


def test_backup_benchmarks(bench_database):
    snapshot = last_json(
        run_bench(
            bench_database, "backup_bench.py", "snapshot", "--contacts", "2000", "--repeat", "1"
        )
    )
    assert snapshot["contacts"] == 2000
    download = last_json(
        run_bench(
            bench_database, "backup_bench.py", "download", "--contacts", "2000", "--repeat", "1"
        )
    )
    assert download["contacts"] == 2000


def test_list_benchmarks(bench_database):
    built = run_bench(
        bench_database, "make_large_account.py", "--contacts", "3000", "--groups", "3"
    )
    assert "3,000 contacts in account 'bench'" in built
    search = last_json(run_bench(bench_database, "list_search_bench.py", "--requests", "3"))
    assert search["contacts"] == 3000
    pages = last_json(run_bench(bench_database, "list_http_bench.py", "--requests", "3"))
    assert pages["contacts"] == 3000


def test_recovery_benchmark(bench_database):
    recovery = last_json(
        run_bench(bench_database, "recovery_bench.py", "--contacts", "2000", "--repeat", "1")
    )
    # the bench renames every 100th member, signs every 200th off and adds 1 % after the backup
    assert recovery["members_at_backup"] == 2000
    assert recovery["preview_counts"] == {
        "set_back": 20,
        "orphaned": 20,
        "unchanged": 1970,
        "kept": 10,
    }
    counts = recovery["restore_counts"]
    assert (counts["set_back"], counts["removed"], counts["kept"]) == (20, 20, 10)
    assert counts["forgotten"] == 0 and counts["unchanged"] == 1970


def test_sync_benchmark(bench_database):
    sync = last_json(run_bench(bench_database, "sync_bench.py", "--contacts", "2000"))
    engine = create_engine(bench_database)
    with engine.connect() as conn:  # the demo account deletes a few: a sync sends the rest
        active = conn.scalar(text("SELECT count(*) FROM contacts WHERE status = 'active'"))
    engine.dispose()
    assert 1900 <= sync["contacts_synced"] == active < 2000
    assert sync["every_contact_exactly_once"] is True and sync["bad_signatures"] == 0
