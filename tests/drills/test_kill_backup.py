"""kill -9 in the middle of a backup: the snapshot of a group of 50,000 contacts that an
import from the portal takes on the worker before it changes anything (the
`before_import` hook). The import is continued; the end state is the clean run's, with
exactly one complete backup, and the half-written file is swept by the retention run.
On both file stores: the folder (a partial file is left, and swept) and the database
(the killed worker's transaction is rolled back: nothing is left)."""

from __future__ import annotations

import csv
import io
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from portal import clock
from portal.accounts.models import Account
from portal.backups.models import Backup
from portal.backups.read import download_stream, verify
from portal.backups.retention import remove_expired
from portal.contacts.models import Contact, Group
from portal.core.storage import get_storage
from portal.extensions import db
from portal.imports import service as imports
from portal.imports import tasks
from portal.imports.models import ImportJob, ImportStatus
from tests.drills.conftest import account_state, failed_on_the_next_worker, fresh, new_account
from tests.imports.conftest import write_csv
from tests.workers import wait_for

N = 50_000


def _portal_import(account_id: int, folder: Path) -> int:
    """An owner uploads a list into the group from the portal: 1,000 known addresses
    with new first names and 1,000 new ones ("update and add")."""
    account = db.session.get(Account, account_id)
    group = db.session.scalar(db.select(Group).where(Group.account_id == account_id))
    known = db.session.scalars(
        db.select(Contact.email)
        .where(Contact.account_id == account_id)
        .order_by(Contact.email)
        .limit(1000)
    ).all()
    rows = [["email", "first_name"], *[[email, "Neu"] for email in known]]
    rows += [[f"neu{i}@example.de", "Neu"] for i in range(1000)]
    path = write_csv(folder / f"list-{account_id}.csv", rows)
    job = imports.create_import(
        account, actor=None, group=group, source_path=path, filename="list.csv", source="ui"
    )
    imports.configure(
        job, mapping=job.mapping, mode="update_add", import_consent=False, restore_deleted=False
    )
    db.session.commit()
    return job.id


def _backup_rows(backup: Backup) -> list[list[str]]:
    text = b"".join(download_stream(backup)).decode("utf-8-sig")
    return sorted(csv.reader(io.StringIO(text)))


def _first_difference(rows: list[list[str]], expected: list[list[str]]) -> str | None:
    """The first row where two backups differ, instead of pytest's diff of two lists of
    50,000 rows (which takes longer than the whole drill)."""
    for number, (row, want) in enumerate(zip(rows, expected, strict=False), start=1):
        if row != want:
            return f"row {number}: {row!r} != {want!r}"
    if len(rows) != len(expected):
        return f"{len(rows)} rows != {len(expected)} rows"
    return None


def _partial_file(folder: Path) -> bool:
    return (
        any(p.stat().st_size > 0 for p in folder.glob(".*.partial")) if folder.is_dir() else False
    )


def _file_being_written(app) -> bool:
    """Another connection of this database is in the middle of writing a file to the
    database store (its rows not committed, so not visible to anyone)."""
    with app.app_context():
        writing = db.session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND datname = current_database() AND query LIKE 'INSERT INTO stored_file%' "
                "AND state IN ('active', 'idle in transaction')"
            )
        )
        db.session.remove()
    return bool(writing)


def _stored_keys(account_id: int) -> list[str]:
    """What the store holds for the account, also what its listing would leave out."""
    storage = get_storage()
    if hasattr(storage, "root"):
        folder = Path(storage.root) / str(account_id)
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    return sorted(
        key.split("/", 1)[1]
        for key in db.session.scalars(text("SELECT key FROM stored_files WHERE area = 'backups'"))
        if key.startswith(f"{account_id}/")
    )


@pytest.mark.parametrize("store", ["folder", "postgresql"])
def test_backup_killed_mid_write_is_made_again_and_the_import_finishes(
    web, workers, tmp_path, store
):
    if store == "postgresql" and not web.config["SQLALCHEMY_DATABASE_URI"].startswith("postgres"):
        pytest.skip("the database store's unfinished write is seen in pg_stat_activity")
    web.config["FILE_STORE"] = store
    on_store = workers

    def workers(**kwargs):
        return on_store(FILE_STORE=store, **kwargs)

    with web.app_context():
        clean = new_account("clean", N, groups=1)
        clean_job = _portal_import(clean, tmp_path)
        imports.run(db.session.get(ImportJob, clean_job))  # what the job runs, in-process
        assert fresh(ImportJob, clean_job).backup_id is not None

        drill = new_account("drill", N, groups=1)
        job_id = _portal_import(drill, tmp_path)
        before = account_state(drill)
        tasks.enqueue_run(db.session.get(ImportJob, job_id))
        folder = Path(web.config["BACKUP_DIR"]) / str(drill)

    worker = workers(burst=False)
    wait_for(
        lambda: _partial_file(folder) if store == "folder" else _file_being_written(web),
        timeout=60,
        message="the worker must start writing the backup",
        worker=worker,
        interval=0.005,
    )
    worker.kill()
    killed_at = time.monotonic()

    with web.app_context():
        job = fresh(ImportJob, job_id)
        assert job.status == ImportStatus.RUNNING.value and job.backup_id is None
        assert job.merged_line == 0, "the import must not change anything before its backup"
        assert db.session.scalar(db.select(Backup.id).where(Backup.account_id == drill)) is None
        orphans = _stored_keys(drill)
        if store == "folder":
            assert len(orphans) == 1 and orphans[0].endswith(".partial")
        else:
            assert orphans == [], "the database rolled the killed write back"
        assert account_state(drill) == before, "nothing changed without a backup"

        assert not imports.can_resume(job), "nobody has noticed yet"
        # the next worker fails the import at once: "continue" on the import's page
        job = failed_on_the_next_worker(workers, ImportJob, job_id, killed_at)
        assert imports.can_resume(job)
        tasks.enqueue_run(job)
    out = workers().finish(timeout=120)

    with web.app_context():
        job = fresh(ImportJob, job_id)
        reference = db.session.get(ImportJob, clean_job)
        assert job.status == ImportStatus.FINISHED.value, out[-3000:]
        assert job.counters() == reference.counters()
        assert account_state(drill) == account_state(clean)

        made = db.session.scalars(db.select(Backup).where(Backup.account_id == drill)).all()
        assert [b.id for b in made] == [job.backup_id], "exactly one backup for the import"
        backup, expected = made[0], db.session.get(Backup, reference.backup_id)
        assert (backup.reason, backup.import_id) == ("import", job.id)
        assert backup.contact_count == expected.contact_count == N
        assert _first_difference(_backup_rows(backup), _backup_rows(expected)) is None

        # the retention run sweeps the half-written file a day later, never a backup
        assert remove_expired(now=clock.now() + timedelta(days=2)) == 0
        assert _stored_keys(drill) == [Path(backup.storage_key).name]
        assert get_storage().exists(backup.storage_key)
        verify(backup)
