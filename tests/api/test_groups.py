"""Groups through the API: list with counts, create, get, rename, settings, delete."""

from __future__ import annotations

import pytest

from portal.backups.models import Backup
from portal.contacts.models import Contact, Group, Subscription
from portal.core.audit import AuditEvent
from portal.extensions import db


def test_list_shows_counts(api, acme):
    news = acme.group("Newsletter")
    acme.contact("a@example.com", groups=(news,))
    acme.contact("b@example.com", unsubscribed=(news,))
    acme.contact("c@example.com", groups=(news,), deleted=True)
    acme.group("Archiv")
    body = api.get("/groups").get_json()
    assert [g["name"] for g in body["data"]] == ["Archiv", "Newsletter"]
    assert body["data"][1]["counts"] == {"active": 1, "inactive": 1, "to_be_deleted": 1}


def test_create_get_rename_and_switch_backups(app, api):
    created = api.post("/groups", json={"name": "  Kunden   2026 "})
    assert created.status_code == 201
    group = created.get_json()
    assert group["name"] == "Kunden 2026" and group["automatic_backups"] is True
    assert api.get(f"/groups/{group['id']}").get_json()["name"] == "Kunden 2026"
    renamed = api.patch(f"/groups/{group['id']}", json={"name": "Kundschaft"})
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "Kundschaft"
    switched = api.patch(f"/groups/{group['id']}", json={"automatic_backups": False})
    assert switched.get_json()["automatic_backups"] is False
    with app.app_context():
        actions = db.session.scalars(
            db.select(AuditEvent.action)
            .where(AuditEvent.actor_type == "api_key")
            .order_by(AuditEvent.id)  # a heap has no order: PostgreSQL reuses freed space
        ).all()
    assert actions == ["group.created", "group.renamed", "group.settings_changed"]


def test_duplicate_names_are_409_other_bad_names_422(api, acme):
    acme.group("Newsletter")
    duplicate = api.post("/groups", json={"name": "newsletter"})
    assert duplicate.status_code == 409 and duplicate.get_json()["error"]["code"] == "exists"
    assert api.post("/groups", json={"name": "   "}).status_code == 422
    assert api.post("/groups", json={"name": "x" * 201}).status_code == 422
    assert api.post("/groups", json={}).status_code == 422
    other = acme.group("Shop")
    assert api.patch(f"/groups/{other}", json={"name": "NEWSLETTER"}).status_code == 409
    assert api.patch(f"/groups/{other}", json={}).status_code == 422


def test_delete_keeps_the_contacts_and_makes_no_backup(app, api, acme):
    news = acme.group("Newsletter")  # automatic backups on, account switch on
    cid = acme.contact("a@example.com", groups=(news,))
    response = api.delete(f"/groups/{news}")
    assert response.status_code == 200
    assert response.get_json() == {"deleted": True, "subscriptions_removed": 1}
    with app.app_context():
        assert db.session.get(Group, news) is None
        assert db.session.get(Contact, cid) is not None
        assert db.session.scalar(db.select(db.func.count(Subscription.id))) == 0
        assert db.session.scalar(db.select(db.func.count(Backup.id))) == 0, "API: no backup"
        event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "group.deleted"))
        assert event.details["source"] == "api"
    assert api.get(f"/groups/{news}").status_code == 404


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("PATCH", {"name": "Mine"}), ("DELETE", None)]
)
def test_another_accounts_group_is_404(api, other, method, body):
    theirs = other.group("Theirs")
    response = api.request(method, f"/groups/{theirs}", json=body)
    assert response.status_code == 404
    assert other.get(Group, theirs).name == "Theirs"


def test_fields_list(api, acme):
    acme.field("level", "Stufe", "choice", ["Gold", "Silber"])
    assert api.get("/fields").get_json() == {
        "data": [
            {"key": "level", "label": "Stufe", "type": "choice", "choices": ["Gold", "Silber"]}
        ]
    }


@pytest.mark.parametrize("path", ["/groups/{id}", "/imports/{id}", "/backups/{id}/download"])
@pytest.mark.parametrize("object_id", [999, 2**31, 2**63])
def test_ids_beyond_the_columns_range_are_404_not_500(api, path, object_id):
    response = api.get(path.format(id=object_id))
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
