"""The tenant of a request: resolved once from /a/<account_slug>/, checked once.

Another tenant's slug or id is a 404, never a 403 that would leak existence.
Tenant rows are loaded through get_owned_or_404(), which filters by id *and*
account; never db.get_or_404 on tenant data."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from flask import Blueprint, abort, g, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import BigInteger, Table

from portal.accounts.models import Account, Membership, Role
from portal.extensions import db

T = TypeVar("T")


def tenant_blueprint(name: str, import_name: str, url_prefix: str = "") -> Blueprint:
    """A blueprint whose routes live under /a/<account_slug>/ and see g.account."""
    bp = Blueprint(name, import_name, url_prefix=f"/a/<account_slug>{url_prefix}")
    bp.url_value_preprocessor(_pull_account)
    bp.url_defaults(_push_account)
    bp.before_request(_require_membership)
    return bp


def _pull_account(endpoint: str | None, values: dict | None) -> None:
    slug = (values or {}).pop("account_slug", None)
    g.account_slug = slug


def _push_account(endpoint: str, values: dict) -> None:
    if "account_slug" not in values and g.get("account") is not None:
        values["account_slug"] = g.account.slug


def _require_membership():
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.login", next=request.full_path))
    account = db.session.scalar(db.select(Account).where(Account.slug == g.account_slug))
    if account is None:
        abort(404)
    membership = membership_for(current_user, account)
    if membership is None:
        abort(404)
    g.account = account
    g.membership = membership
    return None


def membership_for(user, account: Account) -> Membership | None:
    return db.session.scalar(
        db.select(Membership).where(
            Membership.account_id == account.id, Membership.user_id == user.id
        )
    )


def current_role() -> Role | None:
    membership = g.get("membership")
    return membership.role_enum if membership is not None else None


def can(role: Role | str) -> bool:
    """True when the current member's role is at least `role`."""
    mine = current_role()
    return mine is not None and mine.at_least(role)


def require_role(role: Role | str) -> Callable:
    """View decorator: members below `role` get 403 (they know the account exists).
    The role is kept on the view (`required_role`), so the isolation tests read who may
    use a route from the code itself (tests/security/test_isolation_matrix.py)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not can(role):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_role = Role(role)  # type: ignore[attr-defined]
        return wrapped

    return decorator


MAX_BIGINT = 2**63 - 1
MAX_INTEGER = 2**31 - 1  # PostgreSQL's INTEGER; SQLite's is 64-bit, but one rule for both


def id_or_none(model: type | Table, value: object) -> int | None:
    """`value` (an int from the URL, a text from a form or a query string) as an id the
    model's id column can hold, or None. Anything else — "abc", "-1", 2**64 — names no
    row, and must not reach the database: SQLite cannot bind an int above 2**63 - 1 and
    PostgreSQL refuses an INTEGER comparison with a larger one (a 500 before)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 19:
            return None
        value = int(text)
    if not isinstance(value, int):
        return None
    column = getattr(model, "__table__", model).c.id
    limit = MAX_BIGINT if isinstance(column.type, BigInteger) else MAX_INTEGER
    return value if 0 < value <= limit else None


# The table each `<int:…>` parameter of the portal's routes names (a test fails for a
# parameter missing here). By table name, so that this module, which every area's views
# use, imports no area's models.
URL_ID_TABLES = {
    "contact_id": "contacts",
    "group_id": "groups",
    "tag_id": "tags",
    "backup_id": "backups",
    "import_id": "import_jobs",
    "job_id": "lifecycle_jobs",
    "membership_id": "memberships",
    "key_id": "api_keys",
    "event_id": "integration_events",
    "export_id": "export_runs",
    "sync_id": "sync_runs",
}


def _url_id_models() -> dict[str, Table]:
    return {name: db.metadata.tables[table] for name, table in URL_ID_TABLES.items()}


def refuse_impossible_url_ids(endpoint: str | None, values: dict | None) -> None:
    """url_value_preprocessor of the app: an id in the path that its table cannot hold
    (past INTEGER for most tables, past BIGINT for contacts and events) is a 404 before
    any view looks it up — SQLite cannot bind a number past BIGINT and PostgreSQL refuses
    to compare an INTEGER column with one past INTEGER (both were 500s)."""
    if not values or (endpoint or "").startswith("api."):
        return  # the API checks its ids itself, with its own words (api.serialize.owned_or_404)
    for name, value in values.items():
        table = URL_ID_TABLES.get(name)
        if table is not None and id_or_none(db.metadata.tables[table], value) is None:
            abort(404)


def owned(model: type[T], object_id: object, account: Account | None = None) -> T | None:
    """The one way to load a tenant's row by an id that came from outside (URL, form,
    API, console): the row only if it belongs to `account` (the current account by
    default), else None — so another tenant's id and an id no row can have look the same."""
    object_id = id_or_none(model, object_id)
    if object_id is None:
        return None
    account_id = (account or g.account).id
    return db.session.scalar(model.owned_by(account_id).where(model.id == object_id))


def get_owned_or_404(model: type[T], object_id: int | str | None) -> T:
    """A page's tenant-owned row by id; another account's id is a 404 like any unknown one."""
    obj = owned(model, object_id)
    if obj is None:
        abort(404)
    return obj


def user_accounts(user) -> list[tuple[Account, Membership]]:
    rows = db.session.execute(
        db.select(Account, Membership)
        .join(Membership, Membership.account_id == Account.id)
        .where(Membership.user_id == user.id)
        .order_by(Account.name)
    )
    return [(a, m) for a, m in rows]
