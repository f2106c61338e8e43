"""Lossless export: CSV in the import format (one group, or a ZIP of all groups) and
JSON Lines; export -> import into another account reproduces everything; contacts to
be deleted and forgotten ones are never exported; the download expires."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine

from portal.accounts.models import Account
from portal.contacts import fields as contact_fields
from portal.contacts import queries
from portal.contacts import service as contacts
from portal.contacts.models import Contact, ContactStatus
from portal.extensions import db
from portal.imports import service as imports
from portal.imports.models import ImportJob
from portal.integrations import export
from portal.lifecycle import service as lifecycle
from tests.helpers.auth import login
from tests.imports.conftest import contact_state

SIGNUP = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
SIGNOFF = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def _account_with_everything(account):
    contact_fields.create_custom_field(account, "city", "Stadt", "text", source="ui")
    contact_fields.create_custom_field(account, "points", "Punkte", "number", source="ui")
    news = contacts.create_group(account, "Newsletter", actor=None, source="ui")
    shop = contacts.create_group(account, "Händler & Partner", actor=None, source="ui")
    a = contacts.create_contact(
        account,
        "jürgen@example.com",
        first_name="Jürgen",
        last_name="Größ",
        fields={"city": "=Köln", "points": "12"},
        source="ui",
    )
    contacts.subscribe(a, news, at=SIGNUP, source="ui")
    contacts.subscribe(a, shop, at=SIGNUP, source="ui")
    contacts.unsubscribe(a, shop, reason="bounced", at=SIGNOFF, source="ui")
    contacts.add_tag(a, "Kunde", actor=None, source="ui")
    contacts.add_tag(a, "Łódź 2024", actor=None, source="ui")
    b = contacts.create_contact(account, "zoe@example.com", first_name="Zoë", source="ui")
    contacts.subscribe(b, shop, at=SIGNUP, source="ui")
    contacts.create_contact(account, "loner@example.com", last_name="Ohne Gruppe", source="ui")
    gone = contacts.create_contact(account, "deleted@example.com", source="ui")
    contacts.subscribe(gone, news, source="ui")
    forgotten = contacts.create_contact(account, "forgotten@example.com", source="ui")
    contacts.subscribe(forgotten, news, source="ui")
    db.session.commit()
    lifecycle.delete_contacts(account, [gone.id], actor=None, source="ui")
    lifecycle.forget_contact(forgotten, actor=None, source="ui")
    db.session.commit()
    return news, shop


def _run(account, fmt, group=None):
    run = export.start(account, fmt=fmt, group=group, actor=None)
    db.session.commit()
    export.run(run)
    return run


def _stored(run) -> bytes:
    """The export's stored bytes, read from the file store (verified)."""
    with export.export_copy(run) as path:
        return path.read_bytes()


def _import_everything(target, path):
    for job in export.import_package(target, Path(path), actor=None, source="ui"):
        db.session.commit()
        imports.run(job)


def test_export_of_everything_imports_into_another_account_unchanged(account, make_account):
    _account_with_everything(account)
    run = _run(account, "csv")
    assert run.status == "finished" and Path(run.path).suffix == ".zip"
    with zipfile.ZipFile(io.BytesIO(_stored(run))) as package:
        assert set(package.namelist()) == {
            "Newsletter.csv",
            "Händler _ Partner.csv",
            "no-group.csv",
            "manifest.json",
        }
        assert (
            json.loads(package.read("manifest.json"))["groups"]["Händler _ Partner.csv"]
            == "Händler & Partner"
        )
        everything = b"".join(package.read(n) for n in package.namelist())
    assert b"deleted@example.com" not in everything and b"forgotten@example.com" not in everything
    assert "'=Köln".encode() in everything  # formula-guarded, and unguarded again by the importer

    other = db.session.get(Account, make_account("other", timezone="Europe/Berlin"))
    with export.export_copy(run) as path:
        _import_everything(other, path)

    def comparable(account_id):
        state = contact_state(account_id)
        names = {g.id: g.name for g in queries.groups_of(db.session.get(Account, account_id))}
        for value in state.values():
            value["subs"] = {names[g]: s for g, s in value["subs"].items()}
        return state

    expected = {k: v for k, v in comparable(account.id).items() if k != "deleted@example.com"}
    assert comparable(other.id) == expected
    assert expected["jürgen@example.com"]["subs"]["Händler & Partner"] == (
        False,
        SIGNUP,
        SIGNOFF,
        "bounced",
    )
    assert expected["jürgen@example.com"]["fields"] == {"city": "=Köln", "points": 12}
    assert {f.key for f in imports.custom_fields(other.id).values()} == {"city", "points"}


