"""The tenant-isolation matrix, generated from the url map (tests/security/routes.py).

Two tenants, alpha and bravo, hold real objects of every kind (tests/security/conftest.py).
Every route is requested

- anonymously: portal pages send to the sign-in page, the API answers 401, /support/ 404;
- by a member of bravo, on alpha's pages (404) and with alpha's ids on bravo's own pages
  (404), each id of a route on its own and all together;
- by alpha's members whose role is below the route's (403), the role read from the views;
- with bravo's API key and alpha's ids (404), with a read key on writes (403), with only a
  signed-in browser's cookie (401);
- by a non-staff member (404) and by staff with an access to bravo only (alpha's pages go
  to the reason form, alpha's ids under bravo are a 404);

and after every one of these refusals the response holds no marker text of alpha and not
a single row of the database has changed. Then the same routes are used by a member
with exactly the required role, on its own account's objects, to prove the ids are real
(those requests may change things, so they run last, each area on a tenant of its own).

The world is built once for the module (a refusal changes nothing, which every test
checks); tests/security/conftest.py skips the per-test cleanup for tests that use it."""

from __future__ import annotations

import pytest

from portal.accounts.models import Role
from portal.api.core import OPERATIONS
from tests.security import routes as R
from tests.security.conftest import (
    Tenant,
    build_tenant,
    changed_tables,
    fingerprint,
    new_client,
)

TENANT = R.routes_of("tenant")
TENANT_WITH_IDS = R.routes_of("tenant", with_objects=True)
API = R.routes_of("api")
API_WITH_IDS = R.routes_of("api", with_objects=True)
SUPPORT = R.routes_of("support")
SUPPORT_ACCOUNT = [r for r in SUPPORT if "slug" in r.params]
SUPPORT_WITH_IDS = R.routes_of("support", with_objects=True)
SIGNED_IN = R.routes_of("signed_in")
ROLE_ORDER = (Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER)


# --- requests and checks -------------------------------------------------------------------


def _sample(schema: dict, name: str, tenant: Tenant, n: list[int]):
    """A small valid instance of a JSON Schema (an API body), so that a request gets past
    the body check to the view; ids in it belong to `tenant`."""
    n[0] += 1
    if name == "group_id":
        return tenant.ids["group_id"]
    if name == "group_ids":
        return [tenant.ids["group_id"]]
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    if kind == "object":
        props = schema.get("properties", {})
        names = list(schema.get("required", []))
        if not names and schema.get("minProperties") and props:
            names = [next(iter(props))]
        return {k: _sample(props[k], k, tenant, n) for k in names}
    if kind == "array":
        if schema.get("minItems"):
            return [_sample(schema.get("items", {}), name, tenant, n)]
        return []
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    if schema.get("format") == "date-time":
        return "2024-01-02T03:04:05Z"
    if name == "email":
        return f"sample{n[0]}@{tenant.name}.example"
    return f"Sample {n[0]}"


def api_body(route: R.Route, tenant: Tenant):
    op = OPERATIONS[route.endpoint]
    if op.body is None:
        return None
    return _sample(op.body, "", tenant, [0])


def api_query(route: R.Route, tenant: Tenant) -> str:
    """Required query parameters (the contact's address for by-email)."""
    params = [p for p in OPERATIONS[route.endpoint].query if p.required]
    values = {p.name: tenant.contact_email if p.name == "email" else "1" for p in params}
    return ("?" + "&".join(f"{k}={v}" for k, v in values.items())) if values else ""


def send(client, route: R.Route, values: dict, *, key: str | None = None, tenant=None):
    path = route.path(values)
    if route.kind == "api" and tenant is not None:
        path += api_query(route, tenant)
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if route.kind == "api":
        body = api_body(route, tenant) if tenant is not None else None
        if body is not None:
            return client.open(path, method=route.method, json=body, headers=headers)
        return client.open(path, method=route.method, headers=headers)
    data = {} if route.writes else None
    return client.open(path, method=route.method, data=data, headers=headers)


def values_of(tenant: Tenant, route: R.Route, **override_ids) -> dict:
    values = {p: tenant.slug for p in route.params if p in R.ACCOUNT_PARAMS}
    for p in route.object_params:
        values[p] = tenant.ids[R.OBJECT_PARAMS[p]]
    values.update(override_ids)
    return values


def text_of(response) -> str:
    return (
        response.get_data().decode("utf-8", "replace") + response.headers.get("Location", "")
    ).lower()


