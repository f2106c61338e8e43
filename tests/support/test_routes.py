"""Only support staff ever see the console: every /support/ route (taken from the url
map, so that routes added later are covered too) is a 404 for everyone else — anonymous
visitors, a customer's owner, a member of the account — for every method, before any
redirect or CSRF check could tell them the console exists. And staff stay outside the
customer's own pages: they are not members."""

from __future__ import annotations

import pytest
from flask import url_for
from werkzeug.routing import IntegerConverter

from portal.accounts.models import Account, Role
from portal.contacts.models import Contact
from portal.extensions import db
from tests.helpers.auth import login
from tests.support.conftest import open_account

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


def support_routes(app) -> list[tuple[str, str, dict]]:
    """(endpoint, method, sample arguments) of every rule under /support/."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/support"):
            continue
        values = {}
        for name in rule.arguments:
            converter = rule._converters[name]
            values[name] = 1 if isinstance(converter, IntegerConverter) else "acme"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, values))
    return found


def _urls(app):
    with app.test_request_context():
        return [(method, url_for(ep, **values)) for ep, method, values in support_routes(app)]


def test_the_route_list_is_complete(app):
    endpoints = {ep for ep, _m, _v in support_routes(app)}
    # the console's pages and actions, all found in the url map
    for expected in (
        "support.index",
        "support.lookup",
        "support.open_account",
        "support.close_account",
        "support.account",
        "support.deleted",
        "support.restore_deleted",
        "support.backups",
        "support.restore_backup",
        "support.imports",
        "support.undo_import",
        "support.audit",
    ):
        assert expected in endpoints
    assert len(support_routes(app)) >= 13


def _assert_all_404(app, client):
    for method, url in _urls(app):
        response = client.open(url, method=method, data={"reason": "x", "ids": "1"})
        assert response.status_code == 404, (method, url, response.status_code)
        assert "Location" not in response.headers
    # unknown addresses below /support/, a missing slash and any other method look the same
    for path in ("/support/nothing-here", "/support", "/support/accounts/acme"):
        response = client.get(path)
        assert response.status_code == 404 and "Location" not in response.headers, path
    for method in METHODS:
        assert client.open("/support/", method=method).status_code == 404
        assert client.open("/support/lookup", method=method).status_code == 404


def test_anonymous_visitors_get_404_everywhere_and_no_login_redirect(app, acme):
    _assert_all_404(app, app.test_client())


def test_the_owner_of_an_account_gets_404_everywhere(app, acme, owner_client):
    _assert_all_404(app, owner_client)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.VIEWER])
def test_members_of_the_account_get_404_everywhere(app, acme, make_user, role):
    make_user(f"{role.value}@acme.example", acme, role)
    client = app.test_client()
    login(client, f"{role.value}@acme.example")
    _assert_all_404(app, client)


def test_with_csrf_on_anonymous_posts_are_404_not_400(app, acme):
    """The CSRF check comes after the staff check, so it cannot reveal the routes."""
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    for method, url in _urls(app):
        assert client.open(url, method=method).status_code == 404, (method, url)


def test_with_csrf_on_staff_posts_need_the_token(app, acme, staff_client):
    open_account(staff_client, "acme")
    app.config["WTF_CSRF_ENABLED"] = True
    response = staff_client.post("/support/accounts/acme/close")
    assert response.status_code == 400
    assert "The form has expired" in response.get_data(as_text=True)
    page = staff_client.get("/support/accounts/acme/").get_data(as_text=True)
    assert 'id="staff-banner"' in page  # the access is still open


def test_staff_see_the_console_and_the_nav_link(app, acme, staff_client):
    page = staff_client.get("/support/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Support console" in html
    assert 'href="/support/"' in html  # the "Support" link in the navigation


def test_a_user_whose_staff_flag_was_removed_is_out(app, acme, staff_client):
    from portal.accounts.models import User

    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.is_staff.is_(True)))
        user.is_staff = False
        db.session.commit()
    assert staff_client.get("/support/").status_code == 404


# --- staff stay outside the customer's pages ---------------------------------------------


def test_staff_with_an_open_access_are_still_no_members(app, acme, staff_client, make_data):
    """An open access is for the console only: the customer's pages, including forget me
    and the privacy settings, stay a 404 for staff, and nothing changes."""
    data = make_data(acme)
    contact_id = data.contact("kasia@example.pl", "Kasia", "Wąs")
    open_account(staff_client, "acme")
    for path in ("/a/acme/", "/a/acme/settings", f"/a/acme/contacts/{contact_id}"):
        assert staff_client.get(path).status_code == 404
    forget = staff_client.post(f"/a/acme/contacts/{contact_id}/forget", data={"confirm": "y"})
    assert forget.status_code == 404
    settings = staff_client.post(
        "/a/acme/settings",
        data={
            "name": "Taken over",
            "timezone": "UTC",
            "default_locale": "en",
            "automatic_backups": "",
        },
    )
    assert settings.status_code == 404
    with app.app_context():
        account = db.session.get(Account, acme)
        assert account.automatic_backups is True and account.name == "Acme GmbH"
        assert db.session.get(Contact, contact_id) is not None
        assert [m.user.email for m in account.memberships] == ["owner@acme.example"]


def test_the_console_offers_no_forget_and_no_privacy_change(app):
    """No console route erases contacts or changes settings: the words of those
    actions appear in no support endpoint, and the overview only describes them."""
    for endpoint, _method, _values in support_routes(app):
        name = endpoint.lower()
        assert "forget" not in name and "setting" not in name and "privacy" not in name
