"""Files for Excel in the reader's language (issue 17, point 5): a backup or an export
downloaded in en, de, it, nl or pl opens in that language's Excel as a table (its
delimiter, its column names, local times with the offset, UTF-8 with BOM), and the same
file imported through the normal import path, without a single manual mapping, brings
back every field, tag, status, sign-up and sign-off date (the exact instant) and
reason. The stored backup stays in the machine format that restore and undo read."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from datetime import UTC, datetime

import pytest

from portal.accounts import service as accounts
from portal.accounts.models import Account, Role
from portal.backups.read import verify
from portal.backups.snapshot import snapshot
from portal.contacts import service as contacts
from portal.contacts.models import Contact, Group, Subscription, contact_row, contact_tags
from portal.core.storage import get_storage
from portal.extensions import db
from portal.imports import headers as h
from portal.imports import mapping as m
from portal.imports import service as imports
from portal.integrations import export
from tests.backups.conftest import add_fields, group_state
from tests.helpers.auth import login

LANGUAGES = ("en", "de", "it", "nl", "pl")
DELIMITER = {"en": ",", "de": ";", "it": ";", "nl": ";", "pl": ";"}
EXACT_CSV = "text/csv; charset=utf-8"

# (email, first, last, fields, tags, active, signup, signoff, reason); the one who never
# confirmed has the date the portal signed them off (an import gives every sign-off one)
PEOPLE = (
    ("juergen@beispiel.de", "Jürgen", "Größ",
     {"city": "Köln", "points": 3.5, "birthday": "1980-02-29", "level": "Gold"},
     ["Kunde", "Straßenfest 2024", "VIP"], True,
     datetime(2026, 3, 29, 0, 30, 5, 123456, tzinfo=UTC), None, None),
    ("lukasz@przyklad.pl", "Łukasz", "Brzęczyszczykiewicz",
     {"city": "Kraków", "points": -3, "level": "Srebro"},
     ["Żółw", "Łódź"], False,
     datetime(2025, 12, 5, 6, 9, tzinfo=UTC), datetime(2026, 7, 1, 21, 15, 30, tzinfo=UTC),
     "complained"),
    ("zoe@example.nl", "Zoë", "van 't Hoff", {"city": "=SUM(A1:A9)", "points": 1234567.25},
     [], False, datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC),
     datetime(2026, 12, 1, 8, 0, tzinfo=UTC), "unconfirmed"),
    ("niccolo@esempio.it", "Niccolò", "Mazzà", {"city": "@home"}, ["caffè"], False,
     datetime(2024, 2, 29, 12, 0, tzinfo=UTC), datetime(2024, 10, 27, 0, 59, tzinfo=UTC),
     "imported"),
    ("plain@example.com", None, None, {}, [], True, datetime(2026, 1, 1, tzinfo=UTC), None,
     None),
)  # fmt: skip


@pytest.fixture
def people(account, group):
    """The group with the five people above (choices: the account's "Stufe" field)."""
    level = next(f for f in imports.custom_fields(account.id).values() if f.key == "level")
    level.choices = ["Gold", "Srebro", "Bronze"]
    for email, first, last, fields, tags, active, signup, signoff, reason in PEOPLE:
        db.session.execute(
            db.insert(Contact), [contact_row(account.id, email, first, last, fields=fields)]
        )
        cid = db.session.scalar(db.select(Contact.id).where(Contact.email == email))
        db.session.add(
            Subscription(
                account_id=account.id,
                contact_id=cid,
                group_id=group.id,
                active=active,
                activated_at=signup,
                deactivated_at=signoff,
                optout_reason=reason,
            )
        )
        for name in tags:
            tag = contacts.get_or_create_tag(account, name)
            db.session.flush()
            db.session.execute(contact_tags.insert().values(contact_id=cid, tag_id=tag.id))
    db.session.commit()
    return group_state(group.id)


@pytest.fixture
def editor(client, account):
    user = accounts.create_user("ed@acme.example", "correct-horse-battery")
    accounts.add_member(account, user, Role.EDITOR)
    db.session.commit()
    login(client, "ed@acme.example")
    return user


def _other_account(slug: str) -> Account:
    """A second account with the same custom fields: everything must come from the file."""
    other = accounts.create_account(slug.title(), slug)
    add_fields(other)
    db.session.flush()
    level = imports.custom_fields(other.id)["level"]
    level.choices = ["Gold", "Srebro", "Bronze"]
    db.session.commit()
    return other


def _import(account: Account, group: Group, body: bytes, tmp_path, name: str):
    """The normal import path: upload, automatic mapping taken as it is, run."""
    path = tmp_path / name
    path.write_bytes(body)
    job = imports.create_import(
        account, actor=None, group=group, source_path=path, filename=name, source="ui"
    )
    assert job.detected_format == "portal"  # "This looks like an export of …"
    assert m.IGNORE not in job.mapping, dict(zip(job.header, job.mapping, strict=True))
    imports.configure(
        job, mapping=job.mapping, mode="update_add", import_consent=True, restore_deleted=False
    )
    db.session.commit()
    imports.run(job)
    assert (job.invalid, job.warnings) == (0, 0)
    return job


def _table(body: bytes, language: str) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads umlauts and Polish letters
    text = body.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text), delimiter=DELIMITER[language]))