def assert_refused(world, response, expected: set[int], *, hidden: Tenant, location=None):
    """The status, no marker of `hidden`, and no row of the database changed."""
    problems = []
    if response.status_code not in expected:
        problems.append(f"status {response.status_code}, expected {sorted(expected)}")
    if location is not None and location not in response.headers.get("Location", ""):
        problems.append(f"Location {response.headers.get('Location')!r}, expected {location!r}")
    if hidden.marker in text_of(response):
        problems.append(f"the answer shows data of {hidden.name}")
    after = fingerprint(world.app)
    changed = changed_tables(world.baseline, after)
    if changed:
        world.baseline = after
        problems.append(f"the request changed the tables {changed}")
    assert not problems, "; ".join(problems) + "\n" + response.get_data(as_text=True)[:1500]


def foreign_variants(route: R.Route) -> list[str]:
    """Which ids of the other tenant go into the URL: all, and each one alone."""
    params = route.object_params
    return ["all"] + (list(params) if len(params) > 1 else [])


def _foreign_cases(routes):
    return [
        pytest.param(route, variant, id=f"{route.id} [{variant}]")
        for route in routes
        for variant in foreign_variants(route)
    ]


def foreign_values(own: Tenant, other: Tenant, route: R.Route, variant: str) -> dict:
    values = values_of(own, route)
    for p in route.object_params:
        if variant in ("all", p):
            values[p] = other.ids[R.OBJECT_PARAMS[p]]
    return values


# --- coverage ------------------------------------------------------------------------------


def test_every_route_is_covered(app):
    """A new route fails here until the matrix knows it: a tenant, API or support route
    with parameters the world has objects for (and a tenant write with a declared role),
    or a public / signed-in page listed in tests/security/routes.py with its reason."""
    routes = R.all_routes(app)
    assert {r.id for r in routes} == {r.id for r in R.all_routes()}, "url maps differ"
    problems = []
    for r in routes:
        if r.kind == "unknown":
            problems.append(
                f"{r.id} ({r.endpoint}): not under /a/<account_slug>/, /api/ or /support/ "
                "and not listed in PUBLIC or SIGNED_IN with a reason"
            )
            continue
        unknown = [p for p in r.object_params if p not in R.OBJECT_PARAMS]
        if r.kind in ("tenant", "api", "support") and unknown:
            problems.append(f"{r.id}: no object of the world for {unknown} (OBJECT_PARAMS)")
        if r.kind == "tenant" and r.required_role() is None:
            problems.append(f"{r.id}: a write without @require_role or an INLINE_ROLES entry")
        if r.kind == "api" and r.endpoint not in OPERATIONS:
            problems.append(f"{r.id}: an API route that is not a declared operation")
    endpoints = {r.endpoint for r in routes}
    stale = [e for e in [*R.PUBLIC, *R.SIGNED_IN] if e not in endpoints]
    stale += [f"{e} {m}" for e, m in R.INLINE_ROLES if e not in endpoints]
    problems += [f"listed but gone: {e}" for e in stale]
    assert not problems, "\n".join(problems)


def test_the_matrix_reaches_every_kind_of_route():
    """The generated lists are not empty (a broken classifier would make every test vanish)."""
    assert len(TENANT_WITH_IDS) >= 30 and len(API_WITH_IDS) >= 10 and SUPPORT_WITH_IDS
    assert {p for r in TENANT_WITH_IDS + API_WITH_IDS for p in r.object_params} == set(
        R.OBJECT_PARAMS
    )


def test_every_id_of_the_world_is_a_real_object_of_its_tenant(app, world, tenant_models):
    from portal.extensions import db

    with app.app_context():
        for tenant in world.tenants():
            for key, object_id in tenant.ids.items():
                row = db.session.get(tenant_models[key], object_id)
                assert row is not None and row.account_id == tenant.account_id, (tenant, key)
        a, b = world.a, world.b
        assert not set(a.ids.items()) & set(b.ids.items())  # never the same id by chance


# --- portal pages -------------------------------------------------------------------------


@pytest.mark.parametrize("route", TENANT, ids=R.ids(TENANT))
def test_anonymous_visitors_are_sent_to_the_sign_in_page(world, route):
    response = send(world.anonymous, route, values_of(world.a, route))
    assert_refused(world, response, {302}, hidden=world.a, location="/login")


