"""The operator command create-api-key and the keys page of the portal."""

from __future__ import annotations

import re

from portal.accounts.models import Role
from portal.api.models import ApiKey
from portal.core.audit import AuditEvent
from portal.extensions import db
from tests.api.conftest import PREFIX, Api
from tests.helpers.auth import login


def _keys(app):
    with app.app_context():
        return db.session.scalars(db.select(ApiKey).order_by(ApiKey.id)).all()


def test_cli_creates_a_key_and_prints_it_once(app, client, acme):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["portal", "create-api-key", "--account", "acme", "--scope", "read", "--name", "ERP"]
    )
    assert result.exit_code == 0, result.output
    plain = result.output.strip().splitlines()[-1]
    assert plain.startswith("rpk_")
    (key,) = _keys(app)
    assert (key.name, key.scope) == ("ERP", "read") and plain not in key.key_hash
    api = Api(client, plain)
    assert api.get("/me").get_json()["key"]["name"] == "ERP"
    assert api.post("/groups", json={"name": "X"}).status_code == 403


def test_cli_refusals(app, acme):
    runner = app.test_cli_runner()
    unknown = runner.invoke(
        args=["portal", "create-api-key", "--account", "nope", "--scope", "read"]
    )
    assert unknown.exit_code != 0 and "No account" in unknown.output
    bad = runner.invoke(args=["portal", "create-api-key", "--account", "acme", "--scope", "all"])
    assert bad.exit_code != 0
    assert _keys(app) == []


def _new_key(html: str) -> str | None:
    match = re.search(r'id="new-key-value" type="text" readonly value="([^"]+)"', html)
    return match.group(1) if match else None


def test_owner_creates_sees_once_uses_and_revokes_a_key(app, client, acme, make_user):
    make_user("owner@acme.example", acme.account_id, Role.OWNER)
    login(client, "owner@acme.example")
    settings = client.get("/a/acme/settings").get_data(as_text=True)
    assert 'href="/a/acme/settings/api"' in settings
    page = client.get("/a/acme/settings/api")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'href="{PREFIX}/openapi.json"' in html and "no API keys yet" in html
    assert "“Authorization: Bearer &lt;key&gt;”" in html
    created = client.post("/a/acme/settings/api", data={"name": "Shop", "scope": "write"})
    assert created.status_code == 302  # a reload of the page that shows it makes no new key
    shown = client.get(created.location)
    assert shown.headers["Cache-Control"] == "no-store"
    plain = _new_key(shown.get_data(as_text=True))
    assert plain and plain.startswith("rpk_")
    assert 'id="copy-key"' in shown.get_data(as_text=True)
    again = client.get("/a/acme/settings/api").get_data(as_text=True)
    assert plain not in again and _new_key(again) is None, "shown once"
    (key,) = _keys(app)
    assert key.prefix in again and key.created_by_id is not None
    api = Api(client, plain)
    assert api.post("/groups", json={"name": "Newsletter"}).status_code == 201
    assert "never" not in client.get("/a/acme/settings/api").get_data(as_text=True)
    revoked = client.post(f"/a/acme/settings/api/{key.id}/revoke")
    assert revoked.status_code == 302
    assert api.get("/me").status_code == 401
    page = client.get("/a/acme/settings/api").get_data(as_text=True)
    assert "revoked" in page
    with app.app_context():
        actions = db.session.scalars(
            db.select(AuditEvent.action)
            .where(AuditEvent.object_type == "api_key")
            .order_by(AuditEvent.id)  # a heap has no order: PostgreSQL reuses freed space
        ).all()
    assert actions == ["api_key.created", "api_key.revoked"]


def test_a_key_needs_a_name(app, client, acme, make_user):
    make_user("owner@acme.example", acme.account_id, Role.OWNER)
    login(client, "owner@acme.example")
    response = client.post("/a/acme/settings/api", data={"name": "  ", "scope": "read"})
    assert response.status_code == 200 and _new_key(response.get_data(as_text=True)) is None
    assert _keys(app) == []


def test_editors_and_viewers_see_the_keys_but_cannot_create_or_revoke(app, client, acme, make_user):
    acme.key("read", name="Reports")
    (key,) = _keys(app)
    make_user("editor@acme.example", acme.account_id, Role.EDITOR)
    login(client, "editor@acme.example")
    html = client.get("/a/acme/settings/api").get_data(as_text=True)
    assert "Reports" in html and "Only owners and admins" in html and "create-key" not in html
    assert (
        client.post("/a/acme/settings/api", data={"name": "X", "scope": "write"}).status_code == 403
    )
    assert client.post(f"/a/acme/settings/api/{key.id}/revoke").status_code == 403
    assert len(_keys(app)) == 1 and _keys(app)[0].revoked_at is None


def test_another_accounts_keys_are_invisible_and_404(app, client, acme, other, make_user):
    other.key("write", name="Their shop")
    (theirs,) = _keys(app)
    make_user("owner@acme.example", acme.account_id, Role.OWNER)
    login(client, "owner@acme.example")
    assert "Their shop" not in client.get("/a/acme/settings/api").get_data(as_text=True)
    assert client.post(f"/a/acme/settings/api/{theirs.id}/revoke").status_code == 404
    assert client.post(f"/a/acme/settings/api/{2**31}/revoke").status_code == 404
    assert client.get("/a/other/settings/api").status_code == 404
    assert _keys(app)[0].revoked_at is None
