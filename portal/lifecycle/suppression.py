"""The keyed hash of forgotten addresses and the checks every write path uses."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app

from portal.extensions import db
from portal.lifecycle.models import Suppression


def _key() -> bytes:
    return hashlib.sha256(b"suppression:" + current_app.config["SECRET_KEY"].encode()).digest()


def email_hash(normalized_email: str, key: bytes | None = None) -> str:
    """HMAC-SHA256 of the normalized address; without the secret it reveals nothing."""
    return hmac.new(key or _key(), normalized_email.encode(), hashlib.sha256).hexdigest()


def hasher():
    """A fast hashing function bound to the key, for bulk work such as imports."""
    key = _key()
    return lambda normalized_email: email_hash(normalized_email, key)


def is_suppressed(account_id: int, normalized_email: str) -> bool:
    return (
        db.session.scalar(
            db.select(Suppression.id).where(
                Suppression.account_id == account_id,
                Suppression.email_hash == email_hash(normalized_email),
            )
        )
        is not None
    )