@pytest.mark.parametrize("route", SIGNED_IN, ids=R.ids(SIGNED_IN))
def test_signed_in_pages_send_anonymous_visitors_to_sign_in(world, route):
    response = send(world.anonymous, route, {})
    assert_refused(world, response, {302}, hidden=world.a, location="/login")


@pytest.mark.parametrize("route", TENANT, ids=R.ids(TENANT))
def test_a_member_of_another_account_gets_404(world, route):
    """bravo's owner on alpha's pages, with alpha's ids."""
    response = send(world.b.clients[Role.OWNER], route, values_of(world.a, route))
    assert_refused(world, response, {404}, hidden=world.a)


@pytest.mark.parametrize(("route", "variant"), _foreign_cases(TENANT_WITH_IDS))
def test_ids_of_another_account_are_404_on_your_own_pages(world, route, variant):
    """bravo's owner on bravo's pages, with alpha's ids in the URL."""
    values = foreign_values(world.b, world.a, route, variant)
    response = send(world.b.clients[Role.OWNER], route, values)
    assert_refused(world, response, {404}, hidden=world.a)


def _role_cases():
    cases = []
    for route in TENANT:
        needed = route.required_role()
        for role in ROLE_ORDER:
            if needed is not None and not role.at_least(needed):
                cases.append(pytest.param(route, role, id=f"{route.id} [{role.value}]"))
    return cases


ROLE_CASES = _role_cases()


@pytest.mark.parametrize(("route", "role"), ROLE_CASES)
def test_a_role_below_the_routes_gets_403(world, route, role):
    """alpha's viewer (editor, admin) on alpha's own objects where more is needed."""
    response = send(world.a.clients[role], route, values_of(world.a, route))
    assert_refused(world, response, {403}, hidden=world.b)


def test_the_role_table_has_cases_for_editors_and_admins():
    needed = {route.required_role() for route, _role in (c.values for c in ROLE_CASES)}
    assert {Role.EDITOR, Role.ADMIN} <= needed


SIGNED_IN_READS = [r for r in SIGNED_IN if not r.writes]


def test_downloads_of_a_whole_group_need_an_editor():
    """A backup or an export carries the personal data of a whole group (see
    docs/decisions/backups-snapshot-and-storage.md): viewers never get one, also if a
    decorator (from which the table above is read) were lost. The failed-rows report of
    an import holds the original cells of its rows: the same role (issue 16, point 11);
    and so does the download of the log of support access (issue 16, point 6)."""
    by_endpoint = {r.endpoint: r for r in TENANT}
    downloads = ("backups.download_backup", "integrations.download_export")
    for endpoint in (*downloads, "imports.download_problems", "support_log.download_staff_log"):
        assert by_endpoint[endpoint].required_role().at_least(Role.EDITOR), endpoint


@pytest.mark.parametrize("route", SIGNED_IN_READS, ids=R.ids(SIGNED_IN_READS))
def test_signed_in_pages_show_only_your_own(world, route):
    response = send(world.b.clients[Role.OWNER], route, {})
    assert response.status_code == 200
    assert world.a.marker not in text_of(response)
    assert world.b.marker in text_of(response)


# --- the API -----------------------------------------------------------------------------


@pytest.mark.parametrize("route", API, ids=R.ids(API))
def test_the_api_without_a_key_is_401(world, route):
    expected = {200} if OPERATIONS[route.endpoint].public else {401}
    response = send(world.anonymous, route, values_of(world.a, route), tenant=world.a)
    assert_refused(world, response, expected, hidden=world.a)


API_KEYED = [r for r in API if not OPERATIONS[r.endpoint].public]


@pytest.mark.parametrize("route", API_KEYED, ids=R.ids(API_KEYED))
def test_the_api_ignores_a_signed_in_browser(world, route):
    client = world.a.clients[Role.OWNER]
    response = send(client, route, values_of(world.a, route), tenant=world.a)
    assert_refused(world, response, {401}, hidden=world.b)


@pytest.mark.parametrize(("route", "variant"), _foreign_cases(API_WITH_IDS))
def test_an_api_key_of_another_account_gets_404(world, route, variant):
    values = foreign_values(world.b, world.a, route, variant)
    response = send(world.anonymous, route, values, key=world.b.keys["write"], tenant=world.b)
    assert_refused(world, response, {404}, hidden=world.a)


API_WRITES = [r for r in API if r.writes]


