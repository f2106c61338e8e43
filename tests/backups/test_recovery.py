"""Recovery that says what it will do and does what it says (issue 17, points 1, 2, 4):
the dry run of a restore and of an undo, the two restore modes, the confirmation pages,
the undo links in the import history and on the backup row, no backup of an empty group."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal import clock
from portal.accounts import service as accounts
from portal.accounts.models import Role
from portal.backups.models import Backup, BackupRestore, ImportUndo, RestoreMode
from portal.backups.restore import request_restore, restore_preview, run_restore
from portal.backups.retention import remove_expired
from portal.backups.snapshot import snapshot
from portal.backups.undo import request_undo, run_undo, undo_blocker, undo_preview
from portal.contacts import service as contacts
from portal.contacts.models import Contact, ContactStatus, Subscription
from portal.core.audit import AuditEvent
from portal.extensions import db
from portal.imports.models import ImportBeforeImage, ImportJob
from portal.lifecycle import service as lifecycle
from tests.backups.conftest import build_contacts, group_state
from tests.helpers.auth import login
from tests.imports.conftest import contact_state

HEADER = ["email", "first_name", "last_name"]


def _members(group_id: int) -> dict[str, str]:
    """Email -> contact status of the group's members."""
    return dict(
        db.session.execute(
            db.select(Contact.email, Contact.status)
            .join(Subscription, Subscription.contact_id == Contact.id)
            .where(Subscription.group_id == group_id)
        ).all()
    )


def _status(email: str) -> str:
    return db.session.scalar(db.select(Contact.status).where(Contact.email == email))


@pytest.fixture
def scenario(account, group, run_import):
    """The issue's case: a group of 360, an import from the portal (backup first) that
    adds 12 contacts and changes one name. Two of the 12 are also in another group."""
    emails = build_contacts(account, group, 360)
    other = contacts.create_group(account, "Kunden", actor=None, source="ui")
    db.session.commit()
    renamed = emails[5]
    new = [f"neu{i:02d}@example.de" for i in range(12)]
    rows = [
        HEADER,
        [renamed, "Umbenannt", "Neu"],
        *([e, "Neu", f"N{i}"] for i, e in enumerate(new)),
    ]
    job = run_import(rows)
    assert job.backup_id is not None and (job.created, job.updated) == (12, 1)
    for email in new[:2]:
        contacts.subscribe(
            db.session.scalar(db.select(Contact).where(Contact.email == email)), other, source="ui"
        )
    db.session.commit()
    backup = db.session.get(Backup, job.backup_id)
    assert backup.contact_count == 360
    return {"emails": emails, "renamed": renamed, "new": new, "job": job, "backup": backup}


def test_preview_counts_what_changed_and_writes_nothing(account, group, scenario):
    before = contact_state(account.id)
    preview = restore_preview(scenario["backup"])
    assert preview.count("set_back") == 1
    assert preview.examples["set_back"] == [scenario["renamed"]]
    assert preview.removed == 12 and preview.count("orphaned") == 10
    assert preview.count("added") == 0 and preview.count("kept") == 0
    assert preview.count("unchanged") == 359  # unchanged contacts are not "updated"
    assert preview.modes_differ
    assert len(preview.examples["removed"] + preview.examples["orphaned"]) <= 6
    assert contact_state(account.id) == before  # the dry run wrote nothing
    assert db.session.scalar(db.select(db.func.count(BackupRestore.id))) == 0


def _restore(backup, mode, preview):
    restore = request_restore(backup, mode=mode, expected=preview.outcome(mode), actor=None)
    db.session.commit()
    run_restore(restore)
    return db.session.get(BackupRestore, restore.id)


def test_exact_mode_sets_the_group_back_and_nobody_is_erased(account, group, scenario):
    backup = scenario["backup"]
    preview = restore_preview(backup)
    restore = _restore(backup, RestoreMode.EXACT, preview)
    assert restore.status == "finished" and not restore.changed_meanwhile
    assert restore.counts == preview.outcome(RestoreMode.EXACT)  # did what it showed
    assert restore.counts["set_back"] == 1 and restore.counts["removed"] == 12
    members = _members(group.id)
    assert set(members) == set(scenario["emails"]) and len(members) == 360
    assert set(members.values()) == {"active"}
    # the 12 left the group; nobody was erased: 10 in no group are "to be deleted"
    for email in scenario["new"][2:]:
        assert _status(email) == ContactStatus.DELETED
    for email in scenario["new"][:2]:
        assert _status(email) == ContactStatus.ACTIVE  # still in "Kunden"
    name = db.session.scalar(
        db.select(Contact.first_name).where(Contact.email == scenario["renamed"])
    )
    assert name != "Umbenannt"
    # afterwards the group equals the backup: a new dry run finds nothing to do
    again = restore_preview(backup)
    assert again.count("unchanged") == 360 and again.removed == 0
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "backup.restored"))
    assert event.details["set_back"] == 1 and event.details["mode"] == "exact"
    # restorable as usual
    ids = db.session.scalars(
        db.select(Contact.id).where(Contact.email.in_(scenario["new"][2:]))
    ).all()
    assert lifecycle.undelete_contacts(account, ids, actor=None, source="ui") == 10


