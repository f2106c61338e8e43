"""The portal's routes, read from the url map of an app built at collection time, so that
a new route is in the security tests the moment it exists. Every route is one of:

- tenant  /a/<account_slug>/...   members only (404 for others), roles from require_role
- api     /api/v1/...             Bearer key of the account (404 for other accounts' ids)
- support /support/...            staff only (404 for everyone else)
- signed-in user pages and public pages, each listed below with the reason

A route that is none of these, or that takes a parameter the matrix has no real object
for, fails tests/security/test_isolation_matrix.py::test_every_route_is_covered."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache

from werkzeug.routing import Rule

from portal.accounts.models import Role

IGNORED_METHODS = {"HEAD", "OPTIONS"}

# Pages that need no membership, with the reason they cannot leak a tenant's data.
PUBLIC = {
    "static": "the portal's own CSS and JavaScript files",
    "bootstrap.static": "Bootstrap's CSS and JavaScript, served from the package",
    "health.healthz": "status words for the load balancer, no data",
    "accounts.index": "redirects to the sign-in page or to the user's own account",
    "accounts.login": "the sign-in form",
    "accounts.logout": "ends the caller's own session",
    "accounts.forgot_password": "answers the same whether the address exists or not",
    "accounts.reset_password": "the signed, expiring link from the mail is the credential",
    "accounts.confirm_sender": "the random, expiring link mailed to the address is the credential: "
    "whoever reads that mailbox confirms it, with or without a login",
    "accounts.accept_invitation": "the random invitation link from the mail is the credential",
    "signup.form": "a group's public sign-up form: its random form token is its address "
    "(docs/decisions/lifecycle.md); it shows the group's name and nothing else",
    "signup.confirm": "the random confirmation link from the mail is the credential; it "
    "must belong to the form's group (test_signup_confirmation_of_another_tenant_is_refused)",
}

# Pages of the signed-in user (login_required): anonymous visitors go to the sign-in page,
# and they show the caller's own things only.
SIGNED_IN = {
    "accounts.choose_account": "the caller's own accounts",
    "accounts.profile": "the caller's own name, language and timezone",
    "accounts.change_password": "the caller's own password (the current one is asked again)",
    "accounts.sign_out_everywhere": "ends the caller's own sign-ins",
}

# Role checks written inside a view for one method (GET reads, POST changes); all other
# role checks are read from the views' @require_role (tenancy.require_role keeps the role
# on the view as `required_role`).
INLINE_ROLES = {
    ("account.settings", "POST"): Role.ADMIN,
    ("account.team", "POST"): Role.ADMIN,
    ("contacts.group_settings", "POST"): Role.ADMIN,
    ("api_keys.keys", "POST"): Role.ADMIN,
    ("integrations.tags", "POST"): Role.ADMIN,
}

# URL parameter -> the key in Tenant.ids of the real object it names.
OBJECT_PARAMS = {
    "contact_id": "contact_id",
    "tag_id": "tag_id",
    "group_id": "group_id",
    "backup_id": "backup_id",
    "import_id": "import_id",
    "job_id": "job_id",
    "membership_id": "membership_id",
    "key_id": "revocable_key_id",
    "event_id": "event_id",
    "export_id": "export_id",
    "sync_id": "sync_id",
}
# parameters that name the account itself
ACCOUNT_PARAMS = {"account_slug", "slug"}

_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@dataclass(frozen=True)
class Route:
    rule: str
    endpoint: str
    method: str
    kind: str  # tenant | api | support | signed_in | public | unknown
    params: tuple[str, ...]
    view: object

    @property
    def id(self) -> str:
        return f"{self.method} {self.rule}"

    @property
    def object_params(self) -> tuple[str, ...]:
        return tuple(p for p in self.params if p not in ACCOUNT_PARAMS)

    @property
    def writes(self) -> bool:
        return self.method not in ("GET", "HEAD")

    def required_role(self) -> Role | None:
        """The least role that may use the route (tenant routes only): the view's
        @require_role, else an inline check named in INLINE_ROLES, else viewer for reads;
        None for a write nobody declared (the coverage test fails on it)."""
        role = getattr(self.view, "required_role", None)
        if role is not None:
            return role
        if (self.endpoint, self.method) in INLINE_ROLES:
            return INLINE_ROLES[(self.endpoint, self.method)]
        return None if self.writes else Role.VIEWER

    def path(self, values: dict[str, object]) -> str:
        return _PARAM.sub(lambda m: str(values[m.group(1)]), self.rule)


def kind_of(rule: Rule) -> str:
    if rule.rule.startswith("/a/<account_slug>"):
        return "tenant"
    if rule.rule.startswith("/api/"):
        return "api"
    if rule.rule == "/support" or rule.rule.startswith("/support/"):
        return "support"
    if rule.endpoint in SIGNED_IN:
        return "signed_in"
    if rule.endpoint in PUBLIC:
        return "public"
    return "unknown"


@cache
def url_app():
    """An app of its own, only for its url map (the session's app is a fixture, and
    parametrization happens before fixtures exist)."""
    from portal import create_app

    os.environ.setdefault("INSTANCE_PATH", "/tmp/portal-security-urlmap")  # noqa: S108
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "url-map-only",
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "REDIS_URL": "redis://127.0.0.1:1/0",  # never connected to
        }
    )


def all_routes(app=None) -> list[Route]:
    app = app or url_app()
    routes = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        for method in sorted(rule.methods - IGNORED_METHODS):
            routes.append(
                Route(
                    rule=rule.rule,
                    endpoint=rule.endpoint,
                    method=method,
                    kind=kind_of(rule),
                    params=tuple(rule.arguments and _PARAM.findall(rule.rule)),
                    view=app.view_functions[rule.endpoint],
                )
            )
    return routes


def routes_of(kind: str, *, with_objects: bool | None = None) -> list[Route]:
    found = [r for r in all_routes() if r.kind == kind]
    if with_objects is not None:
        found = [r for r in found if bool(r.object_params) == with_objects]
    return found


def ids(routes: list[Route]) -> list[str]:
    return [r.id for r in routes]


_ARGS = re.compile(r"""(?<![\w.])(?:request\.)?args(?:\.get|\.getlist)?[\(\[]\s*["']([\w-]+)["']""")


@cache
def query_names() -> tuple[str, ...]:
    """Every query parameter a page reads, found in the code: `request.args.get("x")`,
    `args["x"]`, and the fields of the forms filled from the query string (the contact
    filter). A new parameter is in the hostile-input tests the moment a view reads it."""
    from pathlib import Path

    from portal.contacts.forms import ContactFilterForm

    names: set[str] = set()
    root = Path(__file__).resolve().parents[2] / "portal"
    for source in root.rglob("*.py"):
        names.update(_ARGS.findall(source.read_text()))
    with url_app().test_request_context():
        names.update(field.name for field in ContactFilterForm(meta={"csrf": False}))
    names.update(("page", "sort", "cursor", "limit", "embed", "format", "id", "ids"))
    # the contact list's page cursors, read through contacts.views._int_arg(name)
    names.update(("after", "before", "start", "dir"))
    return tuple(sorted(names))
