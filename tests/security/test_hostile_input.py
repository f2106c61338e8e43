"""Hostile input answers 4xx in the reader's language and changes nothing (issue 16,
point 9). Generated from the url map (tests/security/routes.py), like the isolation
matrix: every id of every route (path) is replaced by values no id column can hold, and
every query parameter the portal reads (found in its code, routes.query_names) gets
hostile values on every GET route. Then the single cases that were 500s: `group=abc` on
exports, CR/LF in `next=`, an account name with CR/LF (every later invitation failed),
NUL bytes in names and group names through the API and the pages."""

from __future__ import annotations

import pytest

from portal.accounts.models import Role
from tests.security import routes as R
from tests.security.conftest import changed_tables, fingerprint
from tests.security.test_isolation_matrix import api_body, api_query

# no id column holds these: above BIGINT, far above it, and above INTEGER on PostgreSQL
HOSTILE_IDS = [2**63, 2**64 + 1, 10**30, 2**31]
HOSTILE_VALUES = [
    "abc",
    str(2**63),
    "9" * 40,
    "-1",
    "1\r\nSet-Cookie: hostile=1",
    "a\x00b",
    "\x00",
    "%00",
    "<script>x</script>",
    "x" * 3000,
]
HOSTILE_TOKENS = ["a\x00b", "x" * 3000, "..%2F..%2F", "\r\nX: 1"]

WITH_IDS = [r for r in R.all_routes() if any(p in R.OBJECT_PARAMS for p in r.params)]
GETS = [r for r in R.all_routes() if r.method == "GET"]
WITH_TOKENS = [
    r
    for r in R.all_routes()
    if r.kind == "public" and r.params and r.endpoint not in ("static", "bootstrap.static")
]


def _client_and_tenant(world, route):
    if route.kind == "support":
        return world.staff, world.b
    if route.kind in ("api", "public"):
        return world.anonymous, world.a
    return world.a.clients[Role.OWNER], world.a


def values_of(tenant, route, **override) -> dict:
    """Real values for a route's parameters: the account, its objects' ids, the files
    and the sign-up form's token; other tokens name nothing."""
    values = {}
    for p in route.params:
        if p in R.ACCOUNT_PARAMS:
            values[p] = tenant.slug
        elif p in R.OBJECT_PARAMS:
            values[p] = tenant.ids[R.OBJECT_PARAMS[p]]
        elif p == "form_token":
            values[p] = tenant.form_token
        elif p == "filename":
            values[p] = "css/portal.css" if route.endpoint == "static" else "css/bootstrap.min.css"
        else:
            values[p] = "no-such-token"
    values.update(override)
    return values


_ips = iter(range(1, 10**6))


def _send(world, route, values, *, query: str = "", headers=None):
    client, tenant = _client_and_tenant(world, route)
    headers = dict(headers or {})
    if route.kind == "public":  # the sign-up form's limit counts per address
        n = next(_ips)
        client.environ_base["REMOTE_ADDR"] = f"10.77.{n // 250 % 250}.{n % 250 + 1}"
    path = route.path(values)
    if route.kind == "api":
        headers["Authorization"] = f"Bearer {tenant.keys['write']}"
        path += api_query(route, tenant)
        if query:
            path += ("&" if "?" in path else "?") + query.lstrip("?")
        body = api_body(route, tenant)
        if body is not None:
            return client.open(path, method=route.method, json=body, headers=headers)
        return client.open(path, method=route.method, headers=headers)
    path += query
    data = {} if route.writes else None
    return client.open(path, method=route.method, data=data, headers=headers)


