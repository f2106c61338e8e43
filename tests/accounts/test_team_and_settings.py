"""Team management (invite, role, remove; the last owner stays) and account settings."""

from __future__ import annotations

import re

import pytest

from portal.accounts.models import Account, Membership, Role, User
from portal.core.audit import AuditEvent
from portal.extensions import db
from portal.mail import outbox_messages
from tests.helpers.auth import PASSWORD, login


def _membership_id(app, email: str) -> int:
    with app.app_context():
        return db.session.scalar(db.select(Membership.id).join(User).where(User.email == email))


def test_owner_invites_a_new_member_who_sets_a_password(app, client, owner):
    response = client.post(
        "/a/acme/settings/team", data={"email": "New.Person@Acme.example", "role": "editor"}
    )
    assert response.status_code == 302
    with app.app_context():
        message = outbox_messages()[-1]
    assert message["To"] == "new.person@acme.example"
    link = re.search(r"http://localhost(/invite/\S+)", message.get_content()).group(1)
    client.post("/logout")
    page = client.get(link)
    assert page.status_code == 200
    response = client.post(
        link,
        data={"name": "New Person", "password": "a-long-password", "confirm": "a-long-password"},
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/a/acme/")
    assert client.get("/a/acme/").status_code == 200
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "new.person@acme.example"))
        assert user.memberships[0].role == "editor"
    # the invitation cannot be used twice
    client.post("/logout")
    assert client.get(link).status_code == 302


def test_invitation_mail_is_in_the_account_language(app, client, make_account, make_user):
    account_id = make_account("firma", default_locale="de")
    make_user("chef@firma.example", account_id, Role.OWNER)
    login(client, "chef@firma.example")
    client.post("/a/firma/settings/team", data={"email": "neu@firma.example", "role": "viewer"})
    with app.app_context():
        message = outbox_messages()[-1]
    assert message["Content-Language"] == "de"
    assert "Firma" in message["Subject"]


def test_existing_user_accepts_invitation_after_signing_in(app, client, owner, make_user):
    make_user("known@elsewhere.example")
    client.post(
        "/a/acme/settings/team", data={"email": "known@elsewhere.example", "role": "viewer"}
    )
    with app.app_context():
        body = outbox_messages()[-1].get_content()
    link = re.search(r"http://localhost(/invite/\S+)", body).group(1)
    client.post("/logout")
    assert "/login" in client.get(link).headers["Location"]
    login(client, "known@elsewhere.example")
    response = client.post(link)
    assert response.status_code == 302
    assert client.get("/a/acme/").status_code == 200


def test_admin_changes_a_role_and_it_is_audited(app, client, owner, make_user):
    make_user("ed@acme.example", owner, Role.EDITOR)
    mid = _membership_id(app, "ed@acme.example")
    response = client.post(f"/a/acme/settings/team/{mid}/role", data={"role": "viewer"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Membership, mid).role == "viewer"
        event = db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "member.role_changed")
        )
        assert event.details == {"email": "ed@acme.example", "old": "editor", "new": "viewer"}


def test_last_owner_cannot_be_demoted_or_removed(app, client, owner):
    mid = _membership_id(app, "owner@acme.example")
    page = client.post(
        f"/a/acme/settings/team/{mid}/role", data={"role": "admin"}, follow_redirects=True
    )
    assert "An account needs at least one owner." in page.get_data(as_text=True)
    client.post(f"/a/acme/settings/team/{mid}/remove")
    with app.app_context():
        assert db.session.get(Membership, mid).role == "owner"


def test_second_owner_makes_demotion_possible(app, client, owner, make_user):
    make_user("co@acme.example", owner, Role.OWNER)
    mid = _membership_id(app, "co@acme.example")
    client.post(f"/a/acme/settings/team/{mid}/remove")
    with app.app_context():
        assert db.session.get(Membership, mid) is None


def test_admin_cannot_touch_an_owner(app, client, make_account, make_user):
    account_id = make_account("acme")
    make_user("owner@acme.example", account_id, Role.OWNER)
    make_user("admin@acme.example", account_id, Role.ADMIN)
    login(client, "admin@acme.example")
    mid = _membership_id(app, "owner@acme.example")
    page = client.post(
        f"/a/acme/settings/team/{mid}/role", data={"role": "viewer"}, follow_redirects=True
    )
    assert "Only an owner can change the role of an owner." in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Membership, mid).role == "owner"


