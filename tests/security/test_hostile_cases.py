"""The single hostile inputs of issue 16, point 9 that were 500s, one by one: each now
answers 4xx with a message in the reader's language, and changes nothing.
(The generated matrix over every id and query parameter: test_hostile_input.py.)"""

from __future__ import annotations

import pytest

from portal.accounts.models import Account, Invitation
from portal.api import service as api_keys
from portal.contacts import service as contacts
from portal.contacts.models import Contact, Group
from portal.extensions import db
from portal.integrations.models import ExportRun
from portal.mail import outbox_messages
from tests.security.conftest import changed_tables, fingerprint

GERMAN = {"Accept-Language": "de"}


@pytest.fixture
def key(app, owner):
    with app.app_context():
        account = db.session.get(Account, owner)
        _, plain = api_keys.create_key(account, name="Shop", scope="write", actor=None, source="ui")
        db.session.commit()
    return {"Authorization": f"Bearer {plain}", **GERMAN}


def _unchanged(app, before) -> None:
    assert changed_tables(before, fingerprint(app)) == []


@pytest.mark.parametrize("group", ["abc", str(2**64), "-1", "1.5"])
def test_an_export_of_a_group_that_is_no_id_is_a_404(app, client, owner, data, group):
    data.group("Newsletter")
    before = fingerprint(app)
    response = client.post(
        "/a/acme/integrations/exports", data={"format": "csv", "group": group}, headers=GERMAN
    )
    assert response.status_code == 404
    assert "Seite nicht gefunden" in response.get_data(as_text=True)
    _unchanged(app, before)
    with app.app_context():
        assert db.session.scalar(db.select(ExportRun.id)) is None


@pytest.mark.parametrize(
    "target", ["/a/acme/\r\nSet-Cookie: hostile=1", "/a/acme/%0d%0aSet-Cookie:%20hostile=1"]
)
def test_a_line_break_in_next_leads_nowhere_else(app, make_account, make_user, target):
    from urllib.parse import quote

    make_user("owner@acme.example", make_account("acme"))
    client = app.test_client()
    query = "?next=" + quote(target, safe="")
    response = client.post(
        "/login" + query,
        data={"email": "owner@acme.example", "password": "correct-horse-battery"},
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert "\r" not in location and "\n" not in location
    assert "hostile" not in response.headers.get("Set-Cookie", "")
    again = client.get("/login" + query)  # signed in: straight on
    assert again.status_code == 302 and "\n" not in again.headers["Location"]


@pytest.mark.parametrize("name", ["Acme\r\nBcc: someone@evil.example", "Acme\nGmbH", "Ac\x07me"])
def test_an_account_name_with_a_line_break_is_refused_and_invitations_keep_working(
    app, client, owner, name
):
    before = fingerprint(app)
    response = client.post(
        "/a/acme/settings",
        data={"name": name, "timezone": "Europe/Berlin", "default_locale": "en"},
        headers=GERMAN,
    )
    assert response.status_code == 422
    assert "Steuerzeichen" in response.get_data(as_text=True)  # the German message
    _unchanged(app, before)
    invited = client.post(
        "/a/acme/settings/team", data={"email": "new@acme.example", "role": "editor"}
    )
    assert invited.status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(Invitation.email)) == "new@acme.example"


def test_an_old_account_name_with_a_line_break_no_longer_breaks_invitations(app, client, owner):
    """A name stored before the check (or through the database): the mail's subject is
    one line whatever the name holds."""
    with app.app_context():
        db.session.get(Account, owner).name = "Acme\r\nBcc: someone@evil.example"
        db.session.commit()
    response = client.post(
        "/a/acme/settings/team", data={"email": "new@acme.example", "role": "editor"}
    )
    assert response.status_code == 302
    with app.app_context():
        [message] = outbox_messages()
    assert "\n" not in message["Subject"] and message["Bcc"] is None
    assert message["To"] == "new@acme.example"


def test_the_cli_refuses_an_account_name_with_a_line_break(app):
    result = app.test_cli_runner().invoke(
        args=["portal", "create-account", "--name", "Evil\nCorp", "--slug", "evil"]
    )
    assert result.exit_code != 0 and "control characters" in result.output
    with app.app_context():
        assert db.session.scalar(db.select(Account.id).where(Account.slug == "evil")) is None


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/contacts", {"email": "a@example.com", "first_name": "A\u0000B"}, "first_name"),
        ("POST", "/contacts", {"email": "a@example.com", "last_name": "\u0000"}, "last_name"),
        ("POST", "/groups", {"name": "News\u0000letter"}, "name"),
        ("POST", "/contacts", {"email": "a@example.com", "tags": ["V\u0000IP"]}, "tags[0]"),
    ],
)
def test_nul_in_names_through_the_api_is_a_422_and_stores_nothing(
    app, client, key, method, path, body, field
):
    before = fingerprint(app)
    response = client.open(f"/api/v1{path}", method=method, json=body, headers=key)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert field in error["fields"]
    assert "Steuerzeichen" in error["message"]
    _unchanged(app, before)


def test_nul_in_a_group_rename_through_the_api_is_a_422(app, client, key, data):
    group = data.group("Newsletter")
    response = client.patch(f"/api/v1/groups/{group}", json={"name": "X\u0000"}, headers=key)
    assert response.status_code == 422
    with app.app_context():
        assert db.session.get(Group, group).name == "Newsletter"


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/a/acme/groups/new", {"name": "News\x00letter"}),
        ("/a/acme/settings", {"name": "Acme\x00", "timezone": "Europe/Berlin"}),
        ("/profile", {"name": "Me\x00", "locale": "", "timezone": ""}),
    ],
)
def test_nul_in_a_page_form_is_a_400_in_the_readers_language(app, client, owner, path, form):
    before = fingerprint(app)
    response = client.post(path, data=form, headers=GERMAN)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert '<html lang="de">' in page and "NUL" in page
    _unchanged(app, before)


def test_the_services_refuse_control_characters_in_names_whoever_calls(app, owner):
    """Jobs, the CLI and the imports use the services too."""
    with app.app_context():
        account = db.session.get(Account, owner)
        with pytest.raises(contacts.ServiceError):
            contacts.create_group(account, "G\x00", actor=None, source="ui")
        with pytest.raises(contacts.ServiceError):
            contacts.clean_tag_name("T\x00")
        with pytest.raises(contacts.ContactInvalid):
            contacts.create_contact(account, "a@example.com", first_name="A\x00", source="ui")
        db.session.rollback()
        assert db.session.scalar(db.select(Contact.id)) is None


def test_nul_in_an_api_query_parameter_is_a_400_naming_it(app, client, key):
    response = client.get("/api/v1/contacts?q=a%00b", headers=key)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert "q" in error["fields"] and "Steuerzeichen" in error["fields"]["q"]
