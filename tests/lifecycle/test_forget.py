"""Forget me: immediate, irreversible erasure. Afterwards no table holds the address or
the names; a keyed hash keeps imports, backup restores and the API from bringing the
person back; the audit log has a receipt without personal data; only the person's own
sign-up through the form (with its confirmation link) lets them in again."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from portal.accounts.models import Account
from portal.backups import service as backups
from portal.contacts import service as contacts
from portal.contacts.models import Contact, Group
from portal.extensions import db
from portal.imports import service as imports
from portal.imports.models import ImportRowProblem
from portal.lifecycle import service, signup
from portal.lifecycle.models import Suppression
from portal.mail import outbox_messages
from portal.support.models import AuditEvent
from tests.imports.conftest import write_csv

EMAIL = "jürgen.größ@example.com"
SHOUTED = "Jürgen.Größ@Example.COM"  # the same address as a file may spell it
FIRST, LAST = "Jürgen", "Größmann-Żółć"


def dump_of_every_table() -> str:
    """The text of every row of every table in the database (not only the models')."""
    engine = db.session.get_bind()
    parts = []
    for name in inspect(engine).get_table_names():
        for row in db.session.execute(text(f'SELECT * FROM "{name}"')):  # noqa: S608
            parts.append(" ".join(str(v) for v in row))
    return "\n".join(parts).lower()


def _person_is_nowhere() -> None:
    dump = dump_of_every_table()
    for needle in (EMAIL, "größ@example.com", FIRST.lower(), LAST.lower(), "größmann"):
        assert needle.lower() not in dump, needle
    # JSON columns may hold it escaped
    assert "gr\\u00f6\\u00dfmann" not in dump and "j\\u00fcrgen" not in dump


@pytest.fixture
def person(account):
    """A contact with everything that can hold its data: groups with sign-up data, tags,
    activities, an import error report line and a staged row of an unfinished import."""
    news = contacts.create_group(account, "Newsletter", actor=None)
    shop = contacts.create_group(account, "Shop", actor=None)
    contact = contacts.create_contact(account, EMAIL, first_name=FIRST, last_name=LAST)
    contacts.subscribe(contact, news, at=datetime(2025, 1, 2, tzinfo=UTC))
    contacts.subscribe(contact, shop)
    contacts.unsubscribe(contact, shop, reason="unsubscribed")
    contacts.add_tag(contact, "VIP", actor=None)
    contacts.add_tag(contact, "Kunde", actor=None)
    contacts.record_activity(contact, "open", group=news, detail="Newsletter 12/2025")
    contacts.record_activity(contact, "click", group=news, detail="https://shop.example/")
    db.session.commit()
    return contact


def _import(account, group, tmp_path, rows, **options):
    path = write_csv(tmp_path / f"import-{len(list(tmp_path.iterdir()))}.csv", rows)
    job = imports.create_import(
        account, actor=None, group=group, source_path=path, filename="list.csv", source="ui"
    )
    imports.configure(
        job,
        mapping=job.mapping,
        mode=options.get("mode", "update_add"),
        import_consent=options.get("import_consent", False),
        restore_deleted=options.get("restore_deleted", False),
    )
    db.session.commit()
    imports.run(job)
    return job


def test_forget_erases_everything_and_leaves_only_a_keyed_hash(account, person, tmp_path):
    group = db.session.scalar(db.select(Group).where(Group.name == "Newsletter"))
    # a failed-rows line that holds the address (a duplicate within a file)
    _import(
        account,
        group,
        tmp_path,
        [
            ["E-Mail", "Vorname"],
            ["other@example.com", "Ola"],
            [SHOUTED, FIRST],
            [EMAIL, FIRST],
        ],
    )
    assert db.session.scalar(db.select(db.func.count(ImportRowProblem.id))) == 1
    contact_id = person.id

    receipt = service.forget_contact(person, actor=None, source="ui", ip="203.0.113.9")
    db.session.commit()

    assert receipt.contacts == 1 and receipt.subscriptions == 2 and receipt.tag_links == 2
    assert receipt.activities == 2 and receipt.failed_rows == 1
    assert db.session.get(Contact, contact_id) is None
    _person_is_nowhere()
    # what stays: the hash (not the address) and a receipt without personal data
    stored = db.session.scalar(db.select(Suppression.email_hash))
    assert re.fullmatch(r"[0-9a-f]{64}", stored) and stored != EMAIL
    event = db.session.scalar(
        db.select(AuditEvent).where(AuditEvent.action == "contacts.forgotten")
    )
    assert event.ip == "203.0.113.9" and event.details["contacts"] == 1
    assert event.details["activities"] == 2 and event.details["source"] == "ui"
    # the other person of the import is untouched
    assert contacts.find_contact(account, "other@example.com") is not None


def test_neither_an_import_nor_a_backup_restore_nor_the_api_brings_the_person_back(
    account, person, tmp_path
):
    group = db.session.scalar(db.select(Group).where(Group.name == "Newsletter"))
    backup = backups.snapshot(group, reason="manual", actor=None)  # holds the person
    db.session.commit()
    service.forget_contact(person, actor=None, source="ui")
    db.session.commit()

    job = _import(
        account,
        group,
        tmp_path,
        [["E-Mail", "Vorname", "Nachname"], [EMAIL, FIRST, LAST], ["new@example.com", "Nina", ""]],
        import_consent=True,
        restore_deleted=True,
    )
    assert (job.created, job.skipped) == (1, 1)
    assert job.skipped_reasons == {"forgotten": 1}
    problem = db.session.scalar(
        db.select(ImportRowProblem).where(ImportRowProblem.import_id == job.id)
    )
    assert problem.code == "forgotten"

    restore = backups.restore(backup, actor=None)
    db.session.commit()
    imports.run(restore)
    assert contacts.find_contact(account, EMAIL) is None
    # the download of the backup leaves the person out too
    assert EMAIL.encode() not in b"".join(backups.download_stream(backup))

    with pytest.raises(contacts.ContactForgotten) as refused:
        contacts.create_contact(account, EMAIL, source="api")
    assert "sign-up form" in str(refused.value.errors["email"])
    other = contacts.create_contact(account, "ok@example.com")
    with pytest.raises(contacts.ContactForgotten):
        contacts.update_contact(other, actor=None, email=EMAIL)
    assert service.is_forgotten(account, SHOUTED)


def test_the_sign_up_form_with_its_confirmation_link_brings_the_person_back(account, person, app):
    group = db.session.scalar(db.select(Group).where(Group.name == "Newsletter"))
    service.forget_contact(person, actor=None, source="ui")
    db.session.commit()
    with app.test_request_context("/"):
        request = signup.request_signup(
            group, EMAIL, first_name=FIRST, ip="198.51.100.7", locale="de"
        )
        db.session.commit()
        assert service.is_forgotten(account, EMAIL), "asking alone lifts nothing"
        link = re.search(r"http\S+/confirm/\S+", outbox_messages()[-1].get_content()).group(0)
        token = link.rsplit("/", 1)[1]
        result = signup.confirm_signup(group.signup_token, token, ip="198.51.100.8")
        db.session.commit()
    assert result.created and result.lifted
    assert not service.is_forgotten(account, EMAIL)
    contact = contacts.find_contact(account, EMAIL)
    sub = contacts.subscription(contact, group)
    assert sub.active and sub.source == "form" and sub.activated_at == request.created_at
    assert (sub.signup_ip, sub.confirm_ip) == ("198.51.100.7", "198.51.100.8")
    assert sub.confirmed_at is not None


def test_forget_by_address_without_a_contact_still_blocks_later_imports(account, tmp_path):
    group = contacts.create_group(account, "Newsletter", actor=None)
    db.session.commit()
    receipt = service.forget_emails(account, ["later@example.com"], actor=None, source="api")
    db.session.commit()
    assert (receipt.contacts, receipt.newly_suppressed) == (0, 1)
    job = _import(account, group, tmp_path, [["email"], ["Later@Example.com"]])
    assert job.created == 0 and job.skipped_reasons == {"forgotten": 1}


def test_the_card_asks_first_and_names_what_will_be_erased(client, data, app):
    group = data.group("Newsletter")
    cid = data.contact(EMAIL, FIRST, LAST, groups=(group,), tags=("VIP",))
    data.activity(cid, "open", group_id=group)
    page = client.get(f"/a/acme/contacts/{cid}/forget").get_data(as_text=True)
    assert "cannot be undone" in page
    listed = re.search(r'id="erasure-list">(.*?)</ul>', page, re.S).group(1)
    assert "1 group membership" in listed and "Newsletter" in listed
    assert "1 tag link" in listed and "1 activity" in listed
    # without the tick nothing happens
    refused = client.post(f"/a/acme/contacts/{cid}/forget", data={})
    assert refused.status_code == 200 and "Please confirm" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Contact, cid) is not None
    done = client.post(
        f"/a/acme/contacts/{cid}/forget", data={"confirm": "y"}, follow_redirects=True
    )
    assert "erased for good" in done.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Contact, cid) is None
        assert db.session.scalar(db.select(db.func.count(Suppression.id))) == 1
        event = db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "contacts.forgotten")
        )
        assert event.actor_label == "owner@acme.example" and event.ip == "127.0.0.1"
        assert EMAIL not in str(event.details) and FIRST not in str(event.details)
    settings = client.get("/a/acme/settings").get_data(as_text=True)
    assert "erased" in settings.lower()


def test_forgetting_in_one_account_leaves_the_same_address_in_another(account, make_account):
    other = db.session.get(Account, make_account("other"))
    mine = contacts.create_contact(account, "shared@example.com")
    theirs = contacts.create_contact(other, "shared@example.com")
    db.session.commit()
    service.forget_contact(mine, actor=None, source="ui")
    db.session.commit()
    assert db.session.get(Contact, theirs.id) is not None
    assert not service.is_forgotten(other, "shared@example.com")
