"""Delete (soft), restore and forget through the API; the upsert restores a contact
that is to be deleted and refuses a forgotten address."""

from __future__ import annotations

from portal.backups.models import Backup
from portal.contacts.models import Activity, Contact, ContactStatus
from portal.core.audit import AuditEvent
from portal.extensions import db
from portal.imports.models import ImportJob


def _events(app, action):
    with app.app_context():
        return db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)).all()


def test_delete_marks_the_contact_and_makes_no_backup(app, api, acme):
    group = acme.group("Newsletter")
    cid = acme.contact("anna@example.com", groups=(group,), tags=("VIP",))
    response = api.delete(f"/contacts/{cid}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "deleted" and body["state"] == "deleted" and body["deleted_at"]
    assert body["subscriptions"] and body["tags"], "kept for a restore"
    again = api.delete(f"/contacts/{cid}")
    assert again.status_code == 200 and again.get_json()["deleted_at"] == body["deleted_at"]
    (event,) = _events(app, "contacts.deleted")
    assert event.actor_type == "api_key" and event.details["source"] == "api"
    counts = api.get(f"/groups/{group}").get_json()["counts"]
    assert counts == {"active": 0, "inactive": 0, "to_be_deleted": 1}
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Backup.id))) == 0


def test_restore_brings_it_back_with_groups_and_tags(app, api, acme):
    group = acme.group("Newsletter")
    cid = acme.contact("anna@example.com", groups=(group,), tags=("VIP",), deleted=True)
    response = api.post(f"/contacts/{cid}/restore")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "active" and body["deleted_at"] is None
    assert [s["group_id"] for s in body["subscriptions"]] == [group]
    assert [t["name"] for t in body["tags"]] == ["VIP"]
    assert api.post(f"/contacts/{cid}/restore").status_code == 200, "restoring again is fine"
    assert len(_events(app, "contacts.restored")) == 1


def test_forget_erases_at_once_and_the_address_is_refused_after(app, api, acme):
    group = acme.group("Newsletter")
    cid = acme.contact("anna@example.com", "Anna", groups=(group,), tags=("VIP",))
    with app.app_context():
        db.session.add(Activity(account_id=acme.account_id, contact_id=cid, kind="open"))
        db.session.commit()
    response = api.post(f"/contacts/{cid}/forget")
    assert response.status_code == 200
    body = response.get_json()
    assert body["forgotten"] is True and body["contact_id"] == cid
    assert body["counts"]["contacts"] == 1 and body["counts"]["activities"] == 1
    assert body["counts"]["subscriptions"] == 1 and body["counts"]["tag_links"] == 1
    assert api.get(f"/contacts/{cid}").status_code == 404
    (event,) = _events(app, "contacts.forgotten")
    assert "anna" not in str(event.details).lower() and event.actor_type == "api_key"

    refused = api.post("/contacts", json={"email": "Anna@Example.com", "first_name": "Anna"})
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "forgotten" and "forget me" in error["message"]
    other = acme.contact("bert@example.com")
    renamed = api.patch(f"/contacts/{other}", json={"email": "anna@example.com"})
    assert renamed.status_code == 409 and renamed.get_json()["error"]["code"] == "forgotten"
    imported = api.post(
        "/imports", json={"group_id": group, "rows": [{"email": "anna@example.com"}]}
    ).get_json()
    assert imported["counters"]["created"] == 0 and imported["skipped_reasons"] == {"forgotten": 1}
    assert acme.contact_by_email("anna@example.com") is None


def test_upsert_restores_a_contact_pending_deletion_then_updates_it(app, api, acme):
    group = acme.group("Newsletter")
    cid = acme.contact("anna@example.com", "Anna", groups=(group,), deleted=True)
    response = api.post("/contacts", json={"email": "anna@example.com", "last_name": "Berg"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["result"] == "restored"
    assert body["contact"]["id"] == cid and body["contact"]["status"] == "active"
    assert (body["contact"]["first_name"], body["contact"]["last_name"]) == ("Anna", "Berg")
    assert acme.get(Contact, cid).status == ContactStatus.ACTIVE.value
    (event,) = _events(app, "contacts.restored")
    assert event.details["source"] == "api"


def test_another_accounts_contact_cannot_be_deleted_restored_or_forgotten(app, api, other):
    cid = other.contact("theirs@other.example", deleted=False)
    for response in (
        api.delete(f"/contacts/{cid}"),
        api.post(f"/contacts/{cid}/restore"),
        api.post(f"/contacts/{cid}/forget"),
    ):
        assert response.status_code == 404
    assert other.get(Contact, cid).status == "active"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(ImportJob.id))) == 0


def test_a_read_key_cannot_delete_or_forget(reader, acme):
    cid = acme.contact("anna@example.com")
    assert reader.delete(f"/contacts/{cid}").status_code == 403
    assert reader.post(f"/contacts/{cid}/forget").status_code == 403
    assert acme.get(Contact, cid).status == "active"
