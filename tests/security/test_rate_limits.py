"""Rate limits on sign-in (per IP and per address), password reset, the public sign-up
form (per IP) and the API (per key, per IP without a key): over the limit the answer is
429 with Retry-After, a translated page (or the API's JSON error), and the guarded
action does not happen any more - not even with the right password."""

from __future__ import annotations

import re

import pytest

from tests.helpers.auth import PASSWORD
from tests.security.conftest import new_client

LOGIN_LIMIT = 5  # tests/conftest.py: LOGIN_RATE_LIMIT = "5 per minute"
WRONG = "not-the-password"


def _login(client, email, password=WRONG, lang=None):
    path = f"/login?lang={lang}" if lang else "/login"
    return client.post(path, data={"email": email, "password": password})


def _assert_limited(response):
    assert response.status_code == 429, response.status_code
    retry = response.headers.get("Retry-After")
    assert retry is not None and retry.isdigit() and 0 < int(retry) <= 3600, retry


@pytest.fixture
def member(make_account, make_user):
    make_user("owner@acme.example", make_account("acme"))
    return "owner@acme.example"


def test_sign_in_is_limited_per_ip_even_for_the_right_password(app, member):
    client = new_client(app)
    codes = [_login(client, member).status_code for _ in range(LOGIN_LIMIT)]
    assert codes == [401] * LOGIN_LIMIT
    response = _login(client, member, PASSWORD, lang="de")
    _assert_limited(response)
    html = response.get_data(as_text=True)
    assert "Zu viele Versuche" in html and '<html lang="de">' in html
    # another address from the same IP: still limited (the IP is what is counted first)
    _assert_limited(_login(client, "someone@else.example"))


def test_sign_in_is_limited_per_address_across_ips(app, member):
    for _ in range(LOGIN_LIMIT):
        assert _login(new_client(app), member).status_code == 401
    _assert_limited(_login(new_client(app), member, PASSWORD))
    # a different person from a fresh IP is not affected
    assert _login(new_client(app), "other@acme.example").status_code == 401


def test_password_reset_requests_are_limited(app, member):
    from portal.mail import outbox_messages

    client = new_client(app)
    for _ in range(LOGIN_LIMIT):
        assert client.post("/password/forgot", data={"email": member}).status_code == 302
    _assert_limited(client.post("/password/forgot", data={"email": member}))
    with app.app_context():
        assert len(outbox_messages()) == LOGIN_LIMIT  # no sixth mail


def _signup_key(html: str) -> str:
    return re.search(r'name="form_key" (?:type="hidden" )?value="([^"]+)"', html)[1]


def test_the_signup_form_is_limited_per_ip(app, data):
    from portal.extensions import db
    from portal.lifecycle.models import SignupRequest

    group_id = data.group("Newsletter")
    with app.app_context():
        from portal.contacts.models import Group

        token = db.session.get(Group, group_id).signup_token
    limit = int(app.config["SIGNUP_RATE_LIMIT"].split()[0])
    visitor = new_client(app)
    key = _signup_key(visitor.get(f"/f/{token}").get_data(as_text=True))
    for i in range(limit):
        response = visitor.post(f"/f/{token}", data={"email": f"p{i}@example.org", "form_key": key})
        assert response.status_code == 200
    response = visitor.post(f"/f/{token}", data={"email": "late@example.org", "form_key": key})
    _assert_limited(response)
    assert visitor.get(f"/f/{token}").status_code == 200  # reading the form is not limited
    with app.app_context():
        emails = set(db.session.scalars(db.select(SignupRequest.email)))
    assert "late@example.org" not in emails and len(emails) == limit
    # another visitor (IP) may still sign up
    other = new_client(app)
    key = _signup_key(other.get(f"/f/{token}").get_data(as_text=True))
    assert (
        other.post(f"/f/{token}", data={"email": "x@example.org", "form_key": key}).status_code
        == 200
    )


@pytest.fixture
def api_limit(app):
    before = app.config["API_RATE_LIMIT"]
    app.config["API_RATE_LIMIT"] = "3 per minute"
    yield 3
    app.config["API_RATE_LIMIT"] = before


def test_the_api_is_limited_per_key(app, make_account, api_limit):
    from portal.accounts.models import Account
    from portal.api import service
    from portal.extensions import db

    with app.app_context():
        account = db.session.get(Account, make_account("acme"))
        _, first = service.create_key(account, name="Shop", scope="write", actor=None, source="ui")
        _, second = service.create_key(account, name="CRM", scope="write", actor=None, source="ui")
        db.session.commit()
    client = new_client(app)

    def call(key, email):
        return client.post(
            "/api/v1/contacts", json={"email": email}, headers={"Authorization": f"Bearer {key}"}
        )

    assert [call(first, f"k{i}@example.org").status_code for i in range(api_limit)] == [201] * 3
    response = call(first, "over@example.org")
    _assert_limited(response)
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert response.headers.get("X-RateLimit-Limit") == "3"
    assert call(second, "second-key@example.org").status_code == 201  # its own budget
    from portal.contacts.models import Contact

    with app.app_context():
        emails = set(db.session.scalars(db.select(Contact.email)))
    assert "over@example.org" not in emails


def test_the_api_without_a_valid_key_is_limited_per_ip(app, api_limit):
    client = new_client(app)
    codes = [
        client.get("/api/v1/me", headers={"Authorization": f"Bearer rpk_guess{i}"}).status_code
        for i in range(api_limit + 1)
    ]
    assert codes == [401] * api_limit + [429]
