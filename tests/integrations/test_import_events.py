"""An import tells a linked provider what it changed, like every other write: one event
per contact it created, changed or brought back — and none for rows it left alone."""

from __future__ import annotations

from portal.contacts import service as contacts
from portal.extensions import db
from portal.imports import service as imports
from portal.integrations import delivery, service
from portal.lifecycle import service as lifecycle
from tests.imports.conftest import configured_import, write_csv


def _linked_group(account, receiver, people: dict[str, str], deleted: dict[str, str]):
    """A group of people (address: first name), some of them "to be deleted", in an
    account linked to the receiver afterwards (so nothing of this set-up is sent)."""
    group = contacts.create_group(account, "Newsletter", actor=None, source="ui")
    made = []
    for email, first_name in (people | deleted).items():
        made.append(contacts.create_contact(account, email, first_name=first_name, source="ui"))
        contacts.subscribe(made[-1], group, source="ui")
    gone = [c.id for c in made if c.email in deleted]
    lifecycle.delete_contacts(account, gone, actor=None, source="ui")
    db.session.commit()
    link = service.link_provider(account, profile="webhook", url=receiver.url, actor=None)
    db.session.commit()
    receiver.secret = link.secret
    return group, made, link


def test_an_import_sends_created_updated_and_restored_contacts(account, receiver, tmp_path):
    group, (kept, changed, gone), link = _linked_group(
        account, receiver, {"gleich@example.de": "Gleich", "jörg@example.de": "Jorg"},
        deleted={"zofia@example.pl": "Zofia"},
    )  # fmt: skip

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


def test_the_undo_of_an_import_tells_the_provider_what_it_set_back(account, receiver, tmp_path):
    from portal.backups.undo import request_undo, run_undo

    group, (alt, weg), link = _linked_group(
        account, receiver, {"alt@example.de": "Alt"}, deleted={"weg@example.pl": "Weg"}
    )
    rows = [["E-Mail", "Vorname"], ["alt@example.de", "Neuer Name"], ["weg@example.pl", "Weg"]]
    rows.append(["neu@example.de", "Ganz neu"])
    path = write_csv(tmp_path / "list.csv", rows)
    job = configured_import(account, group, path, restore=True)  # from the portal: backup first
    imports.run(job)
    assert (job.created, job.updated, job.restored) == (1, 1, 1) and job.backup_id
    assert delivery.deliver(link.id).delivered == 3
    sent_before = len(receiver.accepted_events())

    undo = request_undo(job, actor=None)
    db.session.commit()
    run_undo(undo)

    assert delivery.deliver(link.id).delivered == 3 and receiver.bad_signatures == 0
    after = receiver.accepted_events()[sent_before:]
    by_id = {e["contact"]["id"]: e for e in after}
    neu_id = next(e["contact"]["id"] for e in receiver.accepted_events()[:sent_before]
                  if e["type"] == "contact.created")  # fmt: skip
    assert by_id[neu_id]["type"] == "contact.purged"
    assert by_id[neu_id]["contact"] == {"id": neu_id, "gone": True}
    assert by_id[alt.id]["type"] == "contact.updated"
    assert by_id[alt.id]["contact"]["first_name"] == "Alt"  # as in the backup
    assert by_id[weg.id]["type"] == "contact.deleted"
    assert all(e["data"]["source"] == "undo" for e in after)
