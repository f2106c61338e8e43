"""Imports through the API (JSON rows and files; source "api": no backup) and backups
(list, download)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from portal import clock
from portal.backups.models import Backup
from portal.backups.snapshot import snapshot
from portal.contacts.models import Contact, Group
from portal.core.audit import AuditEvent
from portal.core.storage import get_storage
from portal.extensions import db
from portal.imports.models import ImportJob
from tests.backups.stores import damage


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_json_rows_are_imported_without_a_backup(app, api, acme):
    group = acme.group("Newsletter")  # both backup switches on: a portal import would back up
    acme.contact("old@example.com", "Old", groups=(group,))
    acme.field("points", "Punkte", "number")
    rows = [
        {"email": "Anna@Example.com", "first_name": "Anna", "tags": ["VIP", "Kunde"]},
        {"email": "old@example.com", "last_name": "Neu", "fields": {"points": 7}},
        {"email": "=cmd@example.com", "first_name": "=HYPERLINK(1)", "tags": "a; b"},
        {"email": "broken", "first_name": "X"},
        {"email": "anna@example.com"},
    ]
    response = api.post("/imports", json={"group_id": group, "rows": rows})
    assert response.status_code == 202, response.get_data(as_text=True)
    job = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/imports/{job['id']}")
    assert job["source"] == "api" and job["status"] == "finished"  # the test queue is synchronous
    status = api.get(f"/imports/{job['id']}").get_json()
    assert status["counters"]["created"] == 1 + 1 and status["counters"]["updated"] == 1
    assert status["counters"]["invalid"] == 1 and status["counters"]["skipped"] == 1
    lines = {p["line"]: p for p in status["problems"]}
    assert lines[5]["code"] == "email_invalid" and lines[5]["message"]
    assert lines[6]["code"] == "duplicate"
    old = acme.contact_by_email("old@example.com")
    assert (old.first_name, old.last_name, old.fields) == ("Old", "Neu", {"points": 7})
    formula = acme.contact_by_email("=cmd@example.com")
    assert formula.first_name == "=HYPERLINK(1)", "the formula guard of the CSV is undone"
    formula_tags = api.get(f"/contacts/{formula.id}").get_json()["tags"]
    assert sorted(t["name"] for t in formula_tags) == ["a", "b"]
    anna = api.get("/contacts/by-email?email=anna@example.com").get_json()
    assert sorted(t["name"] for t in anna["tags"]) == ["Kunde", "VIP"]
    assert _count(app, Backup) == 0
    with app.app_context():
        started = db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "api.import_started")
        )
        assert started.actor_type == "api_key"


def test_sign_up_data_only_with_consent(app, api, acme):
    group = acme.group("Newsletter")
    row = {
        "email": "a@example.com",
        "active": False,
        "signup_at": "2026-01-05",
        "signoff_at": "2026-02-01",
        "optout_reason": "bounced",
    }
    api.post(
        "/imports",
        json={"group_id": group, "rows": [row], "import_consent": True, "mode": "update_add"},
    )
    (sub,) = api.get("/contacts/by-email?email=a@example.com").get_json()["subscriptions"]
    assert sub["active"] is False and sub["optout_reason"] == "bounced"
    assert sub["activated_at"].startswith("2026-01-0")


def test_a_file_is_imported_with_its_mapping(app, api, acme):
    group = acme.group("Newsletter")
    data = "E-Mail;Vorname;Egal\nanna@example.com;Anna;x\nbert@example.com;Bert;y\n"
    response = api.post(
        "/imports",
        data={
            "file": (io.BytesIO(data.encode("cp1252")), "liste.csv"),
            "group_id": str(group),
            "mode": "add",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body["filename"] == "liste.csv" and body["mode"] == "add"
    assert body["counters"]["created"] == 2
    mapped = api.post(
        "/imports",
        data={
            "file": (io.BytesIO(b"a,b\ncarl@example.com,Carl\n"), "x.csv"),
            "group_id": str(group),
            "mapping": json.dumps(["email", "last_name"]),
        },
        content_type="multipart/form-data",
    )
    assert mapped.status_code == 202
    assert acme.contact_by_email("carl@example.com").last_name == "Carl"
    assert _count(app, Backup) == 0


@pytest.mark.parametrize(
    ("form", "status", "field"),
    [
        ({"group_id": "1"}, 400, "file"),
        ({"file": (io.BytesIO(b""), "empty.csv")}, 422, "file"),
        ({"file": (io.BytesIO(b"a,b\n1,2\n"), "x.csv"), "mapping": "[1]"}, 422, "mapping"),
        ({"file": (io.BytesIO(b"a,b\n1,2\n"), "x.csv"), "mapping": '["a"]'}, 422, "file"),
        ({"file": (io.BytesIO(b"email\na@b.de\n"), "x.csv"), "mode": "all"}, 422, "mode"),
    ],
)
def test_bad_uploads(app, api, acme, form, status, field):
    group = acme.group("Newsletter")
    form = {"group_id": str(group), **form}
    response = api.post("/imports", data=form, content_type="multipart/form-data")
    assert response.status_code == status, response.get_data(as_text=True)
    assert field in response.get_json()["error"]["fields"]
    assert _count(app, ImportJob) == 0


def test_bad_json_imports(app, api, acme, other):
    group = acme.group("Newsletter")
    theirs = other.group("Theirs")

    def start(group_id, rows):
        return api.post("/imports", json={"group_id": group_id, "rows": rows})

    assert start(theirs, [{"email": "a@b.de"}]).status_code == 404
    unknown = start(group, [{"email": "a@b.de", "fields": {"x": 1}}])
    assert unknown.status_code == 422
    assert "rows[0].fields.x" in unknown.get_json()["error"]["fields"]
    empty = start(group, [])
    assert empty.status_code == 422 and "rows" in empty.get_json()["error"]["fields"]
    assert start(group, [{"email": "a@b.de", "tags": ["a,b"]}]).status_code == 422
    assert _count(app, ImportJob) == 0 and _count(app, Contact) == 0


def test_too_large_is_413(app, api, acme):
    group = acme.group("Newsletter")
    limit = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 200
    try:
        rows = [{"email": f"user{i}@example.com"} for i in range(50)]
        response = api.post("/imports", json={"group_id": group, "rows": rows})
    finally:
        app.config["MAX_CONTENT_LENGTH"] = limit
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_large"


def test_another_accounts_import_is_404(app, api, other):
    with app.app_context():
        job = ImportJob(account_id=other.account_id, filename="theirs.csv")
        db.session.add(job)
        db.session.commit()
        job_id = job.id
    assert api.get(f"/imports/{job_id}").status_code == 404


# --- backups -----------------------------------------------------------------------------


@pytest.fixture
def backup_id(app, acme):
    group = acme.group("Newsletter")
    acme.contact("anna@example.com", "Anna", groups=(group,))
    with app.app_context():
        backup = snapshot(db.session.get(Group, group), reason="manual")
        db.session.commit()
        return backup.id


def test_backups_are_listed_and_downloaded_with_a_read_key(app, reader, backup_id):
    listed = reader.get("/backups").get_json()["data"]
    assert [b["id"] for b in listed] == [backup_id]
    assert listed[0]["group_name"] == "Newsletter" and listed[0]["contact_count"] == 1
    response = reader.get(f"/backups/{backup_id}/download")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert rows[0][:4] == ["email", "first_name", "last_name", "tags"]
    assert [row[:2] for row in rows[1:]] == [["anna@example.com", "Anna"]]
    assert "attachment" in response.headers["Content-Disposition"]
    with app.app_context():
        event = db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "backup.downloaded")
        )
        assert event.actor_type == "api_key"


def test_a_damaged_backup_is_409(app, api, backup_id):
    with app.app_context():
        backup = db.session.get(Backup, backup_id)
        damage(get_storage(), backup.storage_key, at=0)
    response = api.get(f"/backups/{backup_id}/download")
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "unreadable"


def test_expired_or_foreign_backups_are_404(app, api, other, backup_id):
    with app.app_context():
        backup = db.session.get(Backup, backup_id)
        backup.expires_at = clock.now() - timedelta(minutes=1)
        db.session.commit()
    assert api.get(f"/backups/{backup_id}/download").status_code == 404
    assert api.get("/backups").get_json()["data"] == []
    theirs_group = other.group("Theirs")
    with app.app_context():
        theirs = snapshot(db.session.get(Group, theirs_group), reason="manual")
        db.session.commit()
        theirs_id = theirs.id
    assert api.get(f"/backups/{theirs_id}/download").status_code == 404
