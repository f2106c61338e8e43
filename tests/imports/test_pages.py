"""The import pages from upload to summary, as a customer clicks through them."""

from __future__ import annotations

import io

import pytest

from portal.accounts.models import Role
from portal.contacts.models import Contact
from portal.extensions import db
from portal.imports.models import ImportJob
from tests.helpers.auth import login

CSV = (
    "E-Mail;Vorname;Nachname;Tags\r\n"
    "jürgen@example.de;Jürgen;Größ;Kunde\r\n"
    "kaputt;X;Y;\r\n"
    "=cmd|' /C calc'!A0@example.de;=HYPERLINK(\"x\");Evil;\r\n"
    "ola@example.pl;Ola;Żółć;VIP\r\n"
).encode("cp1252", errors="replace")


def _upload(client, group_id, data=CSV, name="liste.csv"):
    return client.post(
        "/a/acme/imports/new",
        data={"file": (io.BytesIO(data), name), "group": str(group_id)},
        content_type="multipart/form-data",
    )


def test_upload_map_check_confirm_and_summary(app, client, group_id):
    response = _upload(client, group_id, CSV.replace(b"\xd6", b"O"))
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "which column holds what?" in page
    assert 'value="email" selected' in page and 'value="first_name" selected' in page
    assert "Jürgen" in page  # preview, decoded from Windows-1252
    with app.app_context():
        job = db.session.scalar(db.select(ImportJob))
        job_id = job.id
    response = client.post(
        f"/a/acme/imports/{job_id}/mapping",
        data={
            "column-0": "email",
            "column-1": "first_name",
            "column-2": "last_name",
            "column-3": "tags",
            "mode": "update_add",
        },
    )
    assert response.status_code == 302
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    assert "what will happen" in page
    assert 'data-count="created">2<' in page and 'data-count="invalid">2<' in page
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Contact.id))) == 0, "dry run wrote"
    client.post(f"/a/acme/imports/{job_id}/start")
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    assert "Import finished" in page
    assert 'data-count="created">2<' in page
    status = client.get(f"/a/acme/imports/{job_id}/status").get_json()
    assert status["status"] == "finished" and status["percent"] == 100
    assert status["status_text"] == "Finished"  # the live page shows it without a reload
    assert status["counters"]["created"] == 2
    history = client.get("/a/acme/imports").get_data(as_text=True)
    assert "liste.csv" in history and "Newsletter" in history


def test_failed_rows_report_is_translated_and_formula_safe(app, client, group_id):
    _upload(client, group_id)
    with app.app_context():
        job_id = db.session.scalar(db.select(ImportJob.id))
    client.post(
        f"/a/acme/imports/{job_id}/mapping",
        data={
            "column-0": "email",
            "column-1": "first_name",
            "column-2": "last_name",
            "column-3": "tags",
            "mode": "update_add",
        },
    )
    client.post(f"/a/acme/imports/{job_id}/start")
    report = client.get(f"/a/acme/imports/{job_id}/problems.csv?lang=de")
    assert report.status_code == 200
    text = report.get_data(as_text=True)
    assert text.startswith("\ufeff")
    lines = text.lstrip("\ufeff").splitlines()
    assert lines[0].split(";")[:2] == ["Zeile", "Grund"]
    assert lines[1].startswith("3;")
    assert "'=HYPERLINK" in text and ";=HYPERLINK" not in text
    assert "'=cmd" in text


def test_mapping_without_email_is_refused(app, client, group_id):
    _upload(client, group_id)
    with app.app_context():
        job_id = db.session.scalar(db.select(ImportJob.id))
    response = client.post(
        f"/a/acme/imports/{job_id}/mapping",
        data={
            "column-0": "",
            "column-1": "first_name",
            "column-2": "last_name",
            "column-3": "tags",
            "mode": "update_add",
        },
        follow_redirects=True,
    )
    assert "Choose exactly one column with the email address." in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (b"", "empty.csv", "The file is empty."),
        (b"\x00\x01\x02binary\x00" * 50, "x.csv", "binary file"),
        (b"PK\x03\x04garbage", "x.xlsx", "damaged"),
    ],
)
def test_bad_files_get_a_clear_message(client, group_id, data, name, expected):
    response = _upload(client, group_id, data, name)
    assert response.status_code == 200
    assert expected in response.get_data(as_text=True)


def test_upload_over_the_size_limit_is_refused(app, client, group_id):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    try:
        response = _upload(client, group_id, b"email\n" + b"a@example.com\n" * 200)
    finally:
        app.config["MAX_CONTENT_LENGTH"] = 50 * 1024 * 1024
    assert response.status_code == 413


def test_new_group_can_be_named_on_upload(app, client, owner):
    response = client.post(
        "/a/acme/imports/new",
        data={"file": (io.BytesIO(b"email\na@example.com\n"), "a.csv"), "new_group": "Messe 2026"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(ImportJob.group_name)) == "Messe 2026"


def test_viewer_cannot_import(app, client, make_account, make_user):
    account_id = make_account("acme")
    make_user("viewer@acme.example", account_id, Role.VIEWER)
    login(client, "viewer@acme.example")
    assert client.get("/a/acme/imports").status_code == 200
    assert client.get("/a/acme/imports/new").status_code == 403


def test_other_tenants_imports_are_404(app, client, group_id, make_account, make_user):
    _upload(client, group_id)
    with app.app_context():
        job_id = db.session.scalar(db.select(ImportJob.id))
    client.post("/logout")
    other = make_account("other")
    make_user("o@other.example", other, Role.OWNER)
    login(client, "o@other.example")
    for path in (
        f"/a/other/imports/{job_id}",
        f"/a/other/imports/{job_id}/status",
        f"/a/other/imports/{job_id}/problems.csv",
    ):
        assert client.get(path).status_code == 404, path
    for path in (
        f"/a/other/imports/{job_id}/mapping",
        f"/a/other/imports/{job_id}/start",
        f"/a/other/imports/{job_id}/resume",
    ):
        assert client.post(path, data={"mode": "add"}).status_code == 404, path
    assert client.get(f"/a/acme/imports/{job_id}").status_code == 404


def test_a_file_broken_halfway_says_so_in_the_readers_language_without_a_useless_continue(
    app, client, group_id
):
    """UTF-8 at the top, a Windows "ü" at line 11,001 (two exports pasted together): the
    check stops there, and the page tells the owner — in German here, whatever language
    the worker ran in — which line and what to do, and offers no "Continue", which would
    only meet the same bytes again."""
    lines = ["E-Mail;Vorname"] + [f"p{i}@example.de;Jürgen" for i in range(12_000)]
    body = "\r\n".join(lines).encode()
    broken = body.replace(b"p10999@example.de;J\xc3\xbcrgen", b"p10999@example.de;M\xfcller")
    assert broken != body
    _upload(client, group_id, broken)
    with app.app_context():
        job_id = db.session.scalar(db.select(ImportJob.id))
    client.post(
        f"/a/acme/imports/{job_id}/mapping",
        data={"column-0": "email", "column-1": "first_name", "mode": "update_add"},
    )
    page = client.get(f"/a/acme/imports/{job_id}?lang=de").get_data(as_text=True)
    assert 'id="import-file-problem"' in page
    assert "Die Datei ist ab Zeile" in page and "nicht in der Kodierung utf-8" in page
    assert "„CSV UTF-8“" in page
    assert 'id="resume-button"' not in page
    resumed = client.post(f"/a/acme/imports/{job_id}/resume", follow_redirects=True)
    assert "continues where it stopped" not in resumed.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Contact.id))) == 0
