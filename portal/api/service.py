"""API keys: create (the plain key is returned once), revoke, look up, last use.

Like every service: explicit arguments, flush; the caller commits."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal import clock
from portal.api.models import ApiKey, Scope
from portal.contacts.models import Source
from portal.core import audit
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.tenancy import owned

if TYPE_CHECKING:
    from portal.accounts.models import Account, User

KEY_PREFIX = "rpk_"
SHOWN_CHARS = 8  # random characters after "rpk_" kept in the clear to recognise a key
# last_used_at is written at most this often per key: a busy integration would otherwise
# turn every read into a write
TOUCH_EVERY = timedelta(minutes=1)
MAX_NAME = 100


def hash_key(plain: str) -> str:
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def _clean_name(name: str | None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError(_l("Please enter a name for the key."))
    if len(name) > MAX_NAME:
        raise ServiceError(_l("The name may have at most %(num)d characters.", num=MAX_NAME))
    return name


def _clean_scope(scope: Scope | str) -> Scope:
    try:
        return Scope(scope)
    except ValueError:
        raise ServiceError(_l("Choose “read” or “read and write” as the scope.")) from None


def create_key(
    account: Account,
    *,
    name: str,
    scope: Scope | str,
    actor: User | None,
    source: Source,
    ip: str | None = None,
) -> tuple[ApiKey, str]:
    """A new key for the account; returns the row and the plain key (shown once)."""
    name, scope = _clean_name(name), _clean_scope(scope)
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        account_id=account.id,
        name=name,
        scope=scope.value,
        prefix=plain[: len(KEY_PREFIX) + SHOWN_CHARS],
        key_hash=hash_key(plain),
        created_by_id=getattr(actor, "id", None) if not _is_key(actor) else None,
    )
    db.session.add(key)
    db.session.flush()
    audit.record(
        "api_key.created",
        account=account,
        actor=actor,
        object_type="api_key",
        object_id=key.id,
        details={"name": name, "scope": scope.value, "prefix": key.prefix, "source": source},
        ip=ip,
    )
    return key, plain


def _is_key(actor) -> bool:
    return getattr(actor, "audit_actor_type", None) == "api_key"


def revoke_key(key: ApiKey, *, actor: User | None, ip: str | None = None) -> bool:
    """Revoke the key at once; False when it was revoked already."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = clock.now()
    key.revoked_by_id = getattr(actor, "id", None)
    db.session.flush()
    audit.record(
        "api_key.revoked",
        account=key.account,
        actor=actor,
        object_type="api_key",
        object_id=key.id,
        details={"name": key.name, "prefix": key.prefix},
        ip=ip,
    )
    return True


def authenticate(plain: str | None) -> ApiKey | None:
    """The active key for this plain text, or None (unknown, malformed or revoked).
    The lookup compares hashes, so its timing says nothing about the key itself."""
    if not plain or not plain.startswith(KEY_PREFIX) or len(plain) > 200:
        return None
    digest = hash_key(plain)
    key = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if key is None or not key.is_active:
        return None
    return key


def touch(key: ApiKey) -> bool:
    """Note the key's use; True when the row changed (the caller commits)."""
    now = clock.now()
    if key.last_used_at is not None and now - key.last_used_at < TOUCH_EVERY:
        return False
    key.last_used_at = now
    db.session.flush()
    return True


def keys_of(account: Account) -> list[ApiKey]:
    """The account's keys, active ones first, newest first."""
    return list(
        db.session.scalars(
            select(ApiKey)
            .where(ApiKey.account_id == account.id)
            .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id.desc())
        )
    )


def get_key(account: Account, key_id: int) -> ApiKey | None:
    return owned(ApiKey, key_id, account)
