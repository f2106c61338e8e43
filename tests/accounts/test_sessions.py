"""Sessions end when they should (issue 16, point 1): a copy of the session cookie or of
the "stay signed in" cookie, kept from before an event, is replayed in a fresh browser
after it and must land on the sign-in page. Events: signing out, signing out
everywhere, a password reset, a password change, a role taken away (removed from the
account or lowered). Before the event the same replay opens the portal (the control that
shows the replay itself works)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine

from portal import clock
from portal.accounts.models import LoginSession, Membership, Role, User
from portal.extensions import db
from portal.mail import outbox_messages
from tests.helpers.auth import PASSWORD, login

MEMBER = "member@acme.example"
NEW_PASSWORD = "another-long-password"
COOKIES = ("session", "remember_token")


def _sign_in(app, email: str = MEMBER, *, remember: bool = True):
    client = app.test_client()
    data = {"email": email, "password": PASSWORD}
    if remember:
        data["remember"] = "y"
    response = client.post("/login", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def _cookie(client, name: str) -> str:
    cookie = client.get_cookie(name)
    assert cookie is not None, f"no {name} cookie"
    return cookie.value


def _replay(app, name: str, value: str):
    """A fresh browser that has nothing but this one cookie asks for a signed-in page."""
    fresh = app.test_client()
    fresh.set_cookie(name, value)
    return fresh.get("/accounts")


def _is_sign_in_page(response) -> bool:
    return response.status_code == 302 and "/login" in response.headers["Location"]


def _membership_id(app, email: str) -> int:
    with app.app_context():
        return db.session.scalar(db.select(Membership.id).join(User).where(User.email == email))


def _reset_by_mail(app):
    other = app.test_client()
    assert other.post("/password/forgot", data={"email": MEMBER}).status_code == 302
    with app.app_context():
        body = outbox_messages()[-1].get_content()
    path = re.search(r"https?://[^/\s]+(/password/reset/\S+)", body).group(1)
    response = other.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def _change_password(app, client):
    response = client.post(
        "/profile/password",
        data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def _remove_from_account(app, client):
    owner = _sign_in(app, "owner@acme.example", remember=False)
    membership_id = _membership_id(app, MEMBER)
    response = owner.post(f"/a/acme/settings/team/{membership_id}/remove")
    assert response.status_code == 302
    assert _membership_id(app, MEMBER) is None


def _lower_role(app, client):
    owner = _sign_in(app, "owner@acme.example", remember=False)
    membership_id = _membership_id(app, MEMBER)
    response = owner.post(f"/a/acme/settings/team/{membership_id}/role", data={"role": "viewer"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Membership, membership_id).role == "viewer"


EVENTS = {
    "sign out": lambda app, client: client.post("/logout"),
    "sign out everywhere": lambda app, client: client.post("/profile/sign-out-everywhere"),
    "password reset": lambda app, client: _reset_by_mail(app),
    "password change": _change_password,
    "removed from the account": _remove_from_account,
    "role lowered": _lower_role,
}


@pytest.fixture
def team(make_account, make_user):
    account_id = make_account("acme")
    make_user("owner@acme.example", account_id, Role.OWNER)
    make_user(MEMBER, account_id, Role.ADMIN)
    return account_id


@pytest.mark.parametrize("cookie", COOKIES)
@pytest.mark.parametrize("event", EVENTS)
def test_an_old_cookie_replayed_after_the_event_gets_the_sign_in_page(app, team, event, cookie):
    client = _sign_in(app)
    old = _cookie(client, cookie)
    assert _replay(app, cookie, old).status_code == 200, "control: before the event it works"

    EVENTS[event](app, client)

    response = _replay(app, cookie, old)
    assert _is_sign_in_page(response), (event, cookie, response.status_code)
    assert _is_sign_in_page(_replay(app, cookie, old)), "and it stays refused"


def test_password_change_keeps_this_browser_and_ends_every_other(app, team):
    here = _sign_in(app)
    elsewhere = _sign_in(app)
    _change_password(app, here)
    assert here.get("/accounts").status_code == 200
    assert _replay(app, "remember_token", _cookie(here, "remember_token")).status_code == 200
    assert _is_sign_in_page(elsewhere.get("/accounts"))
    assert login(app.test_client(), MEMBER, NEW_PASSWORD).status_code == 302


def test_password_change_asks_for_the_current_password(app, team):
    client = _sign_in(app)
    other = _sign_in(app)
    response = client.post(
        "/profile/password",
        data={
            "current_password": "not-the-password",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert response.status_code == 200
    assert "The current password is wrong." in response.get_data(as_text=True)
    assert other.get("/accounts").status_code == 200, "nothing ended"
    assert login(app.test_client(), MEMBER).status_code == 302, "the old password still works"


def test_password_change_page_is_translated_and_linked_from_the_profile(app, team):
    client = _sign_in(app)
    profile = client.get("/profile?lang=de").get_data(as_text=True)
    assert 'href="/profile/password"' in profile
    assert 'action="/profile/sign-out-everywhere"' in profile
    assert "Überall abmelden" in profile
    page = client.get("/profile/password?lang=de").get_data(as_text=True)
    assert "Aktuelles Passwort" in page


def test_sign_out_everywhere_ends_every_browser_and_the_remembered_ones(app, team):
    here = _sign_in(app)
    phone = _sign_in(app)
    laptop = _sign_in(app, remember=False)
    response = here.post("/profile/sign-out-everywhere")
    assert _is_sign_in_page(response)
    for client in (here, phone, laptop):
        assert _is_sign_in_page(client.get("/accounts"))
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(LoginSession.id))) == 0
    assert login(app.test_client(), MEMBER).status_code == 302, "signing in again works"


def test_signing_out_ends_only_this_browser(app, team):
    here = _sign_in(app)
    there = _sign_in(app)
    here.post("/logout")
    assert _is_sign_in_page(here.get("/accounts"))
    assert there.get("/accounts").status_code == 200


def test_every_sign_in_has_its_own_remember_token_stored_only_as_a_hash(app, team):
    first, second = _sign_in(app), _sign_in(app)
    tokens = {_cookie(first, "remember_token"), _cookie(second, "remember_token")}
    assert len(tokens) == 2
    with app.app_context():
        stored = set(db.session.scalars(db.select(LoginSession.token_hash)))
    assert len(stored) == 2
    for token in tokens:
        secret = token.split("|")[0].rsplit(".", 1)[1]
        assert all(secret not in value for value in stored)


def test_a_remembered_sign_in_ends_on_the_server_after_remember_days(app, team):
    client = _sign_in(app)
    remember = _cookie(client, "remember_token")
    days = app.config["REMEMBER_DAYS"]
    with time_machine.travel(clock.now() + timedelta(days=days - 1), tick=False):
        assert _replay(app, "remember_token", remember).status_code == 200
    with time_machine.travel(clock.now() + timedelta(days=days, minutes=1), tick=False):
        assert _is_sign_in_page(_replay(app, "remember_token", remember))


def test_a_session_without_remember_ends_after_the_session_lifetime(app, team):
    client = _sign_in(app, remember=False)
    assert client.get_cookie("remember_token") is None
    session = _cookie(client, "session")
    hours = app.config["PERMANENT_SESSION_LIFETIME"] // 3600
    with time_machine.travel(clock.now() + timedelta(hours=hours, minutes=1), tick=False):
        assert _is_sign_in_page(_replay(app, "session", session))


def test_a_deactivated_user_is_signed_out(app, team):
    client = _sign_in(app)
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == MEMBER))
        user.active = False
        db.session.commit()
    assert _is_sign_in_page(client.get("/accounts"))


@pytest.mark.parametrize(
    "value",
    ["1", "1.0", "x.0.abc", "1.0.", "99999999999999999999999.0.abc", "1.99999999999.abc"],
)
def test_forged_session_values_open_nothing(app, team, value):
    from portal.accounts import service

    with app.app_context():
        assert service.user_for_login(value) is None
