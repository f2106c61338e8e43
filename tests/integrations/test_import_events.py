"""An import tells a linked provider what it changed, like every other write: one event
per contact it created, changed or brought back — and none for rows it left alone."""

from __future__ import annotations

from portal.contacts import service as contacts
from portal.extensions import db
from portal.imports import service as imports
from portal.integrations import delivery, service
from portal.lifecycle import service as lifecycle
from tests.imports.conftest import configured_import, write_csv


def test_an_import_sends_created_updated_and_restored_contacts(account, receiver, tmp_path):
    group = contacts.create_group(account, "Newsletter", actor=None)
    kept = contacts.create_contact(account, "gleich@example.de", first_name="Gleich")
    changed = contacts.create_contact(account, "jörg@example.de", first_name="Jorg")
    gone = contacts.create_contact(account, "zofia@example.pl", first_name="Zofia")
    for contact in (kept, changed, gone):
        contacts.subscribe(contact, group)
    lifecycle.delete_contacts(account, [gone.id], actor=None, source="ui")
    db.session.commit()
    link = service.link_provider(account, profile="webhook", url=receiver.url, actor=None)
    db.session.commit()
    receiver.secret = link.secret

    rows = [
        ["E-Mail", "Vorname", "Tags"],
        ["gleich@example.de", "Gleich", ""],
        ["jörg@example.de", "Jörg", "Kunde"],
        ["zofia@example.pl", "Zofia", ""],
        ["łucja@example.pl", "Łucja", "VIP"],
    ]
    job = configured_import(account, group, write_csv(tmp_path / "list.csv", rows), restore=True)
    imports.run(job)
    assert (job.created, job.updated, job.restored, job.unchanged) == (1, 1, 1, 1)

    assert delivery.deliver(link.id).delivered == 3 and receiver.bad_signatures == 0
    sent = {e["contact"]["email"]: e for e in receiver.accepted_events()}
    assert {email: e["type"] for email, e in sent.items()} == {
        "łucja@example.pl": "contact.created",
        "jörg@example.de": "contact.updated",
        "zofia@example.pl": "contact.restored",
    }
    assert sent["jörg@example.de"]["contact"]["first_name"] == "Jörg"
    assert sent["jörg@example.de"]["contact"]["tags"] == ["Kunde"]
    assert sent["łucja@example.pl"]["contact"]["groups"][0]["name"] == "Newsletter"
    assert all(e["data"]["source"] == "import" for e in sent.values())