def test_one_group_as_csv_is_exactly_the_import_format(account):
    news, _shop = _account_with_everything(account)
    run = _run(account, "csv", news)
    text = _stored(run).decode("utf-8")
    assert text.startswith(
        "\ufeffemail,first_name,last_name,tags,active,signup_at,signoff_at,optout_reason,field:city,field:points"
    )
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[1][:8] == [
        "jürgen@example.com",
        "Jürgen",
        "Größ",
        "Kunde;Łódź 2024",
        "yes",
        "2024-03-01T08:30:00+00:00",
        "",
        "",
    ]
    assert len(rows) == 2  # the deleted and the forgotten contact are not in it
    assert run.total == 1


def test_json_lines_nest_every_group(account):
    _account_with_everything(account)
    run = _run(account, "jsonl")
    lines = [json.loads(line) for line in _stored(run).decode("utf-8").splitlines()]
    assert [line["email"] for line in lines] == [
        "jürgen@example.com",
        "zoe@example.com",
        "loner@example.com",
    ]
    assert lines[0]["groups"][0] == {
        "name": "Händler & Partner",
        "active": False,
        "signup_at": "2024-03-01T08:30:00+00:00",
        "signoff_at": "2025-01-15T12:00:00+00:00",
        "optout_reason": "bounced",
    }
    assert lines[0]["tags"] == ["Kunde", "Łódź 2024"] and lines[2]["groups"] == []


def test_pages_export_download_and_expiry(app, data, client):
    group = data.group("Newsletter")
    data.contact("anna@example.com", groups=(group,))
    response = client.post(
        "/a/acme/integrations/exports", data={"format": "csv", "group": str(group)}
    )
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert "1 contact exported." in page
    download = client.get(f"{response.location}/download")
    assert download.status_code == 200 and b"anna@example.com" in download.data
    assert "attachment" in download.headers["Content-Disposition"]
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=49)):
        login(client, "owner@acme.example")  # the session of two days ago has run out
        assert client.get(f"{response.location}/download").status_code == 410
    with app.app_context():
        assert export.sweep_expired(datetime.now(UTC) + timedelta(hours=49)) == 1


def test_another_accounts_export_is_a_404_and_viewers_cannot_export(
    app, data, client, make_account, make_data, make_user
):
    other = make_account("other")
    with app.app_context():
        run = export.start(db.session.get(Account, other), fmt="jsonl", group=None, actor=None)
        db.session.commit()
        foreign = run.id
    assert client.get(f"/a/acme/integrations/exports/{foreign}").status_code == 404
    assert client.get(f"/a/acme/integrations/exports/{foreign}/download").status_code == 404
    viewer = app.test_client()
    make_user("viewer@acme.example", data.account_id, "viewer")
    login(viewer, "viewer@acme.example")
    assert viewer.post("/a/acme/integrations/exports", data={"format": "csv"}).status_code == 403
    assert "export-form" not in viewer.get("/a/acme/integrations").get_data(as_text=True)


def test_nothing_to_be_deleted_is_exported(account):
    anna = contacts.create_contact(account, "anna@example.com", source="ui")
    db.session.commit()
    anna.status = ContactStatus.DELETED.value
    db.session.commit()
    run = _run(account, "jsonl")
    assert _stored(run) == b"" and run.total == 0
    assert db.session.get(Contact, anna.id) is not None


def test_an_export_imported_into_another_account_gets_the_check_step_first(
    app, data, client, make_account, make_user
):
    """Nothing is written before the customer has seen the check step and started it."""
    group = data.group("Newsletter")
    data.contact("anna@example.com", groups=(group,))
    with app.app_context():
        run = _run(db.session.get(Account, data.account_id), "csv")
        package = _stored(run)
    other = make_account("other")
    make_user("owner@other.example", other, "owner")
    client = app.test_client()
    login(client, "owner@other.example")
    response = client.post(
        "/a/other/integrations/import-package",
        data={"file": (io.BytesIO(package), "export.zip")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    history = client.get(response.location).get_data(as_text=True)
    assert history.count("Checked, waiting for confirmation") == 2  # Newsletter, no group
    with app.app_context():
        assert (
            db.session.scalar(
                db.select(db.func.count(Contact.id)).where(Contact.account_id == other)
            )
            == 0
        )
        jobs = dict(
            db.session.execute(
                db.select(ImportJob.group_name, ImportJob.id).where(ImportJob.account_id == other)
            ).all()
        )
    page = client.get(f"/a/other/imports/{jobs['Newsletter']}").get_data(as_text=True)
    assert "what will happen" in page and 'data-effect="new_on"' in page
    for job_id in jobs.values():
        assert client.post(f"/a/other/imports/{job_id}/start").status_code == 302
    with app.app_context():
        emails = db.session.scalars(db.select(Contact.email).where(Contact.account_id == other))
        assert list(emails) == ["anna@example.com"]
