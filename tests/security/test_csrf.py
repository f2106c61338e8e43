"""CSRF on every state-changing route of the portal, generated from the url map, with
Flask-WTF's protection switched on as in production: a POST without the session's token
(or with another session's token) is refused with 400 and changes nothing. The two
documented exceptions prove their own protections instead: the JSON API ignores cookies
and needs a Bearer key; the public sign-up form needs its signed form key and refuses a
POST from a foreign Origin (docs/decisions/api-keys-and-requests.md, lifecycle.md)."""

from __future__ import annotations

import re

import pytest

from portal.accounts.models import Role
from tests.helpers.auth import csrf_token_from
from tests.security import routes as R
from tests.security.conftest import changed_tables, fingerprint, new_client

# Routes that are exempt from the session token, with the protection they have instead
# (tested below).
EXEMPT = {
    "signup.form": "its own signed form key and an Origin/Referer check",
}
PORTAL_WRITES = [
    r
    for r in R.all_routes()
    if r.writes
    and r.kind in ("tenant", "support", "signed_in", "public")
    and r.endpoint not in EXEMPT
]
CSRF_PAGE = "the form has expired"


@pytest.fixture
def csrf_on(app):
    app.config["WTF_CSRF_ENABLED"] = True
    yield
    app.config["WTF_CSRF_ENABLED"] = False


def _caller(world, route: R.Route):
    """Who may send this POST at all: members for tenant pages, staff (with an access
    to bravo) for the console, anyone for public pages."""
    if route.kind == "support":
        return world.staff, world.b
    if route.kind == "public" and route.endpoint != "accounts.logout":
        return world.anonymous, world.a
    return world.a.clients[Role.OWNER], world.a


def _values(route: R.Route, tenant) -> dict:
    values = {p: tenant.slug for p in route.params if p in R.ACCOUNT_PARAMS}
    for p in route.params:
        if p in R.OBJECT_PARAMS:
            values[p] = tenant.ids[R.OBJECT_PARAMS[p]]
        elif p not in values:  # a token of a public link: the check comes before it is read
            values[p] = "x" * 20
    return values


def _refused(world, response):
    problems = []
    if response.status_code != 400 or CSRF_PAGE not in response.get_data(as_text=True).lower():
        problems.append(f"status {response.status_code}, not the CSRF refusal")
    after = fingerprint(world.app)
    if changed := changed_tables(world.baseline, after):
        world.baseline = after
        problems.append(f"changed {changed}")
    assert not problems, "; ".join(problems) + "\n" + response.get_data(as_text=True)[:800]


def test_there_are_writes_of_every_kind():
    kinds = {r.kind for r in PORTAL_WRITES}
    assert kinds == {"tenant", "support", "signed_in", "public"}, kinds
    assert len(PORTAL_WRITES) >= 40


@pytest.mark.parametrize("route", PORTAL_WRITES, ids=R.ids(PORTAL_WRITES))
def test_a_post_without_the_token_is_refused(world, csrf_on, route):
    client, tenant = _caller(world, route)
    response = client.open(route.path(_values(route, tenant)), method=route.method, data={})
    _refused(world, response)


@pytest.mark.parametrize("route", PORTAL_WRITES, ids=R.ids(PORTAL_WRITES))
def test_a_token_of_another_session_is_refused(world, csrf_on, route):
    client, tenant = _caller(world, route)
    foreign = csrf_token_from(world.b.clients[Role.OWNER].get("/profile").get_data(as_text=True))
    response = client.open(
        route.path(_values(route, tenant)), method=route.method, data={"csrf_token": foreign}
    )
    _refused(world, response)


def test_signing_out_needs_the_token(world, csrf_on):
    client = world.a.clients[Role.OWNER]
    assert client.post("/logout").status_code == 400
    assert client.get("/accounts").status_code == 200  # still signed in


POST_FORM = re.compile(r"<form\b[^>]*method=\"post\"[^>]*>(.*?)</form>", re.S | re.I)
GET_PAGES = [
    r
    for r in R.all_routes()
    if r.method == "GET" and r.kind in ("tenant", "support", "signed_in", "public")
]


PAGES_WITH_FORMS = {
    "contacts.view_contact",
    "contacts.group_settings",
    "account.team",
    "support.account",
    "signup.form",
    "accounts.login",
    "accounts.confirm_sender",
}


