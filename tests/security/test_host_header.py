"""Host-header poisoning (issue 16, point 2): every link in a mail comes from BASE_URL.

A request with `Host: evil.example` (or `X-Forwarded-Host: evil.example`, as a proxy
would pass it on) asks for a password reset, an invitation, a sign-up confirmation and a
sender address confirmation;
each mail must link to BASE_URL and name the forged host nowhere. Before the fix the
reset mail carried http://evil.example/password/reset/<valid token>."""

from __future__ import annotations

import re

import pytest

from portal.accounts.models import Role
from portal.contacts.models import Group
from portal.extensions import db
from portal.mail import outbox_messages
from tests.helpers.auth import PASSWORD

EVIL = "evil.example"
BASE_URL = "https://portal.example.com/app"

# how the forged host reaches the portal: the Host header itself (base_url of the test
# client, so that its cookies follow), a proxy's X-Forwarded-Host, or both at once
FORGERIES = {
    "Host": ({"base_url": f"http://{EVIL}"}, {}),
    "X-Forwarded-Host": ({}, {"X-Forwarded-Host": EVIL, "X-Forwarded-Proto": "http"}),
    "both": (
        {"base_url": f"http://{EVIL}"},
        {"X-Forwarded-Host": f"{EVIL}:8443", "X-Forwarded-Server": EVIL},
    ),
}


@pytest.fixture
def base_url(app, monkeypatch):
    """A BASE_URL unlike the test client's host, with a path prefix (behind a proxy).
    SERVER_NAME is unset as in production (the test app's "localhost" would otherwise be
    what url_for(_external=True) used, and hide the forged host)."""
    monkeypatch.setitem(app.config, "BASE_URL", BASE_URL)
    monkeypatch.setitem(app.config, "SERVER_NAME", None)
    return BASE_URL


def _forged(client, forgery: str):
    kwargs, headers = FORGERIES[forgery]

    def request(method: str, path: str, **extra):
        return client.open(path, method=method, headers=headers, **kwargs, **extra)

    return request


def _only_mail(app):
    with app.app_context():
        messages = outbox_messages()
    assert len(messages) == 1, [m["Subject"] for m in messages]
    return messages[0]


def _assert_links_from_base_url(message, path_pattern: str) -> None:
    body = message.get_content()
    assert EVIL not in body and EVIL not in str(message)
    links = re.findall(r"https?://\S+", body)
    assert links, body
    for link in links:
        assert link.startswith(BASE_URL + "/"), link
    assert any(re.fullmatch(re.escape(BASE_URL) + path_pattern, link) for link in links), links


@pytest.mark.parametrize("forgery", FORGERIES)
def test_password_reset_mail_links_to_base_url(app, client, make_user, base_url, forgery):
    make_user("owner@acme.example")
    response = _forged(client, forgery)(
        "POST", "/password/forgot", data={"email": "owner@acme.example"}
    )
    assert response.status_code == 302
    message = _only_mail(app)
    _assert_links_from_base_url(message, r"/password/reset/[\w.-]+")
    # and the link works where BASE_URL points (its path below the prefix)
    path = re.search(r"/app(/password/reset/\S+)", message.get_content()).group(1)
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("forgery", FORGERIES)
def test_invitation_mail_links_to_base_url(app, make_account, make_user, base_url, forgery):
    make_user("owner@acme.example", make_account("acme"), Role.OWNER)
    forged = _forged(app.test_client(), forgery)
    data = {"email": "owner@acme.example", "password": PASSWORD}
    assert forged("POST", "/login", data=data).status_code == 302
    response = forged(
        "POST", "/a/acme/settings/team", data={"email": "new@acme.example", "role": "editor"}
    )
    assert response.status_code == 302
    _assert_links_from_base_url(_only_mail(app), r"/invite/[\w-]+")


@pytest.mark.parametrize("forgery", FORGERIES)
def test_sign_up_confirmation_mail_links_to_base_url(app, data, base_url, forgery):
    with app.app_context():
        token = db.session.get(Group, data.group("Newsletter")).signup_token
    forged = _forged(app.test_client(), forgery)
    page = forged("GET", f"/f/{token}").get_data(as_text=True)
    key = re.search(r'name="form_key" type="hidden" value="([^"]+)"', page).group(1)
    response = forged("POST", f"/f/{token}", data={"email": "zoe@example.com", "form_key": key})
    assert response.status_code == 200
    _assert_links_from_base_url(_only_mail(app), rf"/f/{token}/confirm/[\w-]+")


@pytest.mark.parametrize("forgery", FORGERIES)
def test_sender_address_confirmation_mail_links_to_base_url(
    app, make_account, make_user, base_url, forgery
):
    make_user("owner@acme.example", make_account("acme"), Role.OWNER)
    forged = _forged(app.test_client(), forgery)
    data = {"email": "owner@acme.example", "password": PASSWORD}
    assert forged("POST", "/login", data=data).status_code == 302
    response = forged("POST", "/a/acme/settings/sender", data={"email": "news@acme.example"})
    assert response.status_code == 302
    _assert_links_from_base_url(_only_mail(app), r"/sender/confirm/[\w-]+")


@pytest.mark.parametrize("forgery", FORGERIES)
def test_the_form_address_and_snippet_on_the_group_page_use_base_url(app, data, base_url, forgery):
    group = data.group("Newsletter")
    with app.app_context():
        token = db.session.get(Group, group).signup_token
    forged = _forged(app.test_client(), forgery)
    data_ = {"email": "owner@acme.example", "password": PASSWORD}
    assert forged("POST", "/login", data=data_).status_code == 302
    page = forged("GET", f"/a/acme/groups/{group}").get_data(as_text=True)
    assert f"{BASE_URL}/f/{token}" in page
    assert f"{EVIL}/f/" not in page


def test_a_base_url_that_is_no_address_stops_the_start():
    from portal.config import check_base_url

    assert check_base_url("https://portal.example.com/") == "https://portal.example.com"
    for wrong in ("portal.example.com", "ftp://portal.example.com", "https://", "https://x/?a=1"):
        with pytest.raises(ValueError, match="BASE_URL"):
            check_base_url(wrong)