def _assert_for_excel(rows: list[list[str]], language: str) -> None:
    header = rows[0]
    assert tuple(header[:8]) == h.PORTAL_HEADERS[language]
    # custom fields by their label, as the account names them
    assert header[8:] == ["Stadt", "Punkte", "Geburtstag", "Stufe"]
    assert len({len(r) for r in rows}) == 1  # one column per cell in the language's Excel
    by_email = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    words = dict(zip(m.PORTAL_HEADER, h.PORTAL_HEADERS[language], strict=True))
    jurgen, lukasz = by_email["juergen@beispiel.de"], by_email["lukasz@przyklad.pl"]
    # times in the account's zone (Europe/Berlin) with the offset, across DST
    assert jurgen[words["signup_at"]] == "2026-03-29 01:30:05.123456+01:00"
    assert lukasz[words["signoff_at"]] == "2026-07-01 23:15:30+02:00"
    assert lukasz[words["signup_at"]] == "2025-12-05 07:09:00+01:00"
    assert jurgen[words["active"]] == h.YES_NO_WORDS[language][0]
    assert lukasz[words["active"]] == h.YES_NO_WORDS[language][1]
    assert lukasz[words["optout_reason"]] == h.REASON_WORDS[language]["complained"]
    assert jurgen["Punkte"] == ("3.5" if language == "en" else "3,5")
    assert by_email["zoe@example.nl"]["Stadt"] == "'=SUM(A1:A9)"  # formula guard
    assert lukasz["Punkte"] == "'-3"