@pytest.mark.parametrize("route", API_WRITES, ids=R.ids(API_WRITES))
def test_a_read_key_may_not_write(world, route):
    response = send(
        world.anonymous, route, values_of(world.a, route), key=world.a.keys["read"], tenant=world.a
    )
    assert_refused(world, response, {403}, hidden=world.b)


# --- the support console ----------------------------------------------------------------


@pytest.mark.parametrize("route", SUPPORT, ids=R.ids(SUPPORT))
def test_the_support_console_is_404_for_anonymous_visitors(world, route):
    response = send(world.anonymous, route, values_of(world.a, route))
    assert_refused(world, response, {404}, hidden=world.a)


@pytest.mark.parametrize("route", SUPPORT, ids=R.ids(SUPPORT))
def test_the_support_console_is_404_for_customers(world, route):
    """bravo's owner, on the console pages of alpha (and of no account)."""
    response = send(world.b.clients[Role.OWNER], route, values_of(world.a, route))
    assert_refused(world, response, {404}, hidden=world.a)


@pytest.mark.parametrize("route", SUPPORT_ACCOUNT, ids=R.ids(SUPPORT_ACCOUNT))
def test_staff_without_an_access_get_the_reason_form(world, route):
    """Staff with an open access to bravo only: alpha's pages show nothing of alpha."""
    response = send(world.staff, route, values_of(world.a, route))
    if route.endpoint == "support.open_account":  # the reason form itself
        assert_refused(world, response, {200}, hidden=world.a)
    else:
        assert_refused(
            world, response, {302}, hidden=world.a, location="/support/accounts/alpha/open"
        )


@pytest.mark.parametrize(("route", "variant"), _foreign_cases(SUPPORT_WITH_IDS))
def test_staff_cannot_reach_another_accounts_ids_through_an_open_one(world, route, variant):
    values = foreign_values(world.b, world.a, route, variant)
    response = send(world.staff, route, values)
    assert_refused(world, response, {404}, hidden=world.a)


# --- ids inside query strings, forms and bodies -----------------------------------------

# (who, method, path, form or JSON, expected) - `{a.x}` are alpha's ids, sent by bravo.
BODY_CASES = [
    ("key", "GET", "/api/v1/contacts?group={a.group_id}", None, {404}),
    ("key", "GET", "/api/v1/contacts?tag={a.tag_id}", None, {404}),
    ("key", "GET", "/api/v1/contacts/by-email?email={a.contact_email}", None, {404}),
    (
        "key",
        "POST",
        "/api/v1/contacts",
        {"email": "x@bravo.example", "group_ids": ["a.group_id"]},
        {404},
    ),
    (
        "key",
        "POST",
        "/api/v1/imports",
        {"group_id": "a.group_id", "rows": [{"email": "y@bravo.example"}]},
        {404},
    ),
    ("owner", "GET", "/a/bravo/contacts?group={a.group_id}", None, {200}),
    ("owner", "GET", "/a/bravo/contacts?tag={a.tag_id}", None, {200}),
    ("owner", "POST", "/a/bravo/contacts/bulk/delete", {"ids": "a.contact_id"}, {302}),
    ("owner", "POST", "/a/bravo/contacts/bulk/restore", {"ids": "a.deleted_contact_id"}, {302}),
    ("owner", "POST", "/a/bravo/imports/new", {"group": "a.group_id", "file": "csv"}, {200, 404}),
    (
        "owner",
        "POST",
        "/a/bravo/integrations/exports",
        {"group": "a.group_id", "format": "csv"},
        {400, 404},
    ),
    (
        "staff",
        "POST",
        "/support/accounts/bravo/deleted/restore",
        {"ids": "a.deleted_contact_id"},
        {302},
    ),
]


def _fill(value, a: Tenant):
    if isinstance(value, str) and value.startswith("a."):
        return a.contact_email if value == "a.contact_email" else a.ids[value[2:]]
    if isinstance(value, list):
        return [_fill(v, a) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, a) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("who", "method", "path", "payload", "expected"),
    BODY_CASES,
    ids=[f"{c[1]} {c[2]}" for c in BODY_CASES],
)
def test_ids_of_another_account_in_queries_forms_and_bodies(
    world, who, method, path, payload, expected
):
    import io

    a, b = world.a, world.b
    path = path.format(a=type("Ids", (), {**a.ids, "contact_email": a.contact_email}))
    payload = _fill(payload, a)
    if who == "key":
        headers = {"Authorization": f"Bearer {b.keys['write']}"}
        response = world.anonymous.open(path, method=method, json=payload, headers=headers)
    else:
        client = world.staff if who == "staff" else b.clients[Role.OWNER]
        if payload and payload.get("file") == "csv":
            payload["file"] = (io.BytesIO(b"email\nz@bravo.example\n"), "list.csv")
        response = client.open(path, method=method, data=payload)
    assert_refused(world, response, expected, hidden=a)


