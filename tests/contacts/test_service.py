"""Service rules below the pages: folding, custom field values, subscriptions, emails."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portal.accounts.models import Account
from portal.contacts import fields as contact_fields
from portal.contacts import queries, service
from portal.contacts.models import Contact, CustomField, Group, Subscription, fold, search_columns
from portal.extensions import db


@pytest.mark.parametrize(
    "text, folded",
    [
        ("Jürgen Größ", "jurgen gross"),
        ("Łukasz  Węgrzyn", "lukasz wegrzyn"),
        ("Niccolò Martinež", "niccolo martinez"),
        ("Eline van 't Hoff", "eline van 't hoff"),
        ("Chloë IJzerman", "chloe ijzerman"),
        ("STRASSE", "strasse"),
        ("", ""),
        (None, ""),
    ],
)
def test_fold(text, folded):
    assert fold(text) == folded


def test_search_columns_follow_the_names(app, owner):
    with app.app_context():
        account = db.session.get(Account, owner)
        contact = service.create_contact(account, "a@example.com", first_name="Jürgen", source="ui")
        assert (contact.search_name, contact.search_name_rev) == ("jurgen", "jurgen")
        contact.last_name = "Größ"
        assert contact.search_name == "jurgen gross" and contact.search_name_rev == "gross jurgen"
        assert search_columns("Łukasz", None) == {
            "search_name": "lukasz",
            "search_name_rev": "lukasz",
        }


def test_emails_are_normalized_and_unique_per_account(app, owner):
    with app.app_context():
        account = db.session.get(Account, owner)
        contact = service.create_contact(account, "  Jürgen@Bücher.Example ", source="ui")
        assert contact.email == "jürgen@bücher.example"
        with pytest.raises(service.ContactInvalid) as caught:
            service.create_contact(account, "JÜRGEN@bücher.example", source="ui")
        assert "email" in caught.value.errors
        assert queries.find_contact(account, "jürgen@BÜCHER.example").id == contact.id


def _field(kind, choices=None):
    return CustomField(key="x", label="X", type=kind, choices=choices or [])


@pytest.mark.parametrize(
    "kind, raw, value",
    [
        ("text", "  Köln ", "Köln"),
        ("text", "", None),
        ("number", "12", 12),
        ("number", "12,5", 12.5),
        ("number", "-3.25", -3.25),
        ("number", 7, 7),
        ("date", "2024-02-29", "2024-02-29"),
        ("date", "29.02.2024", "2024-02-29"),
        ("date", "1.3.2024", "2024-03-01"),
        ("choice", "Profi", "Profi"),
        ("choice", "", None),
    ],
)
def test_custom_field_values(app, kind, raw, value):
    with app.test_request_context():
        assert contact_fields.clean_field_value(_field(kind, ["Basis", "Profi"]), raw) == value


@pytest.mark.parametrize(
    "kind, raw",
    [
        ("number", "zwölf"),
        ("number", "1.2.3"),
        ("number", "nan"),
        ("date", "2023-02-29"),
        ("date", "morgen"),
        ("choice", "profi"),
        ("text", "x" * 1001),
    ],
)
def test_invalid_custom_field_values(app, kind, raw):
    with app.test_request_context(), pytest.raises(service.ServiceError):
        contact_fields.clean_field_value(_field(kind, ["Basis", "Profi"]), raw)


def test_custom_field_definitions_are_checked(app, owner):
    with app.app_context():
        account = db.session.get(Account, owner)
        contact_fields.create_custom_field(account, "city", "Stadt", source="ui")
        for key, kind, choices in [
            ("city", "text", None),
            ("Bad Key", "text", None),
            ("plan", "choice", []),
        ]:
            with pytest.raises(service.ServiceError):
                contact_fields.create_custom_field(
                    account, key, "L", kind, choices=choices, source="ui"
                )
        with pytest.raises(ValueError):
            contact_fields.create_custom_field(account, "kind", "L", "colour", source="ui")


def test_unknown_custom_fields_are_refused(app, owner):
    with app.app_context():
        account = db.session.get(Account, owner)
        with pytest.raises(service.ContactInvalid) as caught:
            service.create_contact(account, "a@example.com", fields={"nope": "1"}, source="ui")
        assert list(caught.value.errors) == ["field:nope"]


def test_subscribe_and_unsubscribe_keep_the_signup_data(app, owner):
    t1 = datetime(2024, 1, 1, tzinfo=UTC)
    t2 = datetime(2024, 2, 1, tzinfo=UTC)
    t3 = datetime(2024, 3, 1, tzinfo=UTC)
    with app.app_context():
        account = db.session.get(Account, owner)
        group = service.create_group(account, "Newsletter", actor=None, source="ui")
        contact = service.create_contact(account, "a@example.com", source="ui")
        sub = service.subscribe(contact, group, at=t1, source="form")
        assert (
            service.subscribe(contact, group, at=t2, source="ui") is sub and sub.activated_at == t1
        )
        service.unsubscribe(contact, group, reason="complained", at=t2, source="ui")
        assert (sub.active, sub.activated_at, sub.deactivated_at, sub.optout_reason) == (
            False,
            t1,
            t2,
            "complained",
        )
        service.subscribe(contact, group, at=t3, source="ui")
        assert (sub.active, sub.activated_at, sub.deactivated_at, sub.optout_reason) == (
            True,
            t3,
            None,
            None,
        )
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count(Subscription.id))) == 1


def test_subscriptions_never_cross_accounts(app, owner, make_account):
    other_id = make_account("other")
    with app.app_context():
        account = db.session.get(Account, owner)
        other = db.session.get(Account, other_id)
        group = service.create_group(other, "Fremd", actor=None, source="ui")
        contact = service.create_contact(account, "a@example.com", source="ui")
        with pytest.raises(ValueError):
            service.subscribe(contact, group, source="ui")


def test_deleting_a_contact_removes_its_rows(app, owner):
    """Cascades the lifecycle area relies on when it purges."""
    with app.app_context():
        account = db.session.get(Account, owner)
        group = service.create_group(account, "G", actor=None, source="ui")
        contact = service.create_contact(account, "a@example.com", source="ui")
        service.subscribe(contact, group, source="ui")
        service.add_tag(contact, "T", actor=None, source="ui")
        service.record_activity(contact, "open", group=group)
        db.session.commit()
        db.session.delete(contact)
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count(Subscription.id))) == 0
        assert db.session.scalar(db.select(db.func.count(Contact.id))) == 0
        assert db.session.get(Group, group.id) is not None


def test_iter_matching_ids_walks_every_match_once(app, owner):
    with app.app_context():
        account = db.session.get(Account, owner)
        ids = [
            service.create_contact(account, f"p{i}@example.com", source="ui").id for i in range(23)
        ]
        db.session.commit()
        batches = list(queries.iter_matching_ids(account, queries.ContactFilter(), batch=10))
        assert [len(b) for b in batches] == [10, 10, 3]
        assert sorted(i for b in batches for i in b) == sorted(ids)