@pytest.mark.parametrize("language", LANGUAGES)
def test_backup_download_opens_in_the_language_and_imports_back_exactly(
    app, client, account, group, people, editor, tmp_path, language
):
    backup = snapshot(group, reason="manual")
    db.session.commit()

    response = client.get(f"/a/acme/backups/{backup.id}/download?lang={language}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == EXACT_CSV
    _assert_for_excel(_table(response.get_data(), language), language)

    other = _other_account("copy")
    target = contacts.create_group(other, "Kopie", actor=None, source="ui")
    db.session.commit()
    job = _import(other, target, response.get_data(), tmp_path, f"backup-{language}.csv")
    assert job.created == len(PEOPLE)
    _assert_same(group_state(target.id), people)


def test_the_stored_backup_stays_in_the_machine_format(app, client, account, group, people, editor):
    backup = snapshot(group, reason="manual")
    db.session.commit()
    assert client.get(f"/a/acme/backups/{backup.id}/download?lang=de").status_code == 200
    with get_storage().open(backup.storage_key) as raw, gzip.open(raw, "rt") as fh:
        first = fh.readline()
    machine = "email,first_name,last_name,tags,active,signup_at,signoff_at,optout_reason,field:"
    assert first.startswith("\ufeff" + machine)
    verify(backup)  # untouched: the checksum still matches


def _export(account, group, *, tmp_path=None):
    run = export.start(account, fmt="csv", group=group, actor=None)
    db.session.commit()
    export.run(run)
    return run


@pytest.mark.parametrize("language", LANGUAGES)
def test_export_of_a_group_opens_in_the_language_and_imports_back_exactly(
    app, client, account, group, people, editor, tmp_path, language
):
    run = _export(account, group)
    with export.export_copy(run) as path, path.open(encoding="utf-8-sig") as fh:
        stored = fh.readline()
    assert stored.startswith("email,first_name,last_name,tags,active,signup_at")

    response = client.get(f"/a/acme/integrations/exports/{run.id}/download?lang={language}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == EXACT_CSV
    _assert_for_excel(_table(response.get_data(), language), language)

    other = _other_account("copy")
    target = contacts.create_group(other, "Kopie", actor=None, source="ui")
    db.session.commit()
    _import(other, target, response.get_data(), tmp_path, f"export-{language}.csv")
    _assert_same(group_state(target.id), people)


@pytest.mark.parametrize("language", ("de", "pl"))
def test_export_of_all_groups_as_zip_imports_back_into_another_account(
    app, client, account, group, people, editor, tmp_path, language
):
    run = export.start(account, fmt="csv", group=None, actor=None)
    db.session.commit()
    export.run(run)
    response = client.get(f"/a/acme/integrations/exports/{run.id}/download?lang={language}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/zip"
    body = response.get_data()
    with zipfile.ZipFile(io.BytesIO(body)) as package:
        rows = _table(package.read("Newsletter.csv"), language)
    _assert_for_excel(rows, language)

    other = _other_account("copy")
    path = tmp_path / "package.zip"
    path.write_bytes(body)
    jobs = export.import_package(other, path, actor=None, source="ui")
    assert all(job.detected_format == "portal" for job in jobs)
    db.session.commit()
    for job in jobs:
        imports.run(job)
    copy = db.session.scalar(
        db.select(Group).where(Group.account_id == other.id, Group.name == "Newsletter")
    )
    _assert_same(group_state(copy.id), people)


def test_file_names_are_in_local_time_without_spaces(app, client, account, editor, time_machine):
    time_machine.move_to("2026-12-05T06:09:00+00:00", tick=False)
    group = contacts.create_group(account, "Kunden Köln / Süd", actor=None, source="ui")
    db.session.commit()
    backup = snapshot(group, reason="manual")
    db.session.commit()
    response = client.get(f"/a/acme/backups/{backup.id}/download")
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="backup-kunden-koln-sud-2026-12-05-0709.csv"; '
        "filename*=UTF-8''backup-Kunden-K%C3%B6ln-S%C3%BCd-2026-12-05-0709.csv"
    )


def test_every_csv_download_sends_its_content_type_once(
    app, client, account, group, people, editor, tmp_path
):
    """ "text/csv; charset=utf-8", not "…; charset=utf-8; charset=utf-8"."""
    backup = snapshot(group, reason="manual")
    db.session.commit()
    job = imports.create_import(
        account,
        actor=None,
        group=group,
        source_path=_bad_file(tmp_path),
        filename="liste.csv",
        source="ui",
    )
    imports.configure(
        job, mapping=job.mapping, mode="add", import_consent=False, restore_deleted=False
    )
    db.session.commit()
    imports.run(job)
    urls = [
        f"/a/acme/backups/{backup.id}/download",
        f"/a/acme/imports/{job.id}/problems.csv",
        "/a/acme/settings/support.csv",
        f"/a/acme/integrations/exports/{_export(account, group).id}/download",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200 and response.get_data(), url
        assert response.headers["Content-Type"] == EXACT_CSV, url


def _bad_file(tmp_path):
    path = tmp_path / "liste.csv"
    path.write_text("E-Mail;Vorname\nkeine-adresse;Anna\nbert@example.com;Bert\n", "utf-8")
    return path


def test_failed_rows_file_of_an_excel_upload_uses_the_readers_delimiter(
    app, client, account, group, editor, tmp_path
):
    """An .xlsx has no delimiter: the failed rows come in the reader's language's."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["E-Mail", "Vorname"])
    book.active.append(["keine-adresse", "Anna"])
    path = tmp_path / "liste.xlsx"
    book.save(path)
    job = imports.create_import(
        account, actor=None, group=group, source_path=path, filename="liste.xlsx", source="ui"
    )
    imports.configure(
        job, mapping=job.mapping, mode="add", import_consent=False, restore_deleted=False
    )
    db.session.commit()
    imports.run(job)
    text = (
        client.get(f"/a/acme/imports/{job.id}/problems.csv?lang=de").get_data().decode("utf-8-sig")
    )
    assert text.splitlines()[0] == "Zeile;Grund;E-Mail;Vorname"


def _assert_same(copy: dict, original: dict) -> None:
    assert copy.keys() == original.keys()
    for email, before in original.items():
        assert copy[email] == before, email
