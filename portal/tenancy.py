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


def get_owned_or_404(model: type[T], object_id: int) -> T:
    """Load a tenant-owned row by id, only if it belongs to the current account."""
    obj = db.session.scalar(
        db.select(model).where(model.id == object_id, model.account_id == g.account.id)
    )
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
