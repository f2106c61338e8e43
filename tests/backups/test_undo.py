"""Undo of an import: the group goes back exactly as its backup shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal import clock
from portal.accounts import service as accounts
from portal.accounts.models import Role
from portal.backups.models import ImportUndo
from portal.backups.read import live_backup
from portal.backups.retention import delete_backup
from portal.backups.undo import UndoRefused, request_undo, run_undo, undo_blocker
from portal.contacts import service as contacts
from portal.contacts.models import Contact, Subscription, Tag
from portal.core.audit import AuditEvent
from portal.core.storage import get_storage
from portal.extensions import db
from portal.imports.models import ImportJob
from tests.backups.conftest import mark_deleted
from tests.backups.stores import damage, raw_bytes
from tests.helpers.auth import login
from tests.imports.conftest import contact_state

HEADER = ["email", "first_name", "last_name", "tags", "active", "signup_at", "signoff_at",
          "optout_reason", "Stadt", "Punkte", "Geburtstag"]  # fmt: skip


@pytest.fixture
def scene(account, group):
    """Contacts in every state an import can change."""
    other = contacts.create_group(account, "Kunden", actor=None, source="ui")
    jan = datetime(2024, 1, 10, 9, 30, 12, 345678, tzinfo=UTC)

    def person(email, first, last, *, fields=None, tags=(), groups=(group,)):
        c = contacts.create_contact(
            account, email, first_name=first, last_name=last, fields=fields, source="ui"
        )
        for g in groups:
            contacts.subscribe(c, g, at=jan, source="ui")
        for t in tags:
            contacts.add_tag(c, t, actor=None, source="ui")
        return c

    c1 = person("jürgen@größ.de", "Jürgen", "Größ", fields={"city": "Köln", "points": 42},
                tags=("Kunde", "VIP"))  # fmt: skip
    c2 = person("ola@example.pl", "Ola", "Żółć", tags=("Łódź",))
    contacts.unsubscribe(c2, group, reason="bounced", at=jan + timedelta(days=30), source="ui")
    c3 = person("weg@example.it", "Niccolò", "Mazzà")
    c4 = person("eline@example.nl", "Eline", "van 't Hoff", fields={"points": 2.5})
    c5 = person("kunde@example.de", "Karl", "Kunde", groups=(other,))
    c6 = person("lose@example.de", "Lose", "Ohne", groups=())
    db.session.commit()
    mark_deleted(c3.id)
    return {"other": other, "jan": jan, "ids": [c.id for c in (c1, c2, c3, c4, c5, c6)]}


def _import_everything(run_import):
    march = "2024-03-01T10:00:00+00:00"
    return run_import(
        [
            HEADER,
            [
                "jürgen@größ.de",
                "Jörg",
                "Groß",
                "Neu;VIP",
                "",
                "",
                "",
                "",
                "Berlin",
                "7",
                "1.2.2000",
            ],
            ["ola@example.pl", "Aleksandra", "", "", "yes", march, "", "", "", "", ""],
            ["weg@example.it", "Nicco", "", "", "", "", "", "", "", "", ""],
            ["eline@example.nl", "", "", "", "no", "", march, "unsubscribed", "", "", ""],
            ["kunde@example.de", "", "", "", "", "", "", "", "", "", ""],
            ["lose@example.de", "", "", "", "", "", "", "", "", "", ""],
            ["neu1@example.de", "Neu", "Eins", "Importiert", "", "", "", "", "Wien", "", ""],
            ["neu2@example.de", "Neu", "Zwei", "", "no", "", march, "", "", "", ""],
        ],
        restore=True,
    )


def _tag_names(account):
    return sorted(db.session.scalars(db.select(Tag.name).where(Tag.account_id == account.id)))


def test_undo_restores_the_pre_import_state_exactly(account, group, scene, run_import):
    before = contact_state(account.id)
    tags_before = _tag_names(account)
    job = _import_everything(run_import)
    assert (job.created, job.reactivated, job.restored) == (2, 1, 1)
    changed = contact_state(account.id)
    assert changed != before
    assert changed["ola@example.pl"]["subs"][group.id][0] is True  # reactivated
    # a contact the import created and somebody then put into a second group stays
    neu1 = db.session.scalar(db.select(Contact).where(Contact.email == "neu1@example.de"))
    contacts.subscribe(neu1, scene["other"], source="ui")
    db.session.commit()

    undo = request_undo(job, actor=None)
    db.session.commit()
    run_undo(undo)

    after = contact_state(account.id)
    neu1_after = after.pop("neu1@example.de")
    assert list(neu1_after["subs"]) == [scene["other"].id]  # kept, only out of the group
    assert after == before  # field by field: names, fields, status, tags, subscriptions
    assert _tag_names(account) == sorted([*tags_before, "Importiert"])  # neu1 still has it
    undo = db.session.get(ImportUndo, undo.id)
    assert undo.status == "finished"
    assert (undo.restored, undo.removed, undo.deleted) == (4, 4, 1)
    job = db.session.get(ImportJob, job.id)
    assert job.undone_at is not None
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "import.undone"))
    assert event.object_id == job.id and event.details["deleted"] == 1
    with pytest.raises(UndoRefused):
        request_undo(job, actor=None)


def test_undo_removes_tags_the_import_created(account, group, scene, run_import):
    tags_before = _tag_names(account)
    job = _import_everything(run_import)
    assert "Neu" in _tag_names(account)
    undo = request_undo(job, actor=None)
    db.session.commit()
    run_undo(undo)
    assert _tag_names(account) == tags_before


def test_undo_does_not_switch_back_who_signed_off_after_the_import(
    account, group, scene, run_import
):
    job = _import_everything(run_import)
    jurgen = db.session.scalar(db.select(Contact).where(Contact.email == "jürgen@größ.de"))
    contacts.unsubscribe(
        jurgen, group, reason="unsubscribed", at=clock.now() + timedelta(hours=1), source="ui"
    )
    db.session.commit()
    undo = request_undo(job, actor=None)
    db.session.commit()
    run_undo(undo)
    sub = db.session.scalar(
        db.select(Subscription).where(
            Subscription.contact_id == jurgen.id, Subscription.group_id == group.id
        )
    )
    assert sub.active is False and sub.optout_reason == "unsubscribed"
    assert db.session.get(Contact, jurgen.id).first_name == "Jürgen"  # master data set back


def test_undo_of_a_damaged_backup_changes_nothing(account, group, scene, run_import):
    job = _import_everything(run_import)
    imported = contact_state(account.id)
    backup = live_backup(account.id, job.backup_id)
    storage = get_storage()
    damage(storage, backup.storage_key, at=len(raw_bytes(storage, backup.storage_key)) // 2)
    undo = request_undo(job, actor=None)
    db.session.commit()
    run_undo(undo)
    undo = db.session.get(ImportUndo, undo.id)
    assert undo.status == "failed" and "damaged" in undo.error
    assert contact_state(account.id) == imported
    assert db.session.get(ImportJob, job.id).undone_at is None


def test_undo_needs_the_backup(account, group, scene, run_import):
    job = _import_everything(run_import)
    backup = live_backup(account.id, job.backup_id)
    delete_backup(backup)
    db.session.commit()
    assert "no backup" in undo_blocker(job)
    with pytest.raises(UndoRefused):
        request_undo(job, actor=None)


def test_undo_from_the_import_summary(app, client, account, group, scene, run_import):
    before = contact_state(account.id)
    job = _import_everything(run_import)
    user = accounts.create_user("ed@acme.example", "correct-horse-battery")
    accounts.add_member(account, user, Role.EDITOR)
    viewer = accounts.create_user("vi@acme.example", "correct-horse-battery")
    accounts.add_member(account, viewer, Role.VIEWER)
    db.session.commit()

    login(client, "vi@acme.example")
    page = client.get(f"/a/acme/imports/{job.id}").get_data(as_text=True)
    assert 'id="undo-panel"' in page and 'id="undo-button"' not in page
    assert client.get(f"/a/acme/backups/undo/{job.id}").status_code == 403
    assert client.post(f"/a/acme/backups/undo/{job.id}").status_code == 403
    client.post("/logout")

    login(client, "ed@acme.example")
    page = client.get(f"/a/acme/imports/{job.id}").get_data(as_text=True)
    assert f'href="/a/acme/backups/undo/{job.id}" id="undo-button"' in page
    page = client.get(f"/a/acme/backups/undo/{job.id}").get_data(as_text=True)
    assert 'data-count="set_back">4<' in page and 'data-count="removed">4<' in page
    assert 'data-count="deleted">2<' in page and "neu1@example.de, neu2@example.de" in page
    assert contact_state(account.id) != before  # the confirmation page changed nothing
    response = client.post(f"/a/acme/backups/undo/{job.id}", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "The import has been undone." in page and 'id="import-undone"' in page
    assert 'id="undo-button"' not in page
    db.session.expire_all()
    assert contact_state(account.id) == before
    history = client.get("/a/acme/imports").get_data(as_text=True)
    assert "undone" in history
    undo = db.session.scalar(db.select(ImportUndo))
    assert undo.created_by_id == user.id
    # a second click is refused with a message, not a second undo
    page = client.post(f"/a/acme/backups/undo/{job.id}", follow_redirects=True).get_data(
        as_text=True
    )
    assert "already been undone" in page
    assert db.session.scalar(db.select(db.func.count(ImportUndo.id))) == 1


def test_undo_of_another_accounts_import_is_404(app, client, account, group, scene, run_import):
    job = _import_everything(run_import)
    other = accounts.create_account("Other", "other")
    user = accounts.create_user("o@other.example", "correct-horse-battery")
    accounts.add_member(other, user, Role.OWNER)
    db.session.commit()
    login(client, "o@other.example")
    assert client.post(f"/a/other/backups/undo/{job.id}").status_code == 404
    assert db.session.scalar(db.select(ImportUndo)) is None


def test_contacts_from_other_groups_leave_the_group_and_get_their_data_back(
    account, group, scene, run_import
):
    """The group's backup holds only the group's contacts; what the import changed on a
    contact of another group is set back from the import's before images."""
    before = contact_state(account.id)["kunde@example.de"]
    job = run_import([["email", "first_name", "tags"], ["kunde@example.de", "Karla", "Neu"]])
    assert contact_state(account.id)["kunde@example.de"]["first"] == "Karla"
    undo = request_undo(job, actor=None)
    db.session.commit()
    run_undo(undo)
    assert contact_state(account.id)["kunde@example.de"] == before
    assert "Neu" not in _tag_names(account)