@pytest.mark.parametrize("role", [Role.EDITOR, Role.VIEWER])
def test_editors_and_viewers_cannot_manage_the_team(app, client, make_account, make_user, role):
    account_id = make_account("acme")
    make_user("owner@acme.example", account_id, Role.OWNER)
    make_user("member@acme.example", account_id, role)
    login(client, "member@acme.example")
    page = client.get("/a/acme/settings/team").get_data(as_text=True)
    assert "Invite a member" not in page
    assert (
        client.post(
            "/a/acme/settings/team", data={"email": "x@acme.example", "role": "owner"}
        ).status_code
        == 403
    )
    mid = _membership_id(app, "owner@acme.example")
    assert client.post(f"/a/acme/settings/team/{mid}/remove").status_code == 403


def test_owner_changes_settings_and_sees_them_in_recent_changes(app, client, owner):
    response = client.post(
        "/a/acme/settings",
        data={
            "name": "Acme Europe",
            "timezone": "Europe/Warsaw",
            "default_locale": "pl",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        account = db.session.get(Account, owner)
        assert (account.name, account.timezone, account.default_locale) == (
            "Acme Europe",
            "Europe/Warsaw",
            "pl",
        )
        assert account.automatic_backups is False  # unchecked box means off
    page = client.get("/a/acme/settings?lang=en").get_data(as_text=True)
    assert "Automatic backups: on → off" in page
    assert "Timezone: Europe/Berlin → Europe/Warsaw" in page


def test_settings_page_explains_what_a_backup_holds(client, owner):
    page = client.get("/a/acme/settings").get_data(as_text=True)
    assert "Activities such as opens and clicks are not part of a backup." in page
    assert "Backups are kept for 30 days" in page
    assert "through the API" in page


@pytest.mark.parametrize("role", [Role.EDITOR, Role.VIEWER])
def test_editors_and_viewers_see_settings_read_only(app, client, make_account, make_user, role):
    account_id = make_account("acme")
    make_user("member@acme.example", account_id, role)
    login(client, "member@acme.example")
    page = client.get("/a/acme/settings").get_data(as_text=True)
    assert "Only owners and admins can change these settings." in page
    assert "<fieldset disabled>" in page
    response = client.post(
        "/a/acme/settings", data={"name": "Hacked", "timezone": "UTC", "default_locale": "en"}
    )
    assert response.status_code == 403
    with app.app_context():
        assert db.session.get(Account, account_id).automatic_backups is True


def test_unknown_timezone_is_refused(app, client, owner):
    response = client.post(
        "/a/acme/settings",
        data={
            "name": "Acme",
            "timezone": "Mars/Olympus",
            "default_locale": "en",
            "automatic_backups": "y",
        },
    )
    assert response.status_code == 200
    assert "Not a valid choice" in response.get_data(
        as_text=True
    ) or "Unknown timezone" in response.get_data(as_text=True)


def test_user_switches_between_accounts(app, client, make_account, make_user):
    a = make_account("alpha", name="Alpha")
    b = make_account("beta", name="Beta")
    make_user("both@x.example", a, Role.OWNER)
    with app.app_context():
        from portal.accounts import service

        service.add_member(
            db.session.get(Account, b), service.find_user_by_email("both@x.example"), Role.VIEWER
        )
        db.session.commit()
    response = client.post("/login", data={"email": "both@x.example", "password": PASSWORD})
    assert response.headers["Location"].endswith("/accounts")
    page = client.get("/accounts").get_data(as_text=True)
    assert "Alpha" in page and "Beta" in page
    home = client.get("/a/beta/").get_data(as_text=True)
    assert "/a/alpha/" in home, "the account menu links to the other account"


def test_recent_changes_name_a_custom_field_by_its_label(app, client, owner):
    from portal.contacts import fields as contact_fields

    with app.app_context():
        contact_fields.create_custom_field(
            db.session.get(Account, owner), "birthday", "Geburtstag", source="ui"
        )
        db.session.commit()
    page = client.get("/a/acme/settings?lang=en").get_data(as_text=True)
    assert "Custom field “Geburtstag” created" in page
    assert "“birthday”" not in page


def test_a_persons_name_column_says_so_in_polish(client, owner):
    """'Name' of a person is "Imię i nazwisko", not "Nazwa" (the name of a thing)."""
    page = client.get("/a/acme/settings/team?lang=pl").get_data(as_text=True)
    assert "<th>Imię i nazwisko</th>" in page and "<th>Nazwa</th>" not in page


def test_the_contact_lists_name_column_is_a_persons_in_polish(client, data):
    data.contact("anna@example.com", first_name="Anna")
    page = client.get("/a/acme/contacts?lang=pl").get_data(as_text=True)
    assert "Imię i nazwisko" in page and ">Nazwa<" not in page
