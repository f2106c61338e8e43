"""Keys, scopes, cookies, CSRF, languages and rate limits of the API."""

from __future__ import annotations

import re

import pytest

from portal import clock
from portal.api import endpoints  # noqa: F401 - declares the operations
from portal.api.core import OPERATIONS
from portal.api.models import ApiKey
from portal.extensions import db
from tests.api.conftest import PREFIX, Api
from tests.helpers.auth import login


def _error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) >= {"code", "message"} and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def test_a_valid_key_reaches_its_account(api):
    response = api.get("/me")
    assert response.status_code == 200
    body = response.get_json()
    assert body["account"]["slug"] == "acme"
    assert body["key"]["scope"] == "write" and body["key"]["prefix"].startswith("rpk_")


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token rpk_abc"],
)
def test_without_a_bearer_key_the_answer_is_401(client, acme, header):
    headers = {"Authorization": header} if header is not None else {}
    response = client.get(f"{PREFIX}/contacts", headers=headers)
    error = _error(response, 401, "unauthorized")
    assert "Authorization: Bearer" in error["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("key", ["rpk_not-a-real-key", "something-else", "rpk_" + "x" * 300])
def test_an_unknown_key_is_401(client, acme, key):
    error = _error(Api(client, key).get("/contacts"), 401, "unauthorized")
    assert "not valid" in error["message"]


def test_a_revoked_key_stops_working_at_once(app, client, acme):
    plain = acme.key("write")
    assert Api(client, plain).get("/me").status_code == 200
    with app.app_context():
        key = db.session.scalar(db.select(ApiKey))
        key.revoked_at = clock.now()
        db.session.commit()
    _error(Api(client, plain).get("/me"), 401, "unauthorized")


def test_the_key_is_stored_only_as_a_hash(app, acme):
    plain = acme.key("read")
    with app.app_context():
        key = db.session.scalar(db.select(ApiKey))
        assert plain not in (key.key_hash, key.prefix)
        assert len(key.key_hash) == 64 and plain.startswith(key.prefix)
        assert len(plain) > 40


def test_last_use_is_recorded(app, api):
    with app.app_context():
        assert db.session.scalar(db.select(ApiKey.last_used_at)) is None
    api.get("/me")
    with app.app_context():
        assert db.session.scalar(db.select(ApiKey.last_used_at)) is not None


def test_a_signed_in_browser_session_never_authenticates(app, client, acme, make_user):
    make_user("owner@acme.example", acme.account_id)
    assert login(client, "owner@acme.example").status_code == 302
    assert client.get("/a/acme/contacts").status_code == 200  # the session works in the portal
    response = client.get(f"{PREFIX}/me")
    _error(response, 401, "unauthorized")
    assert "Set-Cookie" not in response.headers
    # an API call with a key changes nothing in the browser's session either
    response = client.get(f"{PREFIX}/me", headers={"Authorization": f"Bearer {acme.key()}"})
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    assert client.get("/a/acme/contacts").status_code == 200


def test_no_cookie_is_ever_set_or_read_by_the_api(client, api):
    client.set_cookie("session", "forged-or-real", domain="localhost")
    response = api.get("/me")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_unknown_parameters_are_refused(api):
    response = api.get("/contacts?staus=active")
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {"staus": "There is no parameter “staus”."}


def test_writes_need_no_csrf_token(app, api):
    app.config["WTF_CSRF_ENABLED"] = True  # restored by the autouse fixture
    response = api.post("/groups", json={"name": "Newsletter"})
    assert response.status_code == 201


WRITES = sorted((op.method, op.rule) for op in OPERATIONS.values() if op.writes and not op.public)


@pytest.mark.parametrize(("method", "rule"), WRITES)
def test_a_read_key_cannot_write(reader, method, rule):
    path = re.sub(r"<int:\w+>", "1", rule)
    response = reader.request(method, path, json={})
    error = _error(response, 403, "read_only_key")
    assert "only read" in error["message"]


def test_a_read_key_reads(reader, acme):
    acme.contact("anna@example.com")
    assert reader.get("/contacts").status_code == 200
    assert reader.get("/groups").status_code == 200


def test_messages_follow_accept_language(client, api):
    german = Api(client, api.key, language="de-DE,de;q=0.9,en;q=0.5").get("/nowhere")
    assert _error(german, 404, "not_found")["message"] == "Unter dieser Adresse gibt es nichts."
    polish = Api(client, api.key, language="pl").get("/nowhere")
    assert _error(polish, 404)["message"] == "Pod tym adresem nic nie ma."
    english = Api(client, api.key).get("/nowhere")
    assert _error(english, 404)["message"] == "There is nothing at this address."


def test_a_browser_language_choice_does_not_override_accept_language(client, api):
    client.get("/login?lang=pl")  # remembered in the browser session
    response = Api(client, api.key, language="de").get("/nowhere")
    assert _error(response, 404)["message"] == "Unter dieser Adresse gibt es nichts."


def test_a_wrong_method_is_a_json_405(api):
    response = api.delete("/contacts")
    _error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]


def test_rate_limit_per_key_with_retry_after(app, client, acme):
    first, second = Api(client, acme.key("read")), Api(client, acme.key("read", name="B"))
    app.config["API_RATE_LIMIT"] = "3 per minute"
    try:
        assert [first.get("/me").status_code for _ in range(3)] == [200, 200, 200]
        limited = first.get("/me")
        _error(limited, 429, "rate_limited")
        assert 0 < int(limited.headers["Retry-After"]) <= 60
        assert second.get("/me").status_code == 200, "another key has its own budget"
    finally:
        app.config["API_RATE_LIMIT"] = "300 per minute"


def test_requests_without_a_valid_key_are_limited_per_address(app, client, acme):
    app.config["API_RATE_LIMIT"] = "2 per minute"
    try:
        statuses = [Api(client, f"rpk_guess{i}").get("/me").status_code for i in range(3)]
    finally:
        app.config["API_RATE_LIMIT"] = "300 per minute"
    assert statuses == [401, 401, 429]