def test_add_missing_mode_keeps_the_later_members(account, group, scenario):
    backup = scenario["backup"]
    preview = restore_preview(backup)
    restore = _restore(backup, RestoreMode.ADD_MISSING, preview)
    assert restore.counts == preview.outcome(RestoreMode.ADD_MISSING)
    assert restore.counts["set_back"] == 1 and restore.counts["removed"] == 0
    assert len(_members(group.id)) == 372
    assert all(_status(e) == ContactStatus.ACTIVE for e in scenario["new"])


def test_forgotten_and_signed_off_since_are_left_alone(account, group, scenario):
    backup = scenario["backup"]
    state = group_state(group.id)
    active = [e for e in scenario["emails"] if state[e]["active"] and e != scenario["renamed"]]
    forgotten, signed_off = active[0], active[1]
    lifecycle.forget_emails(account, [forgotten], actor=None, source="ui")
    person = db.session.scalar(db.select(Contact).where(Contact.email == signed_off))
    contacts.unsubscribe(person, group, reason="unsubscribed", at=clock.now(), source="ui")
    db.session.commit()

    preview = restore_preview(backup)
    assert preview.forgotten == 1 and preview.count("kept") == 1
    assert preview.examples["kept"] == [signed_off]
    assert forgotten not in str(preview.examples)  # a forgotten address is never shown
    restore = _restore(backup, RestoreMode.EXACT, preview)
    assert restore.counts["forgotten"] == 1 and restore.counts["kept"] == 1
    assert db.session.scalar(db.select(Contact).where(Contact.email == forgotten)) is None
    after = group_state(group.id)[signed_off]
    assert after["active"] is False and after["optout_reason"] == "unsubscribed"


def test_missing_and_to_be_deleted_contacts_come_back(account, group):
    emails = build_contacts(account, group, 20)
    backup = snapshot(group, reason="manual")
    db.session.commit()
    before = group_state(group.id)
    gone, deleted, left = emails[1], emails[2], emails[4]
    db.session.delete(db.session.scalar(db.select(Contact).where(Contact.email == gone)))
    ids = [db.session.scalar(db.select(Contact.id).where(Contact.email == deleted))]
    lifecycle.delete_contacts(account, ids, actor=None, source="ui")
    sub = db.session.scalar(
        db.select(Subscription)
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(Contact.email == left)
    )
    db.session.delete(sub)
    db.session.commit()

    preview = restore_preview(backup)
    assert preview.count("added") == 2 and preview.count("brought_back") == 1
    assert sorted(preview.examples["added"]) == sorted([gone, left])
    assert not preview.modes_differ  # nothing to remove: one button
    restore = _restore(backup, RestoreMode.EXACT, preview)
    assert restore.counts["added"] == 2 and restore.counts["brought_back"] == 1
    assert group_state(group.id) == before
    assert _status(deleted) == ContactStatus.ACTIVE


def test_the_restore_says_when_the_group_changed_after_the_preview(account, group, scenario):
    backup = scenario["backup"]
    preview = restore_preview(backup)
    contacts.create_contact(account, "spaet@example.de", source="ui")
    late = db.session.scalar(db.select(Contact).where(Contact.email == "spaet@example.de"))
    contacts.subscribe(late, group, source="ui")
    db.session.commit()
    restore = _restore(backup, RestoreMode.EXACT, preview)
    assert restore.changed_meanwhile and restore.counts["removed"] == 13


# --- point 4: no backup of an empty group -------------------------------------------------


def test_an_import_into_an_empty_group_makes_no_backup_and_can_be_undone(
    account, group, run_import
):
    other = contacts.create_group(account, "Kunden", actor=None, source="ui")
    old = contacts.create_contact(account, "alt@example.de", first_name="Alt", source="ui")
    contacts.subscribe(old, other, source="ui")
    db.session.commit()
    before = contact_state(account.id)
    job = run_import([HEADER, ["alt@example.de", "Geändert", ""], ["neu@example.de", "Neu", ""]])
    assert job.backup_id is None and job.group_was_empty
    assert db.session.scalar(db.select(db.func.count(Backup.id))) == 0
    assert db.session.scalar(db.select(db.func.count(ImportBeforeImage.import_id))) == 1
    assert undo_blocker(job) is None

    preview = undo_preview(job)
    assert (preview.count("set_back"), preview.count("removed"), preview.count("deleted")) == (
        1,
        2,
        1,
    )
    undo = request_undo(job, actor=None)
    db.session.commit()
    run_undo(undo)
    undo = db.session.get(ImportUndo, undo.id)
    assert undo.status == "finished", undo.error
    assert (undo.restored, undo.removed, undo.deleted) == (1, 2, 1)
    assert contact_state(account.id) == before  # the group is empty again, alt set back