def _dump(account_id):
    """Every row of the account's contacts, subscriptions, tags and tag links, with
    every column but the ids the database gives (which no undo can take back)."""
    tables = {
        "contacts": "SELECT * FROM contacts WHERE account_id = :a ORDER BY email",
        "subscriptions": """SELECT c.email, g.name, s.* FROM subscriptions s
            JOIN contacts c ON c.id = s.contact_id JOIN groups g ON g.id = s.group_id
            WHERE s.account_id = :a ORDER BY c.email, g.name""",
        "tags": "SELECT name, created_at FROM tags WHERE account_id = :a ORDER BY name",
        "links": """SELECT c.email, t.name FROM contact_tags ct
            JOIN contacts c ON c.id = ct.contact_id JOIN tags t ON t.id = ct.tag_id
            WHERE c.account_id = :a ORDER BY c.email, t.name""",
    }
    return {
        name: [
            {k: v for k, v in row._mapping.items() if k != "id"}
            for row in db.session.execute(db.text(sql), {"a": account_id})
        ]
        for name, sql in tables.items()
    }


def test_after_an_undo_the_account_equals_its_state_before_the_import_field_by_field(
    account, group, scene, run_import
):
    """Names, fields, status, updated_at, tags (also those added to contacts of other
    groups), subscriptions with their sources and dates: all as before."""
    before, exported_before = _dump(account.id), _full_export(account)
    job = _import_everything(run_import)
    after_import = _dump(account.id)
    assert after_import != before
    undo = request_undo(job, actor=None)
    db.session.commit()
    run_undo(undo)
    db.session.expire_all()
    after = _dump(account.id)
    for table in before:
        assert after[table] == before[table], table
    # and as a customer sees it: the portal's full export, line by line
    assert _full_export(account) == exported_before


def _full_export(account):
    """The account's lossless export (JSON Lines: every contact with its groups, dates,
    reasons, tags and fields)."""
    from portal.integrations import export

    run = export.start(account, fmt="jsonl", group=None, actor=None)
    db.session.commit()
    export.run(run)
    with export.export_copy(run) as path:
        return sorted(path.read_text(encoding="utf-8").splitlines())
