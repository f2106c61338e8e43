"""The flags of the session and remember-me cookies, by default and with
SESSION_COOKIE_SECURE=true (as behind HTTPS in production)."""

from __future__ import annotations

from tests.helpers.auth import PASSWORD
from tests.workers import TEST_KEYS


def _cookie(response, name: str) -> str:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no {name} cookie in {response.headers.getlist('Set-Cookie')}")


def _flags(header: str) -> set[str]:
    return {part.strip().lower() for part in header.split(";")[1:]}


def _sign_in(client, email):
    response = client.post("/login", data={"email": email, "password": PASSWORD, "remember": "y"})
    assert response.status_code == 302
    return response


def test_session_and_remember_cookies_are_httponly_and_samesite_lax(app, make_account, make_user):
    make_user("cookie@acme.example", make_account("acme"))
    response = _sign_in(app.test_client(), "cookie@acme.example")
    for name in ("session", "remember_token"):
        flags = _flags(_cookie(response, name))
        assert "httponly" in flags and "samesite=lax" in flags, (name, flags)
        assert "secure" not in flags  # plain http in development (SESSION_COOKIE_SECURE unset)


def test_session_cookie_secure_true_marks_both_cookies_secure(
    app, make_account, make_user, monkeypatch, database_url, redis_url
):
    from portal import create_app
    from portal.config import build_config

    monkeypatch.setenv("SESSION_COOKIE_SECURE", "true")
    config = build_config()
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]
    make_user("secure@acme.example", make_account("acme"))
    secure_app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            **TEST_KEYS,
            "WTF_CSRF_ENABLED": False,
            "SERVER_NAME": "localhost",
        }
    )
    client = secure_app.test_client()
    response = client.post(
        "/login",
        data={"email": "secure@acme.example", "password": PASSWORD, "remember": "y"},
        base_url="https://localhost",
    )
    assert response.status_code == 302
    for name in ("session", "remember_token"):
        flags = _flags(_cookie(response, name))
        assert {"secure", "httponly", "samesite=lax"} <= flags, (name, flags)
