"""The factory, configuration and health check."""

from __future__ import annotations

import pytest

from portal import create_app
from portal.config import build_config
from tests.workers import TEST_KEYS


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db.example/portal")
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.setenv("SUPPRESSION_KEY", "AB" * 32)
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path / "b"))
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "true")
    config = build_config()
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db.example/portal"
    assert config["SECRET_KEY"] == "from-env"
    assert config["SUPPRESSION_KEY"] == "ab" * 32
    assert config["BACKUP_DIR"] == str(tmp_path / "b")
    assert config["SESSION_COOKIE_SECURE"] is True


def test_defaults_are_safe_and_keep_the_secret_out_of_the_repo(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    first = build_config()
    second = build_config()
    assert first["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'portal.db'}"
    assert len(first["SECRET_KEY"]) >= 40
    assert first["SECRET_KEY"] == second["SECRET_KEY"], "the generated key must persist"
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert first["SESSION_COOKIE_HTTPONLY"] is True
    assert first["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert first["BACKUP_DIR"] == str(tmp_path / "backups")


def test_healthz_reports_database_and_queue(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["db"] == "ok"
    assert body["queue"] == "ok"


def test_healthz_is_503_when_the_queue_is_down(database_url, tmp_path):
    broken = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": "redis://127.0.0.1:1/0",
            **TEST_KEYS,
        }
    )
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body == {**body, "status": "error", "db": "ok", "queue": "down"}


def test_healthz_is_503_when_the_database_is_down(redis_url, tmp_path):
    broken = create_app(
        {
            "TESTING": True,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "x",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing/dir/x.db",
        }
    )
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["db"] == "down"


def test_security_headers_on_pages(client):
    response = client.get("/login")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_bootstrap_is_served_by_the_portal_not_a_cdn(client):
    html = client.get("/login").get_data(as_text=True)
    assert "cdn." not in html and "jsdelivr" not in html
    css = [line for line in html.splitlines() if "bootstrap" in line and ".css" in line]
    assert css, "bootstrap css link missing"
    href = css[0].split('href="')[1].split('"')[0]
    assert client.get(href).status_code == 200


@pytest.mark.parametrize("path", ["/nope", "/a/unknown-account/"])
def test_unknown_pages_are_404(client, owner, path):
    """Signed in, a page that does not exist and an account that does not exist are
    both 404 — nothing else (it used to accept a 302 too, which passed for any redirect)."""
    assert client.get(path).status_code == 404


def test_signed_out_an_unknown_account_goes_to_login_like_a_real_one(app, make_account):
    """Signed out, /a/<slug>/ asks for the login first whether the account exists or not,
    so the answer does not tell which slugs are taken; a page that exists nowhere is 404."""
    make_account("real")
    anonymous = app.test_client()
    unknown, real = anonymous.get("/a/unknown-account/"), anonymous.get("/a/real/")
    assert unknown.status_code == real.status_code == 302
    assert "/login" in unknown.headers["Location"] and "/login" in real.headers["Location"]
    assert anonymous.get("/nope").status_code == 404
