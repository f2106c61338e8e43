"""Every file the portal keeps is in one store that every node shares (issue 18, point
1): two app instances — a web node and a worker node — with DIFFERENT instance folders
(no shared disk) and the same database. On the PostgreSQL store a file one node writes
is read by the other, for every area: an uploaded list (web) is checked and run by the
worker; a backup and an export the worker makes are downloaded and restored through
the web; a mail the worker writes is in the outbox the web reads, and "forget me" on
the web removes it. On the folder store the other node does not find the file: the
failure issue 18 prevents, shown here so that it stays understood."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask

from portal import create_app
from portal.accounts import service as accounts
from portal.accounts.models import Account, Role
from portal.backups.models import Backup
from portal.backups.read import BackupUnreadable, verify
from portal.backups.restore import restore_as_import
from portal.backups.snapshot import snapshot
from portal.contacts import queries
from portal.contacts import service as contacts
from portal.contacts.models import Contact, Group
from portal.core.storage import StorageError
from portal.extensions import db
from portal.imports import files as upload_files
from portal.imports import service as imports
from portal.imports.models import ImportJob, ImportStatus
from portal.integrations import export
from portal.integrations.models import ExportRun
from portal.mail import outbox_messages, redact_outbox, send_mail
from tests.helpers.auth import PASSWORD, login
from tests.imports.conftest import postgresql_only, write_csv

OWNER = "owner@acme.example"
SHARED_KEYS = (
    "SQLALCHEMY_DATABASE_URI",
    "REDIS_URL",
    "SECRET_KEY",
    "SUPPRESSION_KEY",
    "SERVER_NAME",
    "BASE_URL",
    "LOGIN_RATE_LIMIT",
)


@dataclass
class Nodes:
    web: Flask
    worker: Flask
    shared: bool  # the files are in the shared (database) store

    @contextmanager
    def on(self, node: Flask) -> Iterator[None]:
        """Work on one node, whose disk is the only one there is: the other node's
        instance folder is moved out of reach meanwhile (both live in one test process
        on one disk, so a path written by one would otherwise open on the other)."""
        other = self.worker if node is self.web else self.web
        folder = Path(other.config["INSTANCE_PATH"])
        hidden = folder.with_name(folder.name + "-out-of-reach")
        folder.rename(hidden)
        try:
            with node.app_context():
                yield
        finally:
            hidden.rename(folder)


def _node(app: Flask, folder, store: str) -> Flask:
    """An app as one machine runs it: its own instance folder, backup folder and outbox
    (nothing of the session app's disk), the same database, Redis and secrets."""
    folder.mkdir()
    return create_app(
        {"TESTING": True, "WTF_CSRF_ENABLED": False, "FILE_STORE": store}
        | {
            "INSTANCE_PATH": str(folder),
            "BACKUP_DIR": str(folder / "backups"),
            "OUTBOX_DIR": str(folder / "outbox"),
        }
        | {key: app.config[key] for key in SHARED_KEYS}
    )


@pytest.fixture(
    params=[
        pytest.param(
            "postgresql",
            marks=postgresql_only(
                "the database store is the default on PostgreSQL; on SQLite (one writer at "
                "a time) a file written while a request holds a write would wait"
            ),
        ),
        "folder",
    ]
)
def nodes(request, app, tmp_path):
    web = _node(app, tmp_path / "node-a", request.param)
    worker = _node(app, tmp_path / "node-b", request.param)
    yield Nodes(web, worker, shared=request.param == "postgresql")
    for node in (web, worker):
        with node.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def ids(nodes):
    """An account with its owner and a group with two contacts, made on the web node."""
    with nodes.on(nodes.web):
        account = accounts.create_account("Acme", "acme")
        user = accounts.create_user(OWNER, PASSWORD)
        accounts.add_member(account, user, Role.OWNER)
        group = contacts.create_group(account, "Newsletter", actor=None, source="ui")
        for email in ("anna@example.com", "ben@example.com"):
            contacts.subscribe(
                contacts.create_contact(account, email, source="ui"), group, source="ui"
            )
        db.session.commit()
        return account.id, group.id


def _web_client(nodes):
    client = nodes.web.test_client()
    assert login(client, OWNER).status_code == 302
    return client


def test_a_list_uploaded_on_the_web_node_is_checked_and_run_by_the_worker(nodes, ids, tmp_path):
    account_id, group_id = ids
    upload = write_csv(
        tmp_path / "liste.csv", [["E-Mail", "Vorname"], ["cleo@example.com", "Cleo"]]
    )
    with nodes.on(nodes.web):
        account = db.session.get(Account, account_id)
        group = db.session.get(Group, group_id)
        job = imports.create_import(
            account, actor=None, group=group, source_path=upload, filename="liste.csv", source="ui"
        )
        imports.configure(
            job, mapping=job.mapping, mode="update_add", import_consent=False,
            restore_deleted=False,
        )  # fmt: skip
        db.session.commit()
        job_id, key = job.id, job.stored_path
    upload.unlink()  # the request's own temporary file is gone, as after a request

    with nodes.on(nodes.worker):
        job = db.session.get(ImportJob, job_id)
        if not nodes.shared:
            # the worker's disk has no instance/imports/<account>/<file>
            with pytest.raises(StorageError):
                imports.check(job)
            assert db.session.get(ImportJob, job_id).status == ImportStatus.FAILED
            return
        assert imports.preview_rows(job) == [["cleo@example.com", "Cleo"]]
        imports.check(job)
        assert job.status == ImportStatus.READY and job.dry_run
        imports.run(job)
        assert job.status == ImportStatus.FINISHED and job.created == 1
        imports.drop_staging(job)  # the worker's clean-up: the list goes, for every node

    with nodes.on(nodes.web):
        assert queries.find_contact(db.session.get(Account, account_id), "cleo@example.com")
        assert not upload_files.store().exists(key)


def test_a_backup_made_by_the_worker_is_downloaded_and_restored_through_the_web(nodes, ids):
    account_id, group_id = ids
    with nodes.on(nodes.worker):
        backup = snapshot(db.session.get(Group, group_id), reason="manual", actor=None)
        db.session.commit()
        backup_id = backup.id

    with nodes.on(nodes.web):
        download = _web_client(nodes).get(f"/a/acme/backups/{backup_id}/download?lang=en")
    if not nodes.shared:
        assert download.status_code == 302 and b"anna@example.com" not in download.data
        with nodes.on(nodes.web), pytest.raises(BackupUnreadable):
            verify(db.session.get(Backup, backup_id))
        return
    assert download.status_code == 200
    assert b"anna@example.com" in download.data and b"ben@example.com" in download.data

    # the one-click restore: prepared on the web (it reads the backup), run by the worker
    # (it reads the list the web stored)
    with nodes.on(nodes.web):
        job = restore_as_import(db.session.get(Backup, backup_id), actor=None)
        db.session.commit()
        job_id = job.id
    with nodes.on(nodes.worker):
        job = db.session.get(ImportJob, job_id)
        imports.run(job)
        assert job.status == ImportStatus.FINISHED
        assert (job.unchanged, job.created, job.invalid) == (2, 0, 0)


def test_an_export_made_by_the_worker_downloads_through_the_web(nodes, ids):
    account_id, group_id = ids
    with nodes.on(nodes.web):
        run = export.start(
            db.session.get(Account, account_id),
            fmt="csv",
            group=db.session.get(Group, group_id),
            actor=None,
        )
        db.session.commit()
        run_id = run.id
    with nodes.on(nodes.worker):
        export.run(db.session.get(ExportRun, run_id))

    with nodes.on(nodes.web):
        client = _web_client(nodes)
        page = client.get(f"/a/acme/integrations/exports/{run_id}").get_data(as_text=True)
        download = client.get(f"/a/acme/integrations/exports/{run_id}/download")
    if not nodes.shared:
        assert download.status_code == 410  # "gone": the file is on the worker's disk
        return
    assert f"/integrations/exports/{run_id}/download" in page
    assert download.status_code == 200
    assert b"anna@example.com" in download.data and b"ben@example.com" in download.data


def test_a_mail_the_worker_writes_is_in_the_outbox_of_the_web_node_and_forgotten_there(nodes, ids):
    account_id, _group_id = ids
    with nodes.on(nodes.worker):
        send_mail(
            "cleo@example.com",
            "Please confirm",
            "password_reset",
            about_account=account_id,
            link="http://localhost/x",
            user=SimpleNamespace(display_name="Cleo"),
        )
        assert len(outbox_messages()) == 1

    with nodes.on(nodes.web):
        seen = outbox_messages()
        if not nodes.shared:
            assert seen == []  # the mail lies on the worker's disk
            return
        assert [m["To"] for m in seen] == ["cleo@example.com"]
        # "forget me" runs on the web node and removes the mail the worker wrote
        assert redact_outbox(account_id, {"cleo@example.com"}) == 1
    with nodes.on(nodes.worker):
        assert outbox_messages() == []
        assert db.session.scalar(db.select(db.func.count(Contact.id))) == 2