# --- public links that carry another tenant's token ---------------------------------------


def test_signup_confirmation_of_another_tenant_is_refused(world):
    """alpha's form with bravo's confirmation token (and the other way round): 410."""
    a, b = world.a, world.b
    for form_of, confirm_of, hidden in ((a, b, b), (b, a, a)):
        token = confirm_of.confirm_path.rsplit("/", 1)[1]
        response = world.anonymous.get(f"/f/{form_of.form_token}/confirm/{token}")
        assert_refused(world, response, {410}, hidden=hidden)


def test_the_public_form_shows_only_its_group(world):
    response = world.anonymous.get(f"/f/{world.a.form_token}")
    assert response.status_code == 200
    assert f"group {world.a.marker}" in text_of(response)  # its own group's name
    assert world.b.marker not in text_of(response)
    assert f"contact-{world.a.marker}" not in text_of(response)


# --- positive controls: the same routes with the right role, on one's own objects -------------

# Requests that remove what later requests name; they run last, in this order.
DESTRUCTIVE_LAST = [
    "account.remove_member",
    "lifecycle.cancel_job",
    "api.delete_contact",
    "api.forget_contact",
    "api.delete_group",
]


def _in_safe_order(routes):
    def key(route):
        last = (
            DESTRUCTIVE_LAST.index(route.endpoint) + 1 if route.endpoint in DESTRUCTIVE_LAST else 0
        )
        return (last, route.writes, route.id)

    return sorted(routes, key=key)


@pytest.fixture(scope="module")
def own(app, world):
    """Tenants of their own for the requests that may change things (one per area)."""
    tenants = {
        "charlie": build_tenant(app, "charlie"),
        "delta": build_tenant(app, "delta", clients=False),
    }
    echo = build_tenant(app, "echo", clients=False)
    from portal.accounts.models import Account, User
    from portal.extensions import db
    from portal.support import console

    with app.app_context():
        staff = db.session.get(User, world.staff_id)
        console.open_access(staff, db.session.get(Account, echo.account_id), "ticket 42")
        db.session.commit()
    tenants["echo"] = echo
    return tenants


def assert_reached(world, response, route, *, allowed_markers: set[str]):
    text = text_of(response)
    if route.writes:
        assert response.status_code < 500 and response.status_code not in (401, 403, 404, 405), (
            response.status_code,
            response.get_data(as_text=True)[:1500],
        )
    else:
        assert response.status_code == 200, (
            response.status_code,
            response.get_data(as_text=True)[:1500],
        )
    for tenant in world.tenants():
        assert tenant.marker not in text or tenant.marker in allowed_markers, tenant.name


POSITIVE_TENANT = _in_safe_order(TENANT)


@pytest.mark.parametrize("route", POSITIVE_TENANT, ids=R.ids(POSITIVE_TENANT))
def test_the_required_role_reaches_the_page(world, own, route):
    tenant = own["charlie"]
    response = send(tenant.clients[route.required_role()], route, values_of(tenant, route))
    assert_reached(world, response, route, allowed_markers=set())


POSITIVE_API = _in_safe_order(API)


@pytest.mark.parametrize("route", POSITIVE_API, ids=R.ids(POSITIVE_API))
def test_the_right_key_reaches_the_operation(world, own, route):
    tenant = own["delta"]
    key = tenant.keys["write" if route.writes else "read"]
    response = send(new_client(world.app), route, values_of(tenant, route), key=key, tenant=tenant)
    assert_reached(world, response, route, allowed_markers=set())


POSITIVE_SUPPORT = _in_safe_order(SUPPORT)


@pytest.mark.parametrize("route", POSITIVE_SUPPORT, ids=R.ids(POSITIVE_SUPPORT))
def test_staff_with_an_access_reach_the_console(world, own, route):
    tenant = own["echo"]
    response = send(world.staff, route, values_of(tenant, route))
    # bravo's pages stay open to this staff user too; the console's start page lists it
    assert_reached(world, response, route, allowed_markers={world.b.marker})
