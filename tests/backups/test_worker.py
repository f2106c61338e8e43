"""The undo and the restore on a real `rq worker` process, and a backup made by a portal
import that ran on one: the RQ glue, app context and storage path as in production."""

from __future__ import annotations

import io
import subprocess
import sys

from portal.accounts import service as accounts
from portal.backups import tasks
from portal.backups.models import Backup, BackupRestore, ImportUndo
from portal.backups.read import live_backup
from portal.backups.restore import request_restore, restore_preview
from portal.backups.snapshot import snapshot
from portal.backups.undo import request_undo
from portal.config import ROOT
from portal.contacts import service as contacts
from portal.extensions import db
from portal.imports import tasks as import_tasks
from portal.imports.models import ImportJob
from tests.imports.conftest import configured_import, contact_state, write_csv
from tests.workers import worker_env


def _burst_worker(database_url, redis_url) -> str:
    env = worker_env(database_url, redis_url)
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "rq", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return result.stdout + result.stderr


def test_portal_import_and_its_undo_on_a_real_worker(web, tmp_path, database_url, redis_url):
    with web.app_context():
        account = accounts.create_account("Worker", "worker")
        group = contacts.create_group(account, "Newsletter", actor=None, source="ui")
        for i in range(5):
            contact = contacts.create_contact(
                account, f"old{i}@example.de", first_name="Alt", source="ui"
            )
            contacts.subscribe(contact, group, source="ui")
        db.session.commit()
        before = contact_state(account.id)
        rows = [["email", "first_name"], *[[f"old{i}@example.de", "Neu"] for i in range(5)]]
        rows += [[f"new{i}@example.de", "Neu"] for i in range(20)]
        job = configured_import(account, group, write_csv(tmp_path / "list.csv", rows))
        import_tasks.enqueue_run(job)
        job_id, account_id = job.id, account.id
    out = _burst_worker(database_url, redis_url)
    with web.app_context():
        job = db.session.get(ImportJob, job_id)
        assert job.status == "finished", out[-3000:]
        backup = db.session.get(Backup, job.backup_id)
        assert backup is not None and backup.contact_count == 5
        assert live_backup(account_id, job.backup_id) is not None
        undo = request_undo(job, actor=None)
        tasks.enqueue_undo(undo)
        undo_id = undo.id
        assert db.session.get(ImportUndo, undo_id).status == "queued"
    out = _burst_worker(database_url, redis_url)
    with web.app_context():
        db.session.remove()
        undo = db.session.get(ImportUndo, undo_id)
        assert undo.status == "finished", out[-3000:]
        assert (undo.restored, undo.removed, undo.deleted) == (5, 20, 20)
        assert contact_state(account_id) == before


def test_a_portal_import_through_the_pages_makes_a_backup(app, client, owner):
    with app.app_context():
        from portal.accounts.models import Account

        account = db.session.get(Account, owner)
        group = contacts.create_group(account, "Kunden", actor=None, source="ui")
        member = contacts.create_contact(account, "bestand@example.de", source="ui")
        contacts.subscribe(
            member, group, source="ui"
        )  # an empty group gets no backup (test_recovery.py)
        db.session.commit()
        group_id = group.id
    data = b"email;Vorname\r\nanna@example.de;Anna\r\n"
    response = client.post(
        "/a/acme/imports/new",
        data={"file": (io.BytesIO(data), "liste.csv"), "group": str(group_id)},
        content_type="multipart/form-data",
    )
    job_url = response.headers["Location"]
    job_id = int(job_url.rstrip("/").rsplit("/", 1)[1])
    client.post(
        f"/a/acme/imports/{job_id}/mapping",
        data={"column-0": "email", "column-1": "first_name", "mode": "update_add"},
    )
    client.post(f"/a/acme/imports/{job_id}/start")
    page = client.get(job_url).get_data(as_text=True)
    assert "Import finished" in page and 'id="undo-button"' in page
    with app.app_context():
        job = db.session.get(ImportJob, job_id)
        backup = db.session.get(Backup, job.backup_id)
        assert backup.reason == "import" and backup.group_name == "Kunden"
        assert backup.contact_count == 1 and backup.created_by_id is not None


def test_a_confirmed_restore_on_a_real_worker(web, tmp_path, database_url, redis_url):
    """What the confirmation page showed is what the worker does, in "exact" mode."""
    with web.app_context():
        account = accounts.create_account("Worker", "worker")
        group = contacts.create_group(account, "Newsletter", actor=None, source="ui")
        for i in range(5):
            contact = contacts.create_contact(
                account, f"old{i}@example.de", first_name="Alt", source="ui"
            )
            contacts.subscribe(contact, group, source="ui")
        db.session.commit()
        backup_id = snapshot(group, reason="manual").id
        db.session.commit()
        account_id = account.id
        before = contact_state(account_id)
        rows = [["email", "first_name"], ["old0@example.de", "Neu"], ["new@example.de", "Neu"]]
        job = configured_import(account, group, write_csv(tmp_path / "list.csv", rows))
        job.source = "api"  # no second backup
        import_tasks.enqueue_run(job)
    _burst_worker(database_url, redis_url)
    with web.app_context():
        backup = db.session.get(Backup, backup_id)
        preview = restore_preview(backup)
        assert (preview.count("set_back"), preview.removed) == (1, 1)
        restore = request_restore(
            backup, mode="exact", expected=preview.outcome("exact"), actor=None
        )
        tasks.enqueue_restore(restore)
        restore_id = restore.id
        expected = preview.outcome("exact")
    out = _burst_worker(database_url, redis_url)
    with web.app_context():
        db.session.remove()
        restore = db.session.get(BackupRestore, restore_id)
        assert restore.status == "finished", out[-3000:]
        assert restore.counts == expected and not restore.changed_meanwhile
        after = contact_state(account_id)
        new = after.pop("new@example.de")
        assert new["status"] == "deleted" and not new["subs"]  # nobody is erased
        before.pop("new@example.de", None)
        assert after == before
