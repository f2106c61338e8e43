"""Upload limits: a body above MAX_CONTENT_LENGTH (MAX_UPLOAD_MB) is refused with a 413
page in the reader's language on every route that takes a POST (generated from the url
map), a JSON error on the API, and nothing is stored."""

from __future__ import annotations

import io

import pytest

from portal.accounts.models import Role
from tests.helpers.auth import csrf_token_from
from tests.security import routes as R
from tests.security.conftest import changed_tables, fingerprint

LIMIT = 4096
WRITES = [r for r in R.all_routes() if r.writes and r.kind != "api"]


@pytest.fixture
def small_limit(app):
    before = app.config["MAX_CONTENT_LENGTH"], app.config["WTF_CSRF_ENABLED"]
    app.config["MAX_CONTENT_LENGTH"] = LIMIT
    app.config["WTF_CSRF_ENABLED"] = True  # as in production: the form is read before the view
    yield
    app.config["MAX_CONTENT_LENGTH"], app.config["WTF_CSRF_ENABLED"] = before


def _big_file(name="list.csv"):
    return (io.BytesIO(b"email\n" + b"someone@example.org\n" * (LIMIT // 10)), name)


def _client(world, route):
    if route.kind == "support":
        return world.staff, world.b
    return world.a.clients[Role.OWNER], world.a


def _values(route, tenant):
    values = {p: tenant.slug for p in route.params if p in R.ACCOUNT_PARAMS}
    for p in route.params:
        if p in R.OBJECT_PARAMS:
            values[p] = tenant.ids[R.OBJECT_PARAMS[p]]
    values.setdefault("form_token", tenant.form_token)
    values.setdefault("token", "x" * 20)
    return values


def _assert_413_page(world, response, language="en"):
    html = response.get_data(as_text=True)
    assert response.status_code == 413, (response.status_code, html[:500])
    assert "text/html" in response.content_type
    assert f'<html lang="{language}">' in html  # the portal's own page, not Werkzeug's
    title = {"en": "The request is too large.", "de": "Die Anfrage ist zu groß."}[language]
    assert title in html
    after = fingerprint(world.app)
    assert not changed_tables(world.baseline, after)


@pytest.mark.parametrize("route", WRITES, ids=R.ids(WRITES))
def test_a_too_large_post_gets_the_413_page(world, small_limit, route):
    client, tenant = _client(world, route)
    response = client.open(
        route.path(_values(route, tenant)),
        method=route.method,
        data={"file": _big_file()},
        content_type="multipart/form-data",
    )
    _assert_413_page(world, response)


def test_a_too_large_import_is_refused_in_the_readers_language(world, small_limit):
    owner = world.a.clients[Role.OWNER]
    page = owner.get("/a/alpha/imports/new?lang=de").get_data(as_text=True)
    world.baseline = fingerprint(world.app)  # ?lang= is remembered as the user's language
    response = owner.post(
        "/a/alpha/imports/new",
        data={
            "csrf_token": csrf_token_from(page),
            "group": str(world.a.ids["group_id"]),
            "file": _big_file(),
        },
        content_type="multipart/form-data",
    )
    _assert_413_page(world, response, language="de")
    owner.get("/a/alpha/?lang=en")
    world.baseline = fingerprint(world.app)


def test_the_api_answers_413_as_json(world, small_limit):
    response = world.anonymous.post(
        "/api/v1/imports",
        data={"group_id": str(world.a.ids["group_id"]), "file": _big_file()},
        headers={"Authorization": f"Bearer {world.a.keys['write']}"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"
    assert not changed_tables(world.baseline, fingerprint(world.app))


def test_the_limit_comes_from_max_upload_mb(monkeypatch):
    from portal.config import build_config

    monkeypatch.setenv("MAX_UPLOAD_MB", "7")
    assert build_config()["MAX_CONTENT_LENGTH"] == 7 * 1024 * 1024
