"""How the portal knows a person: the normalized address, and the keyed hash that is all
that stays of a forgotten one (the suppression list), which every write path checks
(imports, restores, the API, edits, the sign-up form). It sits below the areas because
contacts, imports, backups and lifecycle all need it.

The key is SUPPRESSION_KEY (portal.config.load_suppression_key), never SECRET_KEY:
sessions and links may rotate their key, the list of forgotten people must not lose its
own. A key is 32 bytes (64 hex digits); after `flask portal rekey-suppressions` it is a
chain "k1:k2:…", and a hash is HMAC(k_n, … HMAC(k_2, HMAC(k_1, address)) …) — the list
can be moved to a new key without the addresses, which it does not have.

A fingerprint of the key sits in the database (SuppressionKey). A process with another
key refuses every check (SuppressionKeyMismatch) instead of finding nobody forgotten."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from flask import current_app, g
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, UniqueConstraint
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from portal import clock
from portal.core.errors import ServiceError
from portal.core.sql import is_postgres
from portal.database import TenantOwned, UTCDateTime
from portal.extensions import db


def normalize_email(email: str) -> str:
    """Lower-cased, syntax-checked address; raises ServiceError on a bad one."""
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ServiceError(_l("This is not a valid email address.")) from exc
    return result.normalized.lower()


class Suppression(TenantOwned, db.Model):
    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("account_id", "email_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class SuppressionKey(db.Model):
    """One row: a fingerprint of the key the suppression list is hashed with. A process
    whose SUPPRESSION_KEY gives another fingerprint refuses every suppression check
    instead of finding nobody forgotten (portal.core.privacy); only
    `flask portal rekey-suppressions` moves the list and this row together."""

    __tablename__ = "suppression_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


_CHECK = b"portal suppression key check v1"
_KEY_ROW = 1


class SuppressionKeyMismatch(RuntimeError):
    """The configured SUPPRESSION_KEY is not the key the list is hashed with."""


def parse_key(value: str) -> list[bytes]:
    """The keys of a SUPPRESSION_KEY value ("hex" or "hex:hex:…", checked at start)."""
    return [bytes.fromhex(part) for part in value.split(":")]


def chain_hash(keys: Sequence[bytes], data: str) -> str:
    """HMAC-SHA256 with each key in turn: the first over the address, every later one
    over the hex of the one before — what re-keying did to the stored hashes."""
    value = data
    for key in keys:
        value = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
    return value


def fingerprint(keys: Sequence[bytes]) -> str:
    """What the database keeps of a key: reveals nothing of it, tells two keys apart."""
    return chain_hash(keys, _CHECK.hex())


def _keys() -> list[bytes]:
    """The configured key, once checked against the database's fingerprint per app
    context (a request, a job, a command)."""
    value = current_app.config["SUPPRESSION_KEY"]
    if g.get("_suppression_key_checked") == value:
        return parse_key(value)
    keys = parse_key(value)
    check_key(keys)
    g._suppression_key_checked = value
    return keys


def check_key(keys: Sequence[bytes]) -> None:
    """Raise SuppressionKeyMismatch unless the list is hashed with `keys`; the first
    check of a database records the fingerprint."""
    mine = fingerprint(keys)
    stored = db.session.scalar(
        db.select(SuppressionKey.fingerprint).where(SuppressionKey.id == _KEY_ROW)
    )
    if stored is None:
        # the first check records it; if another process is first, its row stays and
        # is what this key is compared with
        insert = postgresql.insert if is_postgres() else sqlite.insert
        db.session.execute(
            insert(SuppressionKey)
            .values(id=_KEY_ROW, fingerprint=mine, changed_at=clock.now())
            .on_conflict_do_nothing()
        )
        stored = db.session.scalar(
            db.select(SuppressionKey.fingerprint).where(SuppressionKey.id == _KEY_ROW)
        )
    if not hmac.compare_digest(stored, mine):
        raise SuppressionKeyMismatch(
            "SUPPRESSION_KEY is not the key of the suppression list: every check is refused "
            "so that no forgotten person comes back. Restore the previous key; change it "
            "only with `flask portal rekey-suppressions`."
        )


def email_hash(normalized_email: str, key: Sequence[bytes] | None = None) -> str:
    """HMAC-SHA256 of the normalized address; without the key it reveals nothing."""
    return chain_hash(key or _keys(), normalized_email)


def hasher() -> Callable[[str], str]:
    """A fast hashing function bound to the key, for bulk work such as imports."""
    keys = _keys()
    if len(keys) == 1:
        key = keys[0]
        return lambda normalized_email: hmac.new(
            key, normalized_email.encode(), hashlib.sha256
        ).hexdigest()
    return lambda normalized_email: chain_hash(keys, normalized_email)


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


def rekey(new_key: bytes, *, batch: int = 5000) -> tuple[str, int]:
    """Move the whole list to the chain "<current key>:<new key>" in the caller's
    transaction (all or nothing): every stored hash h becomes HMAC(new key, h), and the
    fingerprint follows. Returns the new SUPPRESSION_KEY value and the rows moved; the
    caller commits and then makes every process use the new value."""
    current = current_app.config["SUPPRESSION_KEY"]
    keys = parse_key(current)
    check_key(keys)
    table = Suppression.__table__
    moved, last_id = 0, 0
    while True:
        rows = db.session.execute(
            db.select(table.c.id, table.c.email_hash)
            .where(table.c.id > last_id)
            .order_by(table.c.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        db.session.execute(
            table.update()
            .where(table.c.id == db.bindparam("row_id"))
            .values(email_hash=db.bindparam("new_hash")),
            [{"row_id": i, "new_hash": chain_hash([new_key], h)} for i, h in rows],
        )
        moved += len(rows)
        last_id = rows[-1][0]
    new_value = f"{current}:{new_key.hex()}"
    row = db.session.get(SuppressionKey, _KEY_ROW)
    row.fingerprint = fingerprint(parse_key(new_value))
    row.changed_at = clock.now()
    db.session.flush()
    return new_value, moved
