"""The contact card: master data, custom fields, tags, groups, activities, editing."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo

from portal.accounts.models import Role
from portal.contacts.models import Contact, Tag
from portal.core.audit import AuditEvent
from portal.extensions import db
from tests.helpers.auth import login

JAN = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
MAR = datetime(2024, 3, 2, 17, 45, tzinfo=UTC)


@pytest.fixture
def card(data):
    news = data.group("Newsletter")
    kunden = data.group("Kunden")
    data.field("city", "Stadt")
    data.field("customer_number", "Kundennummer", "number")
    data.field("birthday", "Geburtstag", "date")
    data.field("plan", "Tarif", "choice", ["Basis", "Profi"])
    contact = data.contact(
        "juergen@example.com",
        "Jürgen",
        "Größ",
        groups=(kunden,),
        unsubscribed=((news, "bounced"),),
        signup_at=JAN,
        signoff_at=MAR,
        tags=("Straßenfest", "VIP"),
        fields={"city": "Düsseldorf", "customer_number": "4711", "plan": "Profi"},
    )
    data.activity(contact, "open", group_id=news, at=JAN)
    data.activity(
        contact, "click", group_id=news, at=MAR, detail="https://example.com/angebote/größen"
    )
    data.activity(contact, "bounce", at=MAR, detail="550 5.1.1 User unknown")
    return {"id": contact, "url": f"/a/acme/contacts/{contact}", "news": news, "kunden": kunden}


def test_card_shows_master_data_and_custom_fields(client, card):
    html = client.get(card["url"]).get_data(as_text=True)
    assert "Jürgen Größ" in html
    assert 'value="juergen@example.com"' in html
    assert 'value="Düsseldorf"' in html and "Stadt" in html
    assert 'value="4711"' in html
    assert '<option selected value="Profi">' in html or 'selected value="Profi"' in html


def test_card_shows_groups_with_signup_signoff_and_reason(client, card):
    html = client.get(card["url"]).get_data(as_text=True)
    row = re.search(r'<tr data-group="Newsletter" data-active="false">(.*?)</tr>', html, re.S)
    assert row, html
    assert "15/01/2024" in row.group(1) and "02/03/2024" in row.group(1)
    assert "Bounced" in row.group(1) and "Unsubscribed" in row.group(1)
    active = re.search(r'<tr data-group="Kunden" data-active="true">(.*?)</tr>', html, re.S)
    assert "Active" in active.group(1) and "15/01/2024" in active.group(1)


def test_card_shows_the_activity_timeline_newest_first(client, card):
    html = client.get(card["url"]).get_data(as_text=True)
    timeline = re.search(r'<ol class="list-unstyled" id="activities">(.*?)</ol>', html, re.S)
    kinds = re.findall(r"activity-(open|click|bounce)", timeline.group(1))
    assert kinds[-1] == "open" and set(kinds) == {"open", "click", "bounce"}
    assert "https://example.com/angebote/größen" in html
    assert "550 5.1.1 User unknown" in html
    assert "Clicked" in html and "Opened" in html


def test_card_shows_tags_and_they_can_be_added_and_removed(app, client, card, data):
    html = client.get(card["url"]).get_data(as_text=True)
    assert 'data-tag="Straßenfest"' in html and 'data-tag="VIP"' in html
    response = client.post(card["url"] + "/tags", data={"name": "  Übersee  "})
    assert response.status_code == 302 and response.headers["Location"].endswith("#tags")
    client.post(card["url"] + "/tags", data={"name": "Übersee"})  # twice is once
    html = client.get(card["url"]).get_data(as_text=True)
    assert "Tag “Übersee” added." in html
    assert html.count('data-tag="Übersee"') == 1
    vip = data.tag_id("VIP")
    response = client.post(f"{card['url']}/tags/{vip}/remove")
    assert response.status_code == 302
    with app.app_context():
        contact = db.session.get(Contact, card["id"])
        assert sorted(t.name for t in contact.tags) == ["Straßenfest", "Übersee"]
        assert db.session.get(Tag, vip) is not None  # the tag itself stays


def test_a_tag_written_in_another_case_is_the_same_tag(app, client, card):
    client.post(card["url"] + "/tags", data={"name": "übersee"})
    client.post(card["url"] + "/tags", data={"name": "ÜBERSEE"})
    client.post(card["url"] + "/tags", data={"name": "straßenfest"})
    with app.app_context():
        contact = db.session.get(Contact, card["id"])
        assert sorted(t.name for t in contact.tags) == ["Straßenfest", "VIP", "übersee"]
        names = db.session.scalars(
            db.select(Tag.name).where(Tag.account_id == contact.account_id)
        ).all()
        assert len({n.casefold() for n in names}) == len(names)  # no tag twice


def test_an_empty_tag_is_refused(client, card):
    response = client.post(card["url"] + "/tags", data={"name": "   "})
    assert response.status_code == 200
    assert "Please enter a tag." in response.get_data(as_text=True)


def test_edit_master_data_and_custom_fields(app, client, card):
    response = client.post(
        card["url"] + "/edit",
        data={
            "email": " Juergen.Gross@Example.COM ",
            "first_name": "Jürgen ",
            "last_name": "Groß",
            "cf_city": "Köln",
            "cf_customer_number": "12,5",
            "cf_birthday": "24.12.1980",
            "cf_plan": "",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        contact = db.session.get(Contact, card["id"])
        assert contact.email == "juergen.gross@example.com"
        assert contact.last_name == "Groß" and contact.search_name == "jurgen gross"
        assert contact.fields == {"city": "Köln", "customer_number": 12.5, "birthday": "1980-12-24"}
        event = db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "contact.updated")
        )
        assert "email" in event.details["fields"] and "Groß" not in str(event.details)
    assert "The contact has been saved." in client.get(card["url"]).get_data(as_text=True)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"email": "not-an-address"}, "This is not a valid email address."),
        ({"email": ""}, "Please enter an email address."),
        ({"cf_customer_number": "zwölf"}, "“zwölf” is not a number."),
        ({"cf_birthday": "31.02.2024"}, "“31.02.2024” is not a date."),
        ({"cf_plan": "Gold"}, "Please choose one of the offered values."),
    ],
)
def test_edit_with_invalid_values_shows_clear_errors(app, client, card, changes, message):
    form = {"email": "juergen@example.com", "first_name": "Jürgen", "last_name": "Größ"}
    response = client.post(card["url"] + "/edit", data={**form, **changes})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert message in html
    assert "is-invalid" in html and "Please correct the marked fields." in html
    with app.app_context():
        assert db.session.get(Contact, card["id"]).email == "juergen@example.com"


def test_edit_to_an_email_another_contact_has_is_refused(client, card, data):
    data.contact("taken@example.com")
    response = client.post(
        card["url"] + "/edit", data={"email": "TAKEN@example.com", "first_name": "J"}
    )
    assert "Another contact already has this email address." in response.get_data(as_text=True)


@pytest.fixture
def german_catalog(app, tmp_path):
    """A tiny German catalog, so that the test proves the messages go through gettext
    in the reader's language without depending on the real catalogs' progress."""
    catalog = Catalog(locale="de")
    catalog.add("This is not a valid email address.", "Das ist keine gültige E-Mail-Adresse.")
    catalog.add("Please correct the marked fields.", "Bitte korrigieren Sie die markierten Felder.")
    folder = tmp_path / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with open(folder / "messages.mo", "wb") as handle:
        write_mo(handle, catalog)
    babel = app.extensions["babel"]
    original = list(babel.translation_directories)
    babel.translation_directories = [str(tmp_path), *original]
    babel.instance.domain_instance.cache.clear()
    yield
    babel.translation_directories = original
    babel.instance.domain_instance.cache.clear()


def test_edit_errors_are_translated(client, card, german_catalog):
    response = client.post(
        card["url"] + "/edit?lang=de", data={"email": "kaputt", "first_name": "Jürgen"}
    )
    html = response.get_data(as_text=True)
    assert "Das ist keine gültige E-Mail-Adresse." in html
    assert "Bitte korrigieren Sie die markierten Felder." in html


def test_deleted_contact_card_is_red_with_status(client, data):
    contact = data.contact("gone@example.com", "Gone", deleted=True)
    html = client.get(f"/a/acme/contacts/{contact}").get_data(as_text=True)
    assert re.search(r'class="[^"]*contact-deleted[^"]*" id="contact-header"', html)
    assert "To be deleted" in html


def test_card_has_room_for_lifecycle_actions(app, client, card, monkeypatch):
    """Later areas add buttons (delete, forget me, restore) with add_actions."""
    from portal.contacts import views

    monkeypatch.setitem(app.extensions, views.ACTIONS_KEY, views.ContactActions())
    views.add_actions(
        app,
        card=[
            views.Action("contacts.list_groups", "Delete", style="outline-danger"),
            views.Action("contacts.list_groups", "Restore", show=lambda c: c.is_deleted),
            views.Action("missing.endpoint", "Forget me"),
        ],
    )
    html = client.get(card["url"]).get_data(as_text=True)
    actions = re.search(
        r'<div class="ms-auto d-flex gap-2" id="card-actions">(.*?)</div>', html, re.S
    )
    assert "Delete" in actions.group(1)
    assert "Restore" not in actions.group(1) and "Forget me" not in actions.group(1)


def test_viewers_read_the_card_but_cannot_change_it(client, card, make_user, owner):
    make_user("viewer@acme.example", owner, Role.VIEWER)
    client.post("/logout")
    login(client, "viewer@acme.example")
    html = client.get(card["url"]).get_data(as_text=True)
    assert "<fieldset disabled>" in html and 'id="tag-form"' not in html
    assert client.post(card["url"] + "/edit", data={"email": "x@example.com"}).status_code == 403
    assert client.post(card["url"] + "/tags", data={"name": "x"}).status_code == 403
    assert client.post(card["url"] + "/tags/1/remove").status_code == 403


def test_editors_edit_contacts(app, client, card, make_user, owner):
    make_user("editor@acme.example", owner, Role.EDITOR)
    client.post("/logout")
    login(client, "editor@acme.example")
    response = client.post(
        card["url"] + "/edit",
        data={"email": "juergen@example.com", "first_name": "Jürgen", "last_name": "Gröss"},
    )
    assert response.status_code == 302
    assert client.post(card["url"] + "/tags", data={"name": "Neu"}).status_code == 302


def test_unknown_contact_is_404(client, owner):
    assert client.get("/a/acme/contacts/999999").status_code == 404
    assert client.post("/a/acme/contacts/999999/edit", data={}).status_code == 404
