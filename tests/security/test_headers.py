"""Security headers on every page of the url map (and on error pages, files and the API),
and pages that work under their Content-Security-Policy."""

from __future__ import annotations

import re

import pytest

from portal.accounts.models import Role
from tests.security import routes as R

FRAMEABLE = {"signup.form"}  # the one page a customer's website may put in an <iframe>
REFERRER_POLICIES = {
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
}
GETS = [r for r in R.all_routes() if r.method == "GET"]


def csp_of(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = [w.lower() for w in words[1:]]
    return directives


def _get(world, route: R.Route):
    if route.kind == "support":
        client, tenant = world.staff, world.b
    elif route.kind in ("public", "api"):
        client, tenant = world.anonymous, world.a
    else:
        client, tenant = world.a.clients[Role.OWNER], world.a
    values = {p: tenant.slug for p in route.params if p in R.ACCOUNT_PARAMS}
    for p in route.params:
        if p in R.OBJECT_PARAMS:
            values[p] = tenant.ids[R.OBJECT_PARAMS[p]]
    if route.endpoint == "static":
        values["filename"] = "css/portal.css"
    elif route.endpoint == "bootstrap.static":
        values["filename"] = "css/bootstrap.min.css"
    elif route.endpoint.startswith("signup."):
        values["form_token"] = tenant.form_token
        values["token"] = "no-such-token"
    values.setdefault("token", "no-such-token")
    headers = {}
    if route.kind == "api":
        headers["Authorization"] = f"Bearer {tenant.keys['read']}"
    path = route.path(values)
    if route.endpoint == "api.get_contact_by_email":
        path += f"?email={tenant.contact_email}"
    return client.get(path, headers=headers)


def assert_safe_headers(response, *, frameable: bool = False):
    h = response.headers
    assert h.get("X-Content-Type-Options") == "nosniff"
    assert h.get("Referrer-Policy") in REFERRER_POLICIES, h.get("Referrer-Policy")
    csp = csp_of(response)
    assert csp, "no Content-Security-Policy"
    scripts = csp.get("script-src", csp.get("default-src"))
    assert scripts, "no script-src or default-src"
    for word in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"):
        assert word not in scripts, f"script-src allows {word}"
    assert csp.get("object-src", csp.get("default-src")) in (["'self'"], ["'none'"])
    assert csp.get("base-uri") in (["'self'"], ["'none'"])
    if frameable:
        assert "X-Frame-Options" not in h
        assert csp.get("frame-ancestors"), "a frameable page names its frame-ancestors"
    else:
        assert h.get("X-Frame-Options") == "DENY"
        assert csp.get("frame-ancestors") == ["'none'"]


@pytest.mark.parametrize("route", GETS, ids=R.ids(GETS))
def test_every_page_sends_the_security_headers(world, route):
    response = _get(world, route)
    assert response.status_code < 500, response.status_code
    assert_safe_headers(response, frameable=route.endpoint in FRAMEABLE)


CACHEABLE = {"static", "bootstrap.static"}  # the portal's own CSS and JavaScript


def assert_not_stored(response):
    cache_control = {
        p.strip().lower() for p in response.headers.get("Cache-Control", "").split(",")
    }
    assert "no-store" in cache_control, response.headers.get("Cache-Control")


@pytest.mark.parametrize("route", GETS, ids=R.ids(GETS))
def test_no_page_file_or_json_may_be_stored_by_a_cache(world, route):
    """Issue 16, point 11: pages, downloads (backups, exports, failed rows, the API's
    backup file), JSON and error pages carry personal data; Cache-Control: no-store on
    every one of them, from the url map. Only static files may be cached."""
    response = _get(world, route)
    assert response.status_code < 500, response.status_code
    if route.endpoint in CACHEABLE:
        assert "no-store" not in response.headers.get("Cache-Control", "")
    else:
        assert_not_stored(response)


def test_downloads_are_not_stored_by_a_cache(world):
    editor, a = world.a.clients[Role.EDITOR], world.a
    api = {"Authorization": f"Bearer {a.keys['read']}"}
    downloads = [
        (editor, f"/a/{a.slug}/backups/{a.ids['backup_id']}/download", {}),
        (editor, f"/a/{a.slug}/imports/{a.ids['import_id']}/problems.csv", {}),
        (editor, f"/a/{a.slug}/integrations/exports/{a.ids['export_id']}/download", {}),
        (world.anonymous, f"/api/v1/backups/{a.ids['backup_id']}/download", api),
    ]
    for client, path, headers in downloads:
        with client.get(path, headers=headers) as response:  # streamed: closed before the next
            assert response.status_code == 200, path
            assert response.headers.get("Content-Disposition", "").startswith("attachment"), path
            assert_not_stored(response)


def test_answers_to_posts_and_errors_are_not_stored_either(world):
    token = world.a.form_token
    assert_not_stored(world.anonymous.post(f"/f/{token}", data={}))
    assert_not_stored(world.anonymous.get("/no/such/page"))
    assert_not_stored(world.a.clients[Role.VIEWER].post("/a/alpha/groups/new", data={}))


def test_the_embedded_signup_form_may_be_framed_and_nothing_else(world):
    token = world.a.form_token
    for path in (f"/f/{token}?embed=1", f"/f/{token}"):
        assert_safe_headers(world.anonymous.get(path), frameable=True)
    # its answers after a POST too (the person stays inside the frame)
    assert_safe_headers(world.anonymous.post(f"/f/{token}", data={}), frameable=True)
    # the confirmation link opens in the person's mail program: a page of its own
    assert_safe_headers(world.anonymous.get(f"/f/{token}/confirm/nothing"))


@pytest.mark.parametrize(
    "path", ["/no/such/page", "/a/alpha/no-such", "/api/v1/nothing", "/support/", "/healthz"]
)
def test_error_pages_and_json_send_them_too(world, path):
    assert_safe_headers(world.anonymous.get(path))


def test_a_refused_role_and_a_wrong_method_send_them_too(world):
    viewer = world.a.clients[Role.VIEWER]
    response = viewer.post("/a/alpha/groups/new", data={"name": "x"})
    assert response.status_code == 403
    assert_safe_headers(response)
    response = world.anonymous.delete("/login")
    assert response.status_code == 405
    assert_safe_headers(response)


SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.I)
EVENT_ATTRIBUTE = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I)
PAGES = [r for r in GETS if r.kind in ("tenant", "support", "signed_in", "public")]


@pytest.mark.parametrize("route", PAGES, ids=R.ids(PAGES))
def test_pages_work_under_their_policy(world, route):
    """No inline script, event handler or style attribute: the policy would block them
    (scripts and styles come from 'self' only), so a page that needed one would be broken."""
    response = _get(world, route)
    if "text/html" not in response.content_type:
        return
    html = response.get_data(as_text=True)
    for attributes in SCRIPT_TAG.findall(html):
        assert "src=" in attributes, f"an inline <script{attributes}>"
    assert not EVENT_ATTRIBUTE.search(html), EVENT_ATTRIBUTE.search(html).group(0)
    assert not STYLE_ATTRIBUTE.search(html), STYLE_ATTRIBUTE.search(html).group(0)
    assert "javascript:" not in html.lower()