def test_the_undo_of_an_empty_group_import_ends_with_the_retention(account, group, run_import):
    job = run_import([HEADER, ["neu@example.de", "Neu", ""]])
    job.created_at = clock.now() - timedelta(days=31)
    db.session.commit()
    assert "30 days" in undo_blocker(job)
    remove_expired()
    assert db.session.scalar(db.select(db.func.count(ImportBeforeImage.import_id))) == 0


# --- pages ----------------------------------------------------------------------------------


def _sign_in(client, account, role=Role.EDITOR, email="ed@acme.example"):
    user = accounts.create_user(email, "correct-horse-battery")
    accounts.add_member(account, user, role)
    db.session.commit()
    login(client, email)
    return user


def test_restore_confirmation_page_offers_two_modes_and_the_post_does_what_it_showed(
    client, account, group, scenario
):
    _sign_in(client, account)
    backup = scenario["backup"]
    before = contact_state(account.id)
    page = client.get(f"/a/acme/backups/{backup.id}/restore").get_data(as_text=True)
    assert contact_state(account.id) == before
    assert 'data-count="set_back">1<' in page and scenario["renamed"] in page
    assert 'data-count="removed">12<' in page and "neu02@example.de" in page
    assert "Set the group back to this backup" in page
    assert "Only add back what is missing" in page
    assert "10 of them are in no other group" in page
    assert "Restore deleted contacts" not in page  # no option the page does not have
    assert 'name="csrf_token"' in page
    response = client.post(
        f"/a/acme/backups/{backup.id}/restore",
        data={
            "mode": "add_missing",
            "expected_add_missing_set_back": "1",
            "expected_add_missing_removed": "0",
        },
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "The backup has been restored." in page
    assert "set back: 1 · added back: 0" in page and "removed from the group: 0" in page
    assert len(_members(group.id)) == 372


def test_undo_links_in_the_history_and_on_the_backup_row(client, account, group, scenario):
    job = scenario["job"]
    backup = scenario["backup"]
    _sign_in(client, account, Role.VIEWER, "vi@acme.example")
    assert f'id="undo-{job.id}"' not in client.get("/a/acme/imports").get_data(as_text=True)
    page = client.get("/a/acme/backups").get_data(as_text=True)
    assert f'id="undo-import-{backup.id}"' not in page and "/restore" not in page
    client.post("/logout")

    _sign_in(client, account)
    history = client.get("/a/acme/imports").get_data(as_text=True)
    link = f'href="/a/acme/backups/undo/{job.id}?back=history" id="undo-{job.id}"'
    assert link in history
    page = client.get("/a/acme/backups").get_data(as_text=True)
    assert f'href="/a/acme/backups/undo/{job.id}" id="undo-import-{backup.id}"' in page
    confirm = client.get(f"/a/acme/backups/undo/{job.id}?back=history").get_data(as_text=True)
    assert 'data-count="set_back">1<' in confirm and 'data-count="removed">12<' in confirm
    assert 'data-count="deleted">10<' in confirm
    response = client.post(f"/a/acme/backups/undo/{job.id}?back=history")
    assert response.headers["Location"].endswith("/a/acme/imports")
    history = client.get("/a/acme/imports").get_data(as_text=True)
    assert f'id="undo-{job.id}"' not in history and "undone" in history
    assert db.session.get(ImportJob, job.id).undone_at is not None


def test_confirmation_pages_of_another_tenant_are_404(client, account, group, scenario):
    other = accounts.create_account("Other", "other")
    user = accounts.create_user("o@other.example", "correct-horse-battery")
    accounts.add_member(other, user, Role.OWNER)
    db.session.commit()
    login(client, "o@other.example")
    backup_id, import_id = scenario["backup"].id, scenario["job"].id
    assert client.get(f"/a/other/backups/{backup_id}/restore").status_code == 404
    assert (
        client.post(f"/a/other/backups/{backup_id}/restore", data={"mode": "exact"}).status_code
        == 404
    )
    assert client.get(f"/a/other/backups/undo/{import_id}").status_code == 404
    assert db.session.scalar(db.select(db.func.count(BackupRestore.id))) == 0


def test_no_restore_without_the_csrf_token(app, client, account, group, scenario):
    _sign_in(client, account)
    app.config["WTF_CSRF_ENABLED"] = True
    backup = scenario["backup"]
    response = client.post(f"/a/acme/backups/{backup.id}/restore", data={"mode": "exact"})
    assert response.status_code == 400
    response = client.post(f"/a/acme/backups/undo/{scenario['job'].id}")
    assert response.status_code == 400
    assert db.session.scalar(db.select(db.func.count(BackupRestore.id))) == 0
    assert db.session.scalar(db.select(db.func.count(ImportUndo.id))) == 0


def test_a_restore_import_never_names_an_option_it_does_not_have(app):
    from portal.imports.reasons import message, skip_label

    with app.test_request_context("/"):
        assert "Restore deleted contacts" not in skip_label("deleted", "restore")
        assert "Restore deleted contacts" not in message("deleted", None, "restore")
        assert "Restore deleted contacts" in skip_label("deleted", "ui")  # the import has it
