"""Download and restore: the import format round-trips, a restore never reactivates an
unsubscribed contact and never brings back a forgotten one."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from portal import clock
from portal.accounts import service as accounts
from portal.accounts.models import Account, Role
from portal.backups.models import Backup, BackupRestore
from portal.backups.read import list_backups
from portal.backups.restore import restore_as_import
from portal.backups.snapshot import snapshot
from portal.contacts import service as contacts
from portal.contacts.models import Contact, Group, Subscription
from portal.core.privacy import Suppression, email_hash
from portal.extensions import db
from portal.imports import mapping as m
from portal.imports import service as imports
from portal.imports.models import ImportJob
from tests.backups.conftest import add_fields, build_contacts, group_state
from tests.helpers.auth import login


def _sign_in(client, account):
    user = accounts.create_user("editor@acme.example", "correct-horse-battery")
    accounts.add_member(account, user, Role.EDITOR)
    db.session.commit()
    login(client, "editor@acme.example")
    return user


@pytest.mark.parametrize("language", ["en", "de"])
def test_round_trip_of_5000_contacts_reproduces_master_data_and_sign_off_state(
    app, client, account, group, tmp_path, language
):
    build_contacts(account, group, 5000)
    original = group_state(group.id)
    backup = snapshot(group, reason="manual")
    db.session.commit()
    _sign_in(client, account)

    response = client.get(f"/a/acme/backups/{backup.id}/download?lang={language}")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens umlauts and Polish letters
    text = body.decode("utf-8-sig")
    assert "Brzęczyszczykiewicz" in text and "Größ" in text and "Żółw" in text
    assert "'=SUM(A1:A9)" in text  # formula guard
    header = next(csv.reader(io.StringIO(text), delimiter="," if language == "en" else ";"))
    # the file for Excel, in the reader's language
    assert m.portal_language(header) == language

    # a second account with the same custom fields imports the downloaded file
    other = accounts.create_account("Other", "other")
    add_fields(other)
    target = contacts.create_group(other, "Wiederhergestellt", actor=None, source="ui")
    db.session.commit()
    path = tmp_path / "download.csv"
    path.write_bytes(body)
    job = imports.create_import(
        other, actor=None, group=target, source_path=path, filename="backup.csv", source="api"
    )
    # mapped without a single question: every column, custom fields by their label
    assert job.detected_format == "portal" and m.IGNORE not in job.mapping
    imports.configure(
        job, mapping=job.mapping, mode="update_add", import_consent=True, restore_deleted=False
    )
    db.session.commit()
    imports.run(job)
    assert (job.created, job.invalid, job.skipped) == (5000, 0, 0)
    copy = group_state(target.id)
    assert copy.keys() == original.keys()
    for email, before in original.items():
        assert copy[email] == before, email


def test_one_click_restore_recreates_a_deleted_group_and_keeps_sign_offs(app, client, account):
    group = contacts.create_group(account, "Kunden", actor=None, source="ui")
    db.session.commit()
    emails = build_contacts(account, group, 30)
    before = group_state(group.id)
    contacts.delete_group(group, actor=None, source="ui")
    db.session.commit()
    backup = db.session.scalar(db.select(Backup))
    assert backup.reason == "group_deleted" and backup.group_id is None

    # after the backup: one active contact signed off elsewhere - meanwhile in a new
    # group - and one contact was forgotten (erased, address on the suppression list)
    active = next(e for e in emails if before[e]["active"])
    forgotten = next(e for e in emails if e != active)
    gone = db.session.scalar(db.select(Contact).where(Contact.email == forgotten))
    db.session.add(Suppression(account_id=account.id, email_hash=email_hash(forgotten)))
    db.session.delete(gone)
    db.session.commit()

    user = _sign_in(client, account)
    page = client.get(f"/a/acme/backups/{backup.id}/restore").get_data(as_text=True)
    assert "creates it again" in page  # the group is gone
    assert 'data-count="added">29<' in page and 'data-count="forgotten">1<' in page
    assert forgotten not in page  # a forgotten address is counted, never shown
    response = client.post(
        f"/a/acme/backups/{backup.id}/restore", data={"mode": "exact", "expected_exact_added": "29"}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/a/acme/backups#backup-{backup.id}")
    restore = db.session.scalar(db.select(BackupRestore))
    assert restore.status == "finished" and restore.created_by_id == user.id
    assert restore.counts["added"] == 29 and not restore.changed_meanwhile
    page = client.get("/a/acme/backups").get_data(as_text=True)
    assert "Restored on" in page and "added back: 29" in page
    restored = db.session.scalar(db.select(Group).where(Group.name == "Kunden"))
    assert restored is not None
    after = group_state(restored.id)
    assert forgotten not in after  # never comes back
    assert db.session.scalar(db.select(Contact).where(Contact.email == forgotten)) is None
    assert set(after) == set(emails) - {forgotten}
    for email, state in after.items():
        assert state == before[email], email
    assert db.session.scalar(db.select(db.func.count(Backup.id))) == 1  # restore made none


def test_restore_never_reactivates_a_contact_who_signed_off_after_the_backup(account, group):
    build_contacts(account, group, 10)
    backup = snapshot(group, reason="manual")
    db.session.commit()
    sub = db.session.scalar(
        db.select(Subscription).where(Subscription.group_id == group.id, Subscription.active)
    )
    email = db.session.get(Contact, sub.contact_id).email
    contacts.unsubscribe(sub.contact, group, reason="unsubscribed", at=clock.now(), source="ui")
    db.session.commit()
    job = restore_as_import(backup, actor=None)
    db.session.commit()
    imports.run(job)
    state = group_state(group.id)[email]
    assert state["active"] is False and state["optout_reason"] == "unsubscribed"


def test_download_leaves_out_forgotten_addresses(app, client, account, group):
    emails = build_contacts(account, group, 5)
    backup = snapshot(group, reason="manual")
    db.session.add(Suppression(account_id=account.id, email_hash=email_hash(emails[2])))
    db.session.commit()
    _sign_in(client, account)
    text = client.get(f"/a/acme/backups/{backup.id}/download").get_data().decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert [r[0] for r in lines[1:]] == [e for e in emails if e != emails[2]]


def test_restore_into_a_group_of_the_same_name(account, group):
    build_contacts(account, group, 3)
    backup = snapshot(group, reason="manual")
    contacts.delete_group(group, actor=None, source="api")
    again = contacts.create_group(account, "NEWSLETTER", actor=None, source="ui")
    db.session.commit()
    job = restore_as_import(backup, actor=None)
    assert job.group_id == again.id
    assert db.session.scalar(db.select(db.func.count(Group.id))) == 1


def test_expired_backups_are_neither_listed_nor_restored(app, client, account, group):
    build_contacts(account, group, 2)
    backup = snapshot(group, reason="manual")
    backup.expires_at = clock.now() - timedelta(minutes=1)
    db.session.commit()
    assert list_backups(db.session.get(Account, account.id)) == []
    _sign_in(client, account)
    for response in (
        client.get(f"/a/acme/backups/{backup.id}/restore", follow_redirects=True),
        client.post(
            f"/a/acme/backups/{backup.id}/restore", data={"mode": "exact"}, follow_redirects=True
        ),
    ):
        assert "expired" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(ImportJob)) is None
    assert db.session.scalar(db.select(BackupRestore)) is None
