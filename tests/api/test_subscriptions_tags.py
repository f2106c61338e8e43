"""Subscriptions (sign-up and sign-off with dates and reasons) and tags through the API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portal.contacts.models import Subscription, Tag
from portal.extensions import db


def _sub(app, contact_id, group_id) -> Subscription:
    with app.app_context():
        sub = db.session.scalar(
            db.select(Subscription).where(
                Subscription.contact_id == contact_id, Subscription.group_id == group_id
            )
        )
        db.session.expunge(sub)
        return sub


def test_subscribe_with_a_date_then_sign_off_with_a_reason(app, api, acme):
    group, cid = acme.group("Newsletter"), acme.contact("a@example.com")
    path = f"/contacts/{cid}/subscriptions/{group}"
    created = api.put(path, json={"activated_at": "2026-02-01T08:00:00+01:00"})
    assert created.status_code == 201
    assert created.get_json()["activated_at"] == "2026-02-01T07:00:00Z"
    again = api.put(path)
    assert again.status_code == 200, "an active subscription stays as it is"
    assert again.get_json()["activated_at"] == "2026-02-01T07:00:00Z"
    off = api.post(
        path + "/unsubscribe", json={"reason": "bounced", "deactivated_at": "2026-03-01T00:00:00Z"}
    )
    assert off.status_code == 200
    body = off.get_json()
    assert body["active"] is False and body["optout_reason"] == "bounced"
    assert body["deactivated_at"] == "2026-03-01T00:00:00Z"
    sub = _sub(app, cid, group)
    assert sub.activated_at == datetime(2026, 2, 1, 7, tzinfo=UTC), "sign-up data kept"
    assert sub.source == "api"
    assert api.get(f"/contacts/{cid}").get_json()["state"] == "unsubscribed"
    back = api.put(path, json={})
    assert back.status_code == 200 and back.get_json()["active"] is True


def test_sign_off_defaults_to_now_and_manual(app, api, acme):
    group = acme.group("Newsletter")
    cid = acme.contact("a@example.com", groups=(group,))
    body = api.post(f"/contacts/{cid}/subscriptions/{group}/unsubscribe").get_json()
    assert body["optout_reason"] == "manual" and body["deactivated_at"]


def test_sign_off_refusals(api, acme, other):
    group = acme.group("Newsletter")
    cid = acme.contact("a@example.com", groups=(group,), signup_at=datetime(2026, 5, 1, tzinfo=UTC))
    stranger = acme.contact("b@example.com")
    path = f"/contacts/{cid}/subscriptions/{group}/unsubscribe"
    early = api.post(path, json={"deactivated_at": "2026-04-01T00:00:00Z"})
    assert early.status_code == 422 and "deactivated_at" in early.get_json()["error"]["fields"]
    assert api.post(path, json={"reason": "bored"}).status_code == 422
    assert api.post(path, json={"deactivated_at": "yesterday"}).status_code == 422
    missing = api.post(f"/contacts/{stranger}/subscriptions/{group}/unsubscribe")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["message"] == "The contact is not in this group."
    theirs = other.group("Theirs")
    assert api.put(f"/contacts/{cid}/subscriptions/{theirs}").status_code == 404
    deleted = acme.contact("c@example.com", deleted=True)
    assert api.put(f"/contacts/{deleted}/subscriptions/{group}").status_code == 409


def test_tags_add_list_remove(app, api, acme):
    cid = acme.contact("a@example.com")
    added = api.post(f"/contacts/{cid}/tags", json={"name": "  Händler "})
    assert added.status_code == 201
    tag = added.get_json()
    assert tag["name"] == "Händler"
    assert api.post(f"/contacts/{cid}/tags", json={"name": "Händler"}).status_code == 200
    assert api.get("/tags").get_json() == {"data": [tag]}
    assert api.delete(f"/contacts/{cid}/tags/{tag['id']}").status_code == 204
    assert api.get(f"/contacts/{cid}").get_json()["tags"] == []
    gone = api.delete(f"/contacts/{cid}/tags/{tag['id']}")
    assert gone.status_code == 404
    with app.app_context():
        assert db.session.get(Tag, tag["id"]) is not None, "the account keeps its tag"


@pytest.mark.parametrize("name", ["a,b", "x;y", "p|q", "", "t" * 101])
def test_bad_tags_are_422(api, acme, name):
    cid = acme.contact("a@example.com")
    response = api.post(f"/contacts/{cid}/tags", json={"name": name})
    assert response.status_code == 422
    assert "name" in response.get_json()["error"]["fields"]


def test_another_accounts_tag_cannot_be_removed(api, acme, other):
    cid = acme.contact("a@example.com")
    theirs = other.tag_id("Theirs")
    assert api.delete(f"/contacts/{cid}/tags/{theirs}").status_code == 404
