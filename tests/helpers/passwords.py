"""Cheap password hashes for the test process.

werkzeug hashes with scrypt by default (tens of milliseconds a hash, most of a second on
a busy two-core machine), and nearly every test creates a user and signs in: before this,
half of the suite's time went into `_hashlib.scrypt`. The tests hash with one round of
pbkdf2 instead. check_password_hash reads the method from the stored hash, so checking
is cheap too, and the portal's own code is unchanged: worker processes the tests start,
and production, keep werkzeug's default."""

from __future__ import annotations

import werkzeug.security

FAST_METHOD = "pbkdf2:sha256:1"
_real_generate = werkzeug.security.generate_password_hash


def _generate_cheaply(password: str, method: str = FAST_METHOD, salt_length: int = 16) -> str:
    return _real_generate(password, method=method, salt_length=salt_length)


def hash_passwords_cheaply() -> None:
    """Must run before `portal` is imported: its modules bind `generate_password_hash`
    (and hash a dummy password for equal login timing) when they are imported."""
    werkzeug.security.generate_password_hash = _generate_cheaply
