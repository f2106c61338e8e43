"""The suppression list has its own key (issue 16, point 4): rotating SECRET_KEY keeps
everyone forgotten, the key moves only with `flask portal rekey-suppressions`, and a
process with another key refuses every suppression check instead of finding nobody.

Each test builds apps of its own, with an instance folder of its own (where the key
file lives), as a deploy with a new SECRET_KEY would — on a SQLite database of the test's
own also when the suite runs on PostgreSQL: a key kept in the instance folder exists only
on SQLite (one machine); on PostgreSQL the portal does not start without SUPPRESSION_KEY
in the environment (tests/test_shared_keys.py)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from portal import create_app
from portal.accounts import service as accounts
from portal.accounts.models import Account
from portal.api import service as api_keys
from portal.contacts import service as contacts
from portal.contacts.models import Contact
from portal.core import privacy
from portal.core.privacy import Suppression
from portal.extensions import db
from portal.lifecycle import service as lifecycle

GONE = "gone@example.com"


@pytest.fixture
def make_app(redis_url, tmp_path, monkeypatch):
    """make_app(secret, **config): an app on this test's SQLite database whose instance
    folder is this test's (the same for every app of the test); engines are closed at
    the end."""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.delenv("SUPPRESSION_KEY", raising=False)
    made = []

    def make(secret: str, **config):
        app = create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'keys.db'}",
                "REDIS_URL": redis_url,
                "SECRET_KEY": secret,
                "WTF_CSRF_ENABLED": False,
                "SERVER_NAME": "localhost",
                "BASE_URL": "http://localhost",
            }
            | config
        )
        if not made:
            with app.app_context():
                db.create_all()
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _forget_someone(app) -> str:
    """An account whose contact GONE is forgotten; returns a write API key."""
    with app.app_context():
        account = accounts.create_account("Acme", "acme")
        contact = contacts.create_contact(account, GONE, first_name="Gone", source="ui")
        lifecycle.forget_contact(contact, actor=None, source="ui")
        _, key = api_keys.create_key(account, name="Shop", scope="write", actor=None, source="ui")
        db.session.commit()
        return key


def _account() -> Account:
    return db.session.scalar(db.select(Account).where(Account.slug == "acme"))


def _api_upsert(app, key: str):
    return app.test_client().post(
        "/api/v1/contacts",
        json={"email": GONE, "first_name": "Back"},
        headers={"Authorization": f"Bearer {key}"},
    )


def _stored_hashes() -> list[str]:
    return list(db.session.scalars(db.select(Suppression.email_hash)))


def test_rotating_secret_key_keeps_everyone_forgotten(make_app):
    before = make_app("the-first-secret-key")
    key = _forget_someone(before)
    after = make_app("a-rotated-secret-key")  # same instance folder, new SECRET_KEY
    with after.app_context():
        account = _account()
        assert lifecycle.is_forgotten(account, GONE)
        # what imports and backup restores use: the same hash as the stored one
        assert privacy.hasher()(GONE) in _stored_hashes()
        with pytest.raises(contacts.ContactForgotten):
            contacts.create_contact(account, GONE, source="ui")
        db.session.rollback()
    response = _api_upsert(after, key)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "forgotten"
    with after.app_context():
        assert db.session.scalar(db.select(Contact).where(Contact.email == GONE)) is None


def test_the_first_key_is_the_one_the_list_had_so_far(make_app, tmp_path):
    """An existing list (hashed with the key derived from SECRET_KEY) keeps working after
    the upgrade: the key file made on the first start holds that key."""
    app = make_app("the-first-secret-key")
    legacy = hashlib.sha256(b"suppression:the-first-secret-key").digest()
    with app.app_context():
        assert privacy.email_hash(GONE) == hmac.new(legacy, GONE.encode(), "sha256").hexdigest()
    path = tmp_path / "instance" / "suppression_key"
    assert path.read_text() == legacy.hex()
    assert path.stat().st_mode & 0o777 == 0o600


def test_rekey_moves_the_list_and_everyone_stays_forgotten(make_app, tmp_path):
    app = make_app("the-first-secret-key")
    key = _forget_someone(app)
    path = tmp_path / "instance" / "suppression_key"
    old_key = path.read_text()
    with app.app_context():
        old_hashes = _stored_hashes()

    result = app.test_cli_runner().invoke(args=["portal", "rekey-suppressions"])
    assert result.exit_code == 0, result.output
    assert "1 suppression entry moved to the new key." in result.output

    new_key = path.read_text()
    assert new_key.startswith(old_key + ":") and len(new_key.split(":")) == 2
    assert not (tmp_path / "instance" / "suppression_key.new").exists()
    later = make_app("yet-another-secret-key")  # reads the new key file
    with later.app_context():
        assert _stored_hashes() != old_hashes
        assert lifecycle.is_forgotten(_account(), GONE)
        assert privacy.hasher()(GONE) in _stored_hashes()
    assert _api_upsert(later, key).status_code == 409

    stale = make_app("the-first-secret-key", SUPPRESSION_KEY=old_key)  # a node not told
    with stale.app_context(), pytest.raises(privacy.SuppressionKeyMismatch):
        lifecycle.is_forgotten(_account(), GONE)


def test_rekey_with_the_key_in_the_environment_prints_the_new_value(make_app, monkeypatch):
    first = "ab" * 32
    monkeypatch.setenv("SUPPRESSION_KEY", first)
    app = make_app("the-first-secret-key")
    _forget_someone(app)
    chosen = "cd" * 32
    result = app.test_cli_runner().invoke(
        args=["portal", "rekey-suppressions", "--new-key", chosen]
    )
    assert result.exit_code == 0, result.output
    assert f"{first}:{chosen}" in result.output
    monkeypatch.setenv("SUPPRESSION_KEY", f"{first}:{chosen}")
    with make_app("x").app_context():
        assert lifecycle.is_forgotten(_account(), GONE)


def test_a_key_changed_by_hand_refuses_every_check_and_lets_nobody_back(make_app):
    key = _forget_someone(make_app("the-first-secret-key"))
    changed = make_app("the-first-secret-key", SUPPRESSION_KEY="ef" * 32)
    with changed.app_context():
        with pytest.raises(privacy.SuppressionKeyMismatch):
            lifecycle.is_forgotten(_account(), GONE)
        with pytest.raises(privacy.SuppressionKeyMismatch):
            privacy.hasher()
    response = _api_upsert(changed, key)
    assert response.status_code == 500
    with changed.app_context():
        assert db.session.scalar(db.select(Contact).where(Contact.email == GONE)) is None
    result = changed.test_cli_runner().invoke(args=["portal", "rekey-suppressions"])
    assert result.exit_code != 0 and "not the key of the suppression list" in result.output


@pytest.mark.parametrize("value", ["secret", "ab" * 31, "ab" * 32 + ":", "zz" * 32])
def test_a_key_that_is_no_key_stops_the_start(make_app, monkeypatch, value):
    monkeypatch.setenv("SUPPRESSION_KEY", value)
    with pytest.raises(ValueError, match="SUPPRESSION_KEY"):
        make_app("the-first-secret-key")