def _pending_sender_token(app, tenant) -> str:
    """A sender address waiting for its confirmation, so that its page shows its form."""
    import secrets

    from portal import clock
    from portal.accounts.models import Account
    from portal.accounts.service import hash_token
    from portal.extensions import db

    token = secrets.token_urlsafe(32)
    with app.app_context():
        account = db.session.get(Account, tenant.account_id)
        account.sender_email_pending = "news@example.org"
        account.sender_token_hash = hash_token(token)
        account.sender_requested_at = clock.now()
        db.session.commit()
    return token


@pytest.mark.parametrize("route", GET_PAGES, ids=R.ids(GET_PAGES))
def test_every_form_on_every_page_carries_a_token(world, csrf_on, route):
    """Each <form method="post"> has the session's token (the sign-up form its form key),
    so no button silently fails with CSRF switched on."""
    if route.kind == "support":
        client, tenant = world.staff, world.b
    elif route.kind == "public":
        client, tenant = world.anonymous, world.a
    else:
        client, tenant = world.a.clients[Role.OWNER], world.a
    values = _values(route, tenant)
    if route.endpoint == "signup.form":
        values["form_token"] = tenant.form_token
    if route.endpoint == "accounts.confirm_sender":
        values["token"] = _pending_sender_token(world.app, tenant)
    if route.endpoint in ("static", "bootstrap.static"):
        values["filename"] = (
            "css/portal.css" if route.endpoint == "static" else "css/bootstrap.min.css"
        )
    response = client.get(route.path(values))
    world.baseline = fingerprint(world.app)  # the console records every staff page view
    assert response.status_code in (200, 302, 410), response.status_code
    forms = POST_FORM.findall(response.get_data(as_text=True))
    if route.endpoint in PAGES_WITH_FORMS:
        assert forms, "the page has lost its forms"
    for form in forms:
        expected = "form_key" if route.endpoint == "signup.form" else "csrf_token"
        assert f'name="{expected}"' in form, form[:500]


# --- the exceptions and their own protections ---------------------------------------------------


def _form_key(html: str) -> str:
    return re.search(r'name="form_key" (?:type="hidden" )?value="([^"]+)"', html)[1]


def _signup(client, token, key=None, **headers):
    data = {"email": "new-person@example.org", "first_name": "Ada"}
    if key is not None:
        data["form_key"] = key
    return client.post(f"/f/{token}", data=data, headers=headers)


def test_the_signup_form_refuses_a_missing_or_foreign_form_key(world, csrf_on):
    a, b = world.a, world.b
    browser = new_client(world.app)
    key = _form_key(browser.get(f"/f/{a.form_token}").get_data(as_text=True))
    other_key = _form_key(browser.get(f"/f/{b.form_token}").get_data(as_text=True))
    for sent in (None, "forged", other_key):
        response = _signup(browser, a.form_token, sent)
        assert response.status_code == 400, sent
        assert fingerprint(world.app) == world.baseline, sent
    assert key != other_key


def test_the_signup_form_refuses_a_foreign_origin(world, csrf_on):
    token = world.a.form_token
    browser = new_client(world.app)
    key = _form_key(browser.get(f"/f/{token}").get_data(as_text=True))
    for headers in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/x"}):
        response = _signup(browser, token, key, **headers)
        assert response.status_code == 400, headers
        assert fingerprint(world.app) == world.baseline, headers


def test_the_signup_form_works_without_our_cookie(world, csrf_on):
    """Inside the customer's iframe our cookie is not sent: the form key alone must do.
    (This changes the world: a sign-up request is stored, so the baseline moves on.)"""
    from portal.extensions import db
    from portal.lifecycle.models import SignupRequest

    token = world.a.form_token
    key = _form_key(new_client(world.app).get(f"/f/{token}").get_data(as_text=True))
    cookieless = world.app.test_client(use_cookies=False)
    response = _signup(cookieless, token, key, Origin="http://localhost")
    assert response.status_code == 200
    with world.app.app_context():
        assert db.session.scalar(
            db.select(SignupRequest).where(SignupRequest.email == "new-person@example.org")
        )
    world.baseline = fingerprint(world.app)


def test_the_api_ignores_the_browsers_session_even_with_csrf_on(world, csrf_on):
    browser = world.a.clients[Role.OWNER]  # signed in: its session cookie goes along
    response = browser.post("/api/v1/contacts", json={"email": "via-cookie@alpha.example"})
    assert response.status_code == 401
    assert fingerprint(world.app) == world.baseline


def test_the_api_needs_no_csrf_token_with_a_bearer_key(world, csrf_on):
    browser = world.a.clients[Role.OWNER]
    response = browser.post(
        "/api/v1/contacts",
        json={"email": "via-key@alpha.example"},
        headers={"Authorization": f"Bearer {world.a.keys['write']}"},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    world.baseline = fingerprint(world.app)
