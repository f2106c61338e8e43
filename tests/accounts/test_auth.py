"""Sign-in, sign-out, CSRF, rate limits and password reset."""

from __future__ import annotations

import re

from portal.accounts.models import Role
from portal.mail import outbox_messages
from tests.helpers.auth import PASSWORD, csrf_token_from, login


def test_owner_signs_in_and_lands_on_the_account_home(client, make_account, make_user):
    account_id = make_account("acme", name="Acme GmbH")
    make_user("owner@acme.example", account_id, Role.OWNER)
    response = login(client, "owner@acme.example")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/a/acme/")
    page = client.get("/a/acme/").get_data(as_text=True)
    assert "Acme GmbH" in page


def test_password_is_stored_hashed(app, make_user):
    from portal.accounts.models import User
    from portal.extensions import db

    make_user("someone@acme.example")
    with app.app_context():
        user = db.session.scalar(db.select(User))
        assert PASSWORD not in user.password_hash
        assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))


def test_wrong_password_is_refused_with_a_message(client, make_user):
    make_user("owner@acme.example")
    response = login(client, "owner@acme.example", "wrong-password-1")
    assert response.status_code == 401
    assert "Email or password is wrong." in response.get_data(as_text=True)
    assert client.get("/accounts").status_code == 302  # still anonymous


def test_unknown_email_gets_the_same_answer(client):
    response = login(client, "nobody@acme.example", "whatever-password")
    assert response.status_code == 401
    assert "Email or password is wrong." in response.get_data(as_text=True)


def test_logout_ends_the_session(client, owner):
    assert client.get("/a/acme/").status_code == 200
    client.post("/logout")
    response = client.get("/a/acme/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_login_is_rate_limited(client, make_user):
    make_user("owner@acme.example")
    codes = [
        login(client, "owner@acme.example", f"wrong-{i}-password").status_code for i in range(6)
    ]
    assert codes[:5] == [401] * 5
    assert codes[5] == 429
    # even the right password waits now
    assert login(client, "owner@acme.example").status_code == 429


def test_csrf_token_is_required_on_login(app, client, make_user):
    make_user("owner@acme.example")
    app.config["WTF_CSRF_ENABLED"] = True
    response = login(client, "owner@acme.example")
    assert response.status_code == 400
    assert "The form has expired" in response.get_data(as_text=True)
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"email": "owner@acme.example", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302


def test_csrf_token_is_required_on_logout(app, client, owner):
    app.config["WTF_CSRF_ENABLED"] = True
    client.post("/logout")
    assert client.get("/a/acme/").status_code == 200, "a forged logout must not sign out"


def test_session_cookie_flags(client, make_user):
    make_user("owner@acme.example")
    response = login(client, "owner@acme.example")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_next_parameter_cannot_redirect_off_site(client, make_user):
    make_user("owner@acme.example")
    response = client.post(
        "/login?next=https://evil.example/",
        data={"email": "owner@acme.example", "password": PASSWORD},
    )
    assert "evil.example" not in response.headers["Location"]


def test_next_parameter_returns_to_the_page_asked_for(client, make_account, make_user):
    account_id = make_account("acme")
    make_user("owner@acme.example", account_id)
    first = client.get("/a/acme/settings")
    assert first.status_code == 302 and "/login" in first.headers["Location"]
    response = client.post(
        first.headers["Location"], data={"email": "owner@acme.example", "password": PASSWORD}
    )
    assert response.headers["Location"].endswith("/a/acme/settings")


def _reset_link(app) -> str:
    with app.app_context():
        messages = outbox_messages()
    assert len(messages) == 1
    body = messages[-1].get_content()
    return re.search(r"http://localhost(/password/reset/\S+)", body).group(1)


def test_password_reset_by_emailed_link(app, client, make_user):
    make_user("owner@acme.example", locale="de")
    response = client.post("/password/forgot", data={"email": "owner@acme.example"})
    assert response.status_code == 302
    with app.app_context():
        message = outbox_messages()[-1]
    assert message["To"] == "owner@acme.example"
    path = _reset_link(app)
    response = client.post(
        path, data={"password": "a-brand-new-pass", "confirm": "a-brand-new-pass"}
    )
    assert response.status_code == 302
    assert login(client, "owner@acme.example").status_code == 401
    assert login(client, "owner@acme.example", "a-brand-new-pass").status_code == 302
    # the link works only once
    client.post("/logout")
    again = client.get(path)
    assert again.status_code == 302 and "/password/forgot" in again.headers["Location"]


def test_password_reset_for_unknown_address_sends_nothing(app, client):
    response = client.post("/password/forgot", data={"email": "nobody@acme.example"})
    assert response.status_code == 302
    with app.app_context():
        assert outbox_messages() == []


def test_too_short_new_password_is_refused(app, client, make_user):
    make_user("owner@acme.example")
    client.post("/password/forgot", data={"email": "owner@acme.example"})
    path = _reset_link(app)
    response = client.post(path, data={"password": "short", "confirm": "short"})
    assert response.status_code == 200
    assert login(client, "owner@acme.example").status_code == 302


def test_login_limit_also_counts_per_address_across_ips(client, make_user):
    make_user("owner@acme.example")
    for i in range(5):
        response = client.post(
            "/login",
            data={"email": "owner@acme.example", "password": f"wrong-{i}-password"},
            environ_base={"REMOTE_ADDR": f"10.0.0.{i + 1}"},
        )
        assert response.status_code == 401
    response = client.post(
        "/login",
        data={"email": "owner@acme.example", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.99"},
    )
    assert response.status_code == 429


def test_staff_land_on_the_support_console_after_signing_in(client, make_user):
    make_user("support@portal.example", is_staff=True)
    response = login(client, "support@portal.example")
    assert response.status_code == 302 and response.headers["Location"].endswith("/support/")
