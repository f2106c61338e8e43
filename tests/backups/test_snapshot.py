"""Automatic snapshots: before portal imports and group deletions, only when both
switches are on; never for the API, integrations or jobs."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io

import pytest

from portal.backups.models import Backup, BackupPendingDeletion
from portal.backups.snapshot import snapshot
from portal.contacts import service as contacts
from portal.contacts.models import Activity, Contact, Group
from portal.core.audit import AuditEvent
from portal.core.storage import StorageError, get_storage
from portal.extensions import db
from portal.imports import mapping as m
from tests.backups.conftest import build_contacts, group_state, mark_deleted
from tests.backups.stores import raw_bytes


def _backups():
    return list(db.session.scalars(db.select(Backup).order_by(Backup.id)))


def _stored_rows(backup):
    raw = raw_bytes(get_storage(), backup.storage_key)
    text = gzip.decompress(raw).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_portal_import_makes_a_backup_of_the_group_before_writing(account, group, run_import):
    build_contacts(account, group, 20)
    before = group_state(group.id)
    job = run_import([["email", "first_name"], ["user1@beispiel-1.de", "Neu"], ["x@y.de", "X"]])
    backups = _backups()
    assert len(backups) == 1
    backup = backups[0]
    assert job.backup_id == backup.id
    assert backup.reason == "import" and backup.import_id == job.id
    assert backup.group_id == group.id and backup.group_name == "Newsletter"
    assert backup.contact_count == 20
    assert (backup.expires_at - backup.created_at).days == 30
    raw = raw_bytes(get_storage(), backup.storage_key)
    assert backup.size == len(raw)
    assert backup.checksum == hashlib.sha256(raw).hexdigest()
    assert backup.storage_key.startswith(f"{account.id}/")
    rows = _stored_rows(backup)
    assert rows[0] == [
        *m.PORTAL_HEADER,
        "field:city",
        "field:points",
        "field:birthday",
        "field:level",
    ]
    assert {r[0] for r in rows[1:]} == set(before)  # the state from before the import
    assert (
        db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "backup.created")
        ).details["contacts"]
        == 20
    )


def test_backup_holds_master_data_in_the_import_format_and_no_activities(account, group):
    contact = contacts.create_contact(
        account,
        "jürgen@größ.de",
        first_name="=Jürgen",
        last_name="Größ",
        fields={"city": "Łódź", "points": "2,5", "level": "Gold"},
        source="ui",
    )
    contacts.subscribe(contact, group, source="ui")
    contacts.add_tag(contact, "Żółw", actor=None, source="ui")
    contacts.add_tag(contact, "Ärger", actor=None, source="ui")
    db.session.add(
        Activity(
            account_id=account.id, contact_id=contact.id, kind="open", detail="secret-activity"
        )
    )
    gone = contacts.create_contact(account, "weg@example.pl", first_name="Weg", source="ui")
    contacts.subscribe(gone, group, source="ui")
    contacts.unsubscribe(gone, group, reason="bounced", source="ui")
    db.session.commit()
    mark_deleted(gone.id)
    backup = snapshot(group, reason="manual")
    db.session.commit()
    rows = _stored_rows(backup)
    assert "secret-activity" not in repr(rows)
    by_email = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    row = by_email[contact.email]
    assert row["first_name"] == "'=Jürgen"  # formula guard; the importer removes it
    assert sorted(row["tags"].split(";")) == ["Ärger", "Żółw"]
    assert row["active"] == "yes" and row["signup_at"].endswith("+00:00")
    assert row["field:city"] == "Łódź" and row["field:points"] == "2.5"
    assert row["field:level"] == "Gold" and row["field:birthday"] == ""
    off = by_email["weg@example.pl"]
    assert off["active"] == "no" and off["optout_reason"] == "bounced" and off["signoff_at"]
    pending = db.session.scalars(db.select(BackupPendingDeletion)).all()
    assert [(p.backup_id, p.contact_id) for p in pending] == [(backup.id, gone.id)]


@pytest.mark.parametrize("source", ["api", "restore", "job"])
def test_imports_from_the_api_and_jobs_make_no_backup(account, group, run_import, source):
    build_contacts(account, group, 5)
    job = run_import([["email"], ["a@b.de"]], source=source)
    assert job.backup_id is None
    assert _backups() == []


@pytest.mark.parametrize("switch", ["account", "group"])
def test_either_switch_off_means_no_backup(account, group, run_import, switch):
    build_contacts(account, group, 5)
    (account if switch == "account" else group).automatic_backups = False
    db.session.commit()
    job = run_import([["email"], ["a@b.de"]])
    assert job.backup_id is None and job.created == 1
    contacts.delete_group(group, actor=None, source="ui")
    db.session.commit()
    assert _backups() == []


def test_group_deletion_makes_a_backup_and_then_the_group_is_gone(account, group):
    emails = build_contacts(account, group, 12)
    group_id = group.id
    contacts.delete_group(group, actor=None, source="ui")
    db.session.commit()
    assert db.session.get(Group, group_id) is None
    (backup,) = _backups()
    assert backup.reason == "group_deleted" and backup.contact_count == 12
    assert backup.group_id is None and backup.group_name == "Newsletter"  # the group is gone
    assert {r[0] for r in _stored_rows(backup)[1:]} == set(emails)
    assert db.session.scalar(db.select(db.func.count(Contact.id))) == 12  # contacts kept


def test_group_deletion_through_the_api_makes_no_backup(account, group):
    build_contacts(account, group, 3)
    contacts.delete_group(group, actor=None, source="api")
    db.session.commit()
    assert _backups() == []


def test_a_failed_snapshot_stops_the_group_deletion(account, group, monkeypatch):
    build_contacts(account, group, 3)

    def broken(self, key, chunks):
        raise StorageError("disk full")

    monkeypatch.setattr(type(get_storage()), "write_stream", broken)
    with pytest.raises(contacts.ServiceError) as refused:
        contacts.delete_group(group, actor=None, source="ui")
    assert "not deleted" in str(refused.value)
    db.session.rollback()
    assert db.session.get(Group, group.id) is not None
    assert _backups() == []


def test_group_deletion_page_makes_the_backup(app, client, owner):
    from tests.helpers.auth import login  # noqa: F401 - the owner fixture signed in

    with app.app_context():
        from portal.accounts.models import Account

        account = db.session.get(Account, owner)
        group = contacts.create_group(account, "Kunden", actor=None, source="ui")
        build_contacts(account, group, 4)
        group_id = group.id
    page = client.get(f"/a/acme/groups/{group_id}/settings").get_data(as_text=True)
    assert "A backup of the group is saved first." in page
    response = client.post(f"/a/acme/groups/{group_id}/delete", data={"confirm": "y"})
    assert response.status_code == 302
    with app.app_context():
        (backup,) = _backups()
        assert backup.group_name == "Kunden" and backup.contact_count == 4
        assert backup.created_by_id is not None


def test_postgres_copy_writes_the_same_cells_as_the_portable_path(account, group):
    """On PostgreSQL the database writes the CSV; every cell must equal Python's."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the database writes the CSV on PostgreSQL only")
    build_contacts(account, group, 300)
    odd = contacts.create_contact(
        account,
        "+plus@example.de",
        first_name='Anna "Nan", die\nZweite',
        last_name="",
        fields={"city": "@Köln; Mitte", "points": 1e-05, "level": "Silber"},
        source="ui",
    )
    contacts.subscribe(odd, group, source="ui")
    contacts.add_tag(odd, "-minus", actor=None, source="ui")
    db.session.commit()
    mark_deleted(odd.id)
    fast = snapshot(group, reason="manual")
    portable = snapshot(group, reason="manual", _portable=True)
    db.session.commit()
    assert fast.contact_count == portable.contact_count == 301

    def cells(backup):  # the same cells; tags in any order
        rows = _stored_rows(backup)
        for row in rows[1:]:
            row[3] = sorted(row[3].split(";"))
        return rows

    assert cells(fast) == cells(portable)
    pending = db.session.scalars(
        db.select(BackupPendingDeletion.contact_id).where(
            BackupPendingDeletion.backup_id == fast.id
        )
    ).all()
    assert pending == [odd.id]