def _assert_harmless(world, response, *, allowed=(400, 404, 405, 410)):
    """The status, and no row changed — except the audit entry that an answered read
    (a download, a support console page) writes anyway."""
    problems = []
    if response.status_code not in allowed:
        problems.append(f"status {response.status_code}, expected one of {allowed}")
    after = fingerprint(world.app)
    changed = changed_tables(world.baseline, after)
    if response.status_code == 200 and changed == ["audit_events"]:
        world.baseline, changed = after, []
    if changed:
        world.baseline = after
        problems.append(f"the request changed the tables {changed}")
    assert not problems, "; ".join(problems) + "\n" + response.get_data(as_text=True)[:800]


def _assert_in_german(response):
    """A page (or the API's JSON) that refuses says so in the reader's language."""
    if response.is_json:
        body = response.get_json()
        assert "error" in body and body["error"]["message"], body
        return
    text = response.get_data(as_text=True)
    if "text/html" in response.content_type:
        assert '<html lang="de">' in text, text[:300]


def _id_cases():
    return [
        pytest.param(route, param, value, id=f"{route.id} {param}={value}")
        for route in WITH_IDS
        for param in route.object_params
        if param in R.OBJECT_PARAMS
        for value in HOSTILE_IDS
    ]


@pytest.mark.parametrize(("route", "param", "value"), _id_cases())
def test_an_id_no_column_can_hold_is_a_404_and_changes_nothing(world, route, param, value):
    _, tenant = _client_and_tenant(world, route)
    values = values_of(tenant, route, **{param: value})
    response = _send(world, route, values, headers={"Accept-Language": "de"})
    # 405 where another method of the same path exists (werkzeug matches the method first)
    _assert_harmless(world, response, allowed=(404, 405))
    _assert_in_german(response)


def _query_cases():
    return [
        pytest.param(route, value, id=f"{route.id} {value[:20]!r}")
        for route in GETS
        for value in HOSTILE_VALUES
    ]


@pytest.mark.parametrize(("route", "value"), _query_cases())
def test_hostile_values_in_every_query_parameter_answer_without_an_error(world, route, value):
    """Every parameter any view reads, all at once, on every GET route: a page that
    ignores what it cannot use (200, or the redirect it always makes) or a 4xx — never a
    500 — and nothing changes."""
    from urllib.parse import urlencode

    _, tenant = _client_and_tenant(world, route)
    values = values_of(tenant, route)
    query = "?" + urlencode({name: value for name in R.query_names() if name != "lang"})
    response = _send(world, route, values, query=query, headers={"Accept-Language": "de"})
    _assert_harmless(world, response, allowed=(200, 302, 400, 404, 410, 422))
    if response.status_code >= 400:
        _assert_in_german(response)
    assert "hostile=1" not in str(response.headers), "a header was injected"


def test_the_query_parameters_are_read_from_the_code():
    names = R.query_names()
    for expected in ("q", "next", "group", "tag", "status", "before", "after", "profile"):
        assert expected in names, expected


def _token_cases():
    return [
        pytest.param(route, value, id=f"{route.id} {value[:12]!r}")
        for route in WITH_TOKENS
        for value in HOSTILE_TOKENS
    ]


@pytest.mark.parametrize(("route", "value"), _token_cases())
def test_hostile_tokens_in_public_links_are_refused(world, route, value):
    values = {p: value for p in route.params}
    if route.endpoint == "signup.confirm":
        values["form_token"] = world.a.form_token
    response = _send(world, route, values, headers={"Accept-Language": "de"})
    _assert_harmless(world, response, allowed=(200, 302, 400, 404, 410))
    values = {p: value for p in route.params}  # the form's own token hostile too
    response = _send(world, route, values, headers={"Accept-Language": "de"})
    _assert_harmless(world, response, allowed=(200, 302, 400, 404, 410))


def test_every_id_in_a_path_is_checked_against_its_table():
    """A new `<int:…>` parameter must name its table in tenancy's list, or an id past
    what the column holds reaches the database again."""
    import re

    from portal.tenancy import _url_id_models

    names = set()
    for route in R.all_routes():
        names.update(re.findall(r"<int:(\w+)>", route.rule))
    assert names - set(_url_id_models()) == set()
