"""Contacts through the API: list with filters and cursor, get, find, upsert, update."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portal.contacts.models import Contact
from portal.core.audit import AuditEvent
from portal.extensions import db


def _emails(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [c["email"] for c in response.get_json()["data"]]


def test_pages_follow_the_cursor_newest_first_without_gaps(api, acme):
    for i in range(120):
        acme.contact(f"user{i:03d}@example.com")
    seen, cursor, pages = [], None, 0
    while True:
        url = "/contacts?limit=50" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(url).get_json()
        seen += [c["email"] for c in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"user{i:03d}@example.com" for i in reversed(range(120))]


def test_a_contact_shows_fields_tags_and_subscriptions(api, acme):
    group = acme.group("Newsletter")
    acme.field("city", "City")
    signup = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    cid = acme.contact(
        "anna@example.com",
        "Anna",
        "Größ",
        groups=(group,),
        tags=("VIP",),
        fields={"city": "Köln"},
        signup_at=signup,
    )
    body = api.get(f"/contacts/{cid}").get_json()
    assert body["email"] == "anna@example.com" and body["last_name"] == "Größ"
    assert body["fields"] == {"city": "Köln"}
    assert [t["name"] for t in body["tags"]] == ["VIP"]
    assert body["state"] == "active" and body["status"] == "active"
    (sub,) = body["subscriptions"]
    assert sub["group_id"] == group and sub["group_name"] == "Newsletter"
    assert sub["active"] is True and sub["activated_at"] == "2026-03-01T09:30:00Z"
    listed = api.get("/contacts").get_json()["data"][0]
    assert listed == body


def test_filters_are_those_of_the_portal(api, acme):
    news, shop = acme.group("Newsletter"), acme.group("Shop")
    acme.contact("anna@example.com", "Anna", "Berg", groups=(news,), tags=("VIP",))
    acme.contact("bert@example.com", "Bert", "Zander", unsubscribed=(news,))
    acme.contact(
        "carl@example.com",
        "Carl",
        "Adler",
        groups=(shop,),
        signup_at=datetime(2026, 1, 10, 12, tzinfo=UTC),
    )
    acme.contact("dora@example.com", deleted=True)
    vip = acme.tag_id("VIP")
    assert _emails(api.get(f"/contacts?group={news}")) == ["bert@example.com", "anna@example.com"]
    assert _emails(api.get("/contacts?status=unsubscribed")) == ["bert@example.com"]
    assert _emails(api.get("/contacts?status=deleted")) == ["dora@example.com"]
    assert "dora@example.com" not in _emails(api.get("/contacts?status=active"))
    assert _emails(api.get(f"/contacts?tag={vip}")) == ["anna@example.com"]
    assert _emails(api.get("/contacts?q=zan")) == ["bert@example.com"]
    assert _emails(api.get("/contacts?q=carl@")) == ["carl@example.com"]
    window = "/contacts?signup_from=2026-01-10&signup_to=2026-01-10"
    assert _emails(api.get(window)) == ["carl@example.com"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("status=gone", "status"),
        ("signup_from=2026-13-01", "signup_from"),
        ("cursor=abc", "cursor"),
        ("group=x", "group"),
        ("signup_from=2026-02-01&signup_to=2026-01-01", "signup_from"),
    ],
)
def test_wrong_parameters_are_a_400_naming_the_parameter(api, acme, query, field):
    response = api.get(f"/contacts?{query}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_request" and field in error["fields"]


def test_filters_by_another_accounts_group_or_tag_are_404(api, other):
    group = other.group("Theirs")
    tag = other.tag_id("Theirs")
    assert api.get(f"/contacts?group={group}").status_code == 404
    assert api.get(f"/contacts?tag={tag}").status_code == 404


def test_another_accounts_contact_is_404_everywhere(api, other):
    cid = other.contact("secret@other.example", "Sec", "Ret")
    for response in (
        api.get(f"/contacts/{cid}"),
        api.get("/contacts?q=secret"),
        api.get("/contacts/by-email?email=secret@other.example"),
        api.patch(f"/contacts/{cid}", json={"first_name": "X"}),
        api.post(f"/contacts/{cid}/tags", json={"name": "X"}),
    ):
        assert response.status_code in (200, 404)
        if response.status_code == 200:
            assert response.get_json()["data"] == []
        else:
            assert response.get_json()["error"]["code"] == "not_found"
    assert other.get(Contact, cid).first_name == "Sec"


@pytest.mark.parametrize("contact_id", [999999, 2**63 - 1, 2**64])
def test_missing_ids_are_404(api, contact_id):
    response = api.get(f"/contacts/{contact_id}")
    assert response.status_code == 404
    assert response.get_json()["error"]["message"] == "There is no contact with this id."


def test_find_by_email(api, acme):
    cid = acme.contact("anna@example.com")
    assert api.get("/contacts/by-email?email=ANNA@Example.com").get_json()["id"] == cid
    assert api.get("/contacts/by-email?email=nobody@example.com").status_code == 404
    assert api.get("/contacts/by-email?email=not-an-address").status_code == 404
    missing = api.get("/contacts/by-email")
    assert missing.status_code == 400 and "email" in missing.get_json()["error"]["fields"]


def test_upsert_creates_then_updates_then_changes_nothing(app, api, acme):
    group = acme.group("Newsletter")
    acme.field("points", "Points", "number")
    body = {
        "email": "Anna@Example.com",
        "first_name": "Anna",
        "fields": {"points": "12"},
        "tags": ["VIP", "Kunde"],
        "group_ids": [group],
    }
    created = api.post("/contacts", json=body)
    assert created.status_code == 201
    data = created.get_json()
    assert data["result"] == "created"
    contact = data["contact"]
    assert contact["email"] == "anna@example.com" and contact["fields"] == {"points": 12}
    assert sorted(t["name"] for t in contact["tags"]) == ["Kunde", "VIP"]
    assert [s["group_id"] for s in contact["subscriptions"]] == [group]
    updated = api.post("/contacts", json={"email": "anna@example.com", "last_name": "Berg"})
    assert updated.status_code == 200 and updated.get_json()["result"] == "updated"
    assert updated.get_json()["contact"]["first_name"] == "Anna", "values not sent stay"
    again = api.post("/contacts", json={"email": "anna@example.com", "last_name": "Berg"})
    assert again.get_json()["result"] == "unchanged"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Contact.id))) == 1
        event = db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "contact.updated")
        )
        assert event.actor_type == "api_key" and "Shop" in event.actor_label
        assert event.details["source"] == "api"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not an address"}, "email"),
        ({"email": "a@example.com", "fields": {"nope": "1"}}, "fields.nope"),
        ({"email": "a@example.com", "fields": {"points": "many"}}, "fields.points"),
        ({"email": "a@example.com", "tags": ["a,b"]}, "tags[0]"),
        ({"email": "a@example.com", "first_name": 5}, "first_name"),
        ({"email": "a@example.com", "colour": "red"}, "colour"),
        ({"first_name": "Anna"}, "email"),
    ],
)
def test_upsert_refuses_bad_values_and_keeps_nothing(app, api, acme, body, field):
    acme.field("points", "Points", "number")
    response = api.post("/contacts", json=body)
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "invalid" and field in error["fields"], error
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Contact.id))) == 0


def test_upsert_into_another_accounts_group_is_404_and_rolls_back(app, api, other):
    theirs = other.group("Theirs")
    response = api.post("/contacts", json={"email": "a@example.com", "group_ids": [theirs]})
    assert response.status_code == 404
    assert response.get_json()["error"]["message"] == "There is no group with this id."
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Contact.id))) == 0, "rolled back"


def test_malformed_bodies(api):
    raw = api.post("/contacts", data="{not json", content_type="application/json")
    assert raw.status_code == 400 and raw.get_json()["error"]["code"] == "bad_request"
    form = api.post("/contacts", data={"email": "a@example.com"})
    assert form.status_code == 415
    listed = api.post("/contacts", json=["a@example.com"])
    assert listed.status_code == 422


def test_update_changes_only_what_is_sent(api, acme):
    acme.field("city", "City")
    cid = acme.contact("anna@example.com", "Anna", "Berg", fields={"city": "Köln"})
    response = api.patch(f"/contacts/{cid}", json={"last_name": "Zander", "fields": {"city": None}})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["first_name"], body["last_name"], body["fields"]) == ("Anna", "Zander", {})
    renamed = api.patch(f"/contacts/{cid}", json={"email": "anna.zander@example.com"})
    assert renamed.get_json()["email"] == "anna.zander@example.com"


def test_update_refuses_an_address_of_another_contact(api, acme):
    acme.contact("bert@example.com")
    cid = acme.contact("anna@example.com")
    response = api.patch(f"/contacts/{cid}", json={"email": "bert@example.com"})
    assert response.status_code == 422
    assert "email" in response.get_json()["error"]["fields"]
    assert acme.get(Contact, cid).email == "anna@example.com"


def test_a_contact_pending_deletion_cannot_be_edited(api, acme):
    cid = acme.contact("anna@example.com", deleted=True)
    response = api.patch(f"/contacts/{cid}", json={"first_name": "X"})
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "deleted"
