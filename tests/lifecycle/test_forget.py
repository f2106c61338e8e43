"""Forget me: immediate, irreversible erasure. Afterwards no table holds the address or
the names; a keyed hash keeps imports, backup restores and the API from bringing the
person back; the audit log has a receipt without personal data; only the person's own
sign-up through the form (with its confirmation link) lets them in again."""

from __future__ import annotations

import email
import email.policy
import gzip
import io
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from portal.accounts.models import Account
from portal.backups import read
from portal.backups.models import Backup
from portal.backups.read import download_stream
from portal.backups.restore import restore_as_import
from portal.backups.snapshot import snapshot
from portal.contacts import queries
from portal.contacts import service as contacts
from portal.contacts.models import Contact, Group
from portal.core.audit import AuditEvent
from portal.core.privacy import Suppression
from portal.core.storage import get_storage
from portal.extensions import db
from portal.imports import files as upload_files
from portal.imports import service as imports
from portal.imports.models import ImportBeforeImage, ImportRowProblem
from portal.lifecycle import service, signup
from portal.mail import outbox_messages
from tests.backups.stores import raw_bytes
from tests.imports.conftest import write_csv

EMAIL = "jürgen.größ@example.com"
SHOUTED = "Jürgen.Größ@Example.COM"  # the same address as a file may spell it
FIRST, LAST = "Jürgen", "Größmann-Żółć"


def dump_of_every_table() -> str:
    """The text of every row of every table in the database (not only the models').
    The chunks of the database file store are files: dump_of_every_stored_file."""
    engine = db.session.get_bind()
    parts = []
    for name in inspect(engine).get_table_names():
        if name == "stored_file_chunks":
            continue
        for row in db.session.execute(text(f'SELECT * FROM "{name}"')):  # noqa: S608
            parts.append(" ".join(str(v) for v in row))
    return "\n".join(parts).lower()


def dump_of_every_stored_file(leave_out: set[str] = frozenset()) -> dict[str, str]:
    """Every file of the database store (a backup: a gzip'd CSV in bytea rows), put
    together from its chunks and read as text like a file on disk, by key."""
    found = {}
    for file_id, key in db.session.execute(text("SELECT id, key FROM stored_files")).all():
        if key in leave_out:
            continue
        data = b"".join(
            bytes(chunk)
            for chunk in db.session.scalars(
                text("SELECT data FROM stored_file_chunks WHERE file_id = :id ORDER BY seq"),
                {"id": file_id},
            )
        )
        found[f"stored:{key}"] = _file_text(key, data).lower()
    return found


def _file_text(name: str, data: bytes) -> str:
    """What a file says, as text: gzip and ZIP (exports, .xlsx) unpacked, mails decoded
    (their bodies are base64 or quoted-printable), UTF-16 read as such."""
    if name.endswith(".gz"):
        return _file_text(name[:-3], gzip.decompress(data))
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            return "\n".join(_file_text(m, package.read(m)) for m in package.namelist())
    if name.endswith(".eml"):
        message = email.message_from_bytes(data, policy=email.policy.default)
        parts = [str(v) for _, v in message.items()]
        parts += [str(p.get_content()) for p in message.walk() if not p.is_multipart()]
        return "\n".join(parts)
    text = data.decode("utf-8", "replace")
    if b"\x00" in data:
        text += data.decode("utf-16", "replace")
    return text


def dump_of_every_file(*roots: Path, leave_out: set[Path] = frozenset()) -> dict[str, str]:
    """Every file under the folders (the instance folder, the backup store, the outbox),
    by path, as lower-case text."""
    found = {}
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and path.resolve() not in leave_out:
                found[str(path)] = _file_text(path.name, path.read_bytes()).lower()
    return found


NEEDLES = (EMAIL, "größ@example.com", FIRST.lower(), LAST.lower(), "größmann")


def _person_is_nowhere(
    *roots: Path, leave_out: set[Path] = frozenset(), leave_out_keys: set[str] = frozenset()
) -> None:
    """Neither a row nor a file (in the folders, or in the database store) holds the
    person; `leave_out` / `leave_out_keys`: files that may (an old backup)."""
    dump = dump_of_every_table()
    for needle in NEEDLES:
        assert needle.lower() not in dump, needle
    # JSON columns may hold it escaped
    assert "gr\\u00f6\\u00dfmann" not in dump and "j\\u00fcrgen" not in dump
    files = dump_of_every_file(*roots, leave_out=leave_out)
    files.update(dump_of_every_stored_file(leave_out_keys))
    for path, content in files.items():
        for needle in (*NEEDLES, "gr\\u00f6\\u00dfmann", "j\\u00fcrgen"):
            assert needle.lower() not in content, (needle, path)


@pytest.fixture
def person(account):
    """A contact with everything that can hold its data: groups with sign-up data, tags,
    activities, an import error report line and a staged row of an unfinished import."""
    news = contacts.create_group(account, "Newsletter", actor=None, source="ui")
    shop = contacts.create_group(account, "Shop", actor=None, source="ui")
    contact = contacts.create_contact(account, EMAIL, first_name=FIRST, last_name=LAST, source="ui")
    contacts.subscribe(contact, news, at=datetime(2025, 1, 2, tzinfo=UTC), source="ui")
    contacts.subscribe(contact, shop, source="ui")
    contacts.unsubscribe(contact, shop, reason="unsubscribed", source="ui")
    contacts.add_tag(contact, "VIP", actor=None, source="ui")
    contacts.add_tag(contact, "Kunde", actor=None, source="ui")
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
    job = _import(
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
    imports.drop_staging(job)  # what the worker does after the run: the list goes
    assert db.session.scalar(db.select(db.func.count(ImportRowProblem.id))) == 1
    contact_id = person.id
    # the import's backup, made before the erasure, keeps the person until it expires
    # (test_forget_leaves_no_trace_in_any_table_or_file: no read gives them out)
    old_backups = set(db.session.scalars(db.select(Backup.storage_key)))

    receipt = service.forget_contact(person, actor=None, source="ui", ip="203.0.113.9")
    db.session.commit()

    assert receipt.contacts == 1 and receipt.subscriptions == 2 and receipt.tag_links == 2
    assert receipt.activities == 2 and receipt.failed_rows == 1
    assert db.session.get(Contact, contact_id) is None
    _person_is_nowhere(leave_out_keys=old_backups)
    # what stays: the hash (not the address) and a receipt without personal data
    stored = db.session.scalar(db.select(Suppression.email_hash))
    assert re.fullmatch(r"[0-9a-f]{64}", stored) and stored != EMAIL
    event = db.session.scalar(
        db.select(AuditEvent).where(AuditEvent.action == "contacts.forgotten")
    )
    assert event.ip == "203.0.113.9" and event.details["contacts"] == 1
    assert event.details["activities"] == 2 and event.details["source"] == "ui"
    # the other person of the import is untouched
    assert queries.find_contact(account, "other@example.com") is not None


def test_neither_an_import_nor_a_backup_restore_nor_the_api_brings_the_person_back(
    account, person, tmp_path
):
    group = db.session.scalar(db.select(Group).where(Group.name == "Newsletter"))
    backup = snapshot(group, reason="manual", actor=None)  # holds the person
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

    restore = restore_as_import(backup, actor=None)
    db.session.commit()
    imports.run(restore)
    assert queries.find_contact(account, EMAIL) is None
    # the download of the backup leaves the person out too
    assert EMAIL.encode() not in b"".join(download_stream(backup))

    with pytest.raises(contacts.ContactForgotten) as refused:
        contacts.create_contact(account, EMAIL, source="api")
    assert "sign-up form" in str(refused.value.errors["email"])
    other = contacts.create_contact(account, "ok@example.com", source="ui")
    with pytest.raises(contacts.ContactForgotten):
        contacts.update_contact(other, actor=None, email=EMAIL, source="ui")
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
    contact = queries.find_contact(account, EMAIL)
    sub = contacts.subscription(contact, group)
    assert sub.active and sub.source == "form" and sub.activated_at == request.created_at
    assert (sub.signup_ip, sub.confirm_ip) == ("198.51.100.7", "198.51.100.8")
    assert sub.confirmed_at is not None


def test_forget_by_address_without_a_contact_still_blocks_later_imports(account, tmp_path):
    group = contacts.create_group(account, "Newsletter", actor=None, source="ui")
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
    mine = contacts.create_contact(account, "shared@example.com", source="ui")
    theirs = contacts.create_contact(other, "shared@example.com", source="ui")
    db.session.commit()
    service.forget_contact(mine, actor=None, source="ui")
    db.session.commit()
    assert db.session.get(Contact, theirs.id) is not None
    assert not service.is_forgotten(other, "shared@example.com")


# --- traces outside the contact's rows (issue 16, point 3) ------------------------------


@pytest.fixture
def folders(app, tmp_path, monkeypatch):
    """An instance folder, a backup store and an outbox of this test's own: the dump of
    every file must not meet what other tests left behind."""
    roots = {
        "INSTANCE_PATH": tmp_path / "instance",
        "BACKUP_DIR": tmp_path / "backups",
        "OUTBOX_DIR": tmp_path / "outbox",
    }
    for key, folder in roots.items():
        folder.mkdir()
        monkeypatch.setitem(app.config, key, str(folder))
    return list(roots.values())


def _upload(account, group, tmp_path, rows, name="list.csv"):
    path = write_csv(tmp_path / name, rows)
    job = imports.create_import(
        account, actor=None, group=group, source_path=path, filename=name, source="ui"
    )
    db.session.commit()
    return job


def test_forget_leaves_no_trace_in_any_table_or_file(account, person, tmp_path, folders):
    """Everything that held the person before the erasure — a portal import (failed-rows
    line, before image, its backup), exports in every format, a mass-management draft,
    an uploaded list and a checked one, the check step's examples of a finished import,
    the confirmation mail of a sign-up — and a refused re-import after it: afterwards no
    table and no file holds the address or the names, except the backup made before the
    erasure, which no read delivers."""
    from portal.integrations import export
    from portal.lifecycle import mass
    from portal.lifecycle.models import LifecycleAction

    news = db.session.scalar(db.select(Group).where(Group.name == "Newsletter"))
    shop = db.session.scalar(db.select(Group).where(Group.name == "Shop"))
    # a portal import: a backup first, a before image of the person it updates, and a
    # failed-rows line with the address (the duplicate)
    changed = _import(
        account,
        news,
        tmp_path,
        [["E-Mail", "Vorname", "Nachname"], [EMAIL, FIRST, LAST + "-Neu"], [SHOUTED, FIRST, LAST]],
    )
    assert changed.backup_id is not None and changed.updated == 1
    assert db.session.scalar(db.select(db.func.count()).select_from(ImportBeforeImage)) == 1
    imports.drop_staging(changed)
    old_backup = db.session.get(Backup, changed.backup_id)
    # a finished import of before this change, whose check step listed the person
    changed.dry_run = {**changed.dry_run, "consent_examples": {"stays_off": [EMAIL, "x@y.de"]}}
    # exports in every format
    runs = [
        export.start(account, fmt="csv", group=news, actor=None),
        export.start(account, fmt="csv", group=None, actor=None),
        export.start(account, fmt="jsonl", group=None, actor=None),
    ]
    db.session.commit()
    for run in runs:
        export.run(run)
    assert all(export.downloadable(run) for run in runs)
    # a mass-management draft with a pasted list
    draft = mass.draft_for_emails(
        account,
        LifecycleAction.DELETE,
        mass.parse_pasted(f"{SHOUTED}\nother@example.com"),
        actor=None,
        source="ui",
    )
    # an uploaded list (mapping page) and a checked one (signed off in "Shop": listed)
    uploaded = _upload(account, news, tmp_path, [["email", "first"], [EMAIL, FIRST]])
    checked = _upload(
        account,
        shop,
        tmp_path,
        [["email", "first_name", "active", "signup_at"], [EMAIL, FIRST, "yes", "2030-01-01"]],
        name="checked.csv",
    )
    imports.configure(
        checked, mapping=checked.mapping, mode="update_add", import_consent=False,
        restore_deleted=False,
    )  # fmt: skip
    db.session.commit()
    imports.check(checked)
    assert EMAIL in str(checked.dry_run["consent_examples"]), (checked.mapping, checked.dry_run)
    assert EMAIL in str(imports.preview_rows(uploaded))
    # a sign-up through the form waits for its confirmation: a mail in the outbox
    signup.request_signup(news, EMAIL, first_name=FIRST, last_name=LAST, ip=None, locale="de")
    db.session.commit()
    assert len(outbox_messages()) == 1
    unrelated = _upload(account, news, tmp_path, [["email"], ["else@example.com"]], "else.csv")
    stays = [unrelated.stored_path]

    receipt = service.forget_contact(person, actor=None, source="ui")
    db.session.commit()

    # a re-import after the erasure is refused, and its report names nobody
    again = _import(
        account,
        news,
        tmp_path,
        [["E-Mail", "Vorname", "Nachname"], [EMAIL, FIRST, LAST], ["ok@example.com", "Ok", ""]],
    )
    imports.drop_staging(again)
    problem = db.session.scalar(
        db.select(ImportRowProblem).where(ImportRowProblem.import_id == again.id)
    )
    assert (problem.code, problem.line, problem.cells, problem.params) == ("forgotten", 2, [], {})
    snapshot(news, reason="manual", actor=None)  # made after: without the person
    db.session.commit()

    assert receipt.files == 3 + 2 + 1  # three exports, two uploads, one mail
    for job in (uploaded, checked):
        assert (job.status, job.error, job.stored_path) == ("cancelled", "erased", "")
    assert all(not export.downloadable(run) and run.error == "erased" for run in runs)
    assert draft.selection["emails"] == ["other@example.com"] and draft.total == 1
    assert draft.result["found"] == 0
    assert changed.dry_run["consent_examples"] == {"stays_off": ["x@y.de"]}
    assert outbox_messages() == [] and all(upload_files.store().exists(k) for k in stays)
    old_file = Path(folders[1]) / old_backup.storage_key  # on the folder store
    _person_is_nowhere(
        *folders, leave_out={old_file.resolve()}, leave_out_keys={old_backup.storage_key}
    )
    # the backup made before the erasure still holds the person until it expires, but
    # no read gives them out: download, the file a restore imports, the restore itself
    old_bytes = raw_bytes(get_storage(), old_backup.storage_key)
    assert EMAIL.encode() in gzip.decompress(old_bytes)
    assert EMAIL.encode() not in b"".join(download_stream(old_backup))
    read.write_csv(old_backup, tmp_path / "restore.csv")
    assert EMAIL not in (tmp_path / "restore.csv").read_text(encoding="utf-8-sig")
    restore = restore_as_import(old_backup, actor=None)
    db.session.commit()
    imports.run(restore)
    assert queries.find_contact(account, EMAIL) is None


def test_pages_after_an_erasure_name_nobody_and_say_why_files_are_gone(
    client, owner, app, tmp_path, folders
):
    """The summary and problems.csv of a refused re-import show the line and the reason
    only; an upload staged before the erasure and an export made before it say why
    they are gone."""
    from portal.integrations import export

    with app.app_context():
        account = db.session.get(Account, owner)
        group = contacts.create_group(account, "Newsletter", actor=None, source="ui")
        contact = contacts.create_contact(
            account, EMAIL, first_name=FIRST, last_name=LAST, source="ui"
        )
        contacts.subscribe(contact, group, source="ui")
        db.session.commit()
        staged = _upload(account, group, tmp_path, [["email", "first_name"], [EMAIL, FIRST]])
        run = export.start(account, fmt="jsonl", group=None, actor=None)
        db.session.commit()
        export.run(run)
        service.forget_contact(contact, actor=None, source="ui")
        db.session.commit()
        again = _import(
            account, group, tmp_path, [["email", "first_name", "last_name"], [EMAIL, FIRST, LAST]]
        )
        ids = {"staged": staged.id, "again": again.id, "export": run.id}

    summary = client.get(f"/a/acme/imports/{ids['again']}").get_data(as_text=True)
    assert "Forgotten" in summary
    report = client.get(f"/a/acme/imports/{ids['again']}/problems.csv").get_data(as_text=True)
    assert report.splitlines()[1].split(",")[0] == "2" and "Forgotten" in report
    for page in (summary, report):
        assert EMAIL not in page and FIRST not in page and "Größmann" not in page
    withdrawn = client.get(f"/a/acme/imports/{ids['staged']}").get_data(as_text=True)
    assert 'id="import-file-erased"' in withdrawn and EMAIL not in withdrawn
    gone = client.get(f"/a/acme/integrations/exports/{ids['export']}").get_data(as_text=True)
    assert 'id="export-erased"' in gone
    assert client.get(f"/a/acme/integrations/exports/{ids['export']}/download").status_code == 410


def test_an_erasure_while_an_export_or_a_check_runs_leaves_no_file_with_the_person(
    account, person, tmp_path, folders, monkeypatch
):
    """The export reads its contacts batch by batch and the check reads the file while
    "forget me" may run: the export is written again without the person, the checked
    upload is withdrawn."""
    from portal.core.privacy import Suppression
    from portal.integrations import export

    news = db.session.scalar(db.select(Group).where(Group.name == "Newsletter"))
    run = export.start(account, fmt="jsonl", group=None, actor=None)
    db.session.commit()
    batches = []
    real_progress = export._progress

    def forget_after_the_first_batch(export_run, n):
        batches.append(n)
        real_progress(export_run, n)
        if len(batches) == 1:  # the person is in the file now
            service.forget_emails(account, [EMAIL], actor=None, source="api")
            db.session.commit()

    monkeypatch.setattr(export, "_progress", forget_after_the_first_batch)
    export.run(run)
    assert batches == [1], "the second writing found nobody left to export"
    assert run.status == "finished" and run.error == "" and export.downloadable(run)
    with export.export_copy(run) as path:
        assert EMAIL not in path.read_text()
    # a check during which the person is erased (again: the suppression goes first)
    db.session.execute(db.delete(Suppression))
    checked = _upload(account, news, tmp_path, [["email", "first_name"], [EMAIL, FIRST]])
    imports.configure(
        checked, mapping=checked.mapping, mode="update_add", import_consent=False,
        restore_deleted=False,
    )  # fmt: skip
    db.session.commit()
    real_dry_run = imports.merge.dry_run

    def erase_meanwhile(job, **kw):
        service.forget_emails(account, [EMAIL], actor=None, source="api")
        db.session.commit()
        return real_dry_run(job, **kw)

    monkeypatch.setattr(imports.merge, "dry_run", erase_meanwhile)
    imports.check(checked)
    assert (checked.status, checked.error, checked.stored_path) == ("cancelled", "erased", "")
    _person_is_nowhere(*folders)


def test_a_queued_mass_action_keeps_the_place_of_an_erased_address_empty(account, person):
    """The job's checkpoint counts list entries: the erased address leaves an empty
    place, which the job then skips without counting it "not found"."""
    from portal.lifecycle import mass
    from portal.lifecycle.models import LifecycleAction

    other = contacts.create_contact(account, "other@example.com", source="ui")
    job = mass.draft_for_emails(
        account,
        LifecycleAction.DELETE,
        mass.parse_pasted(f"other@example.com\n{EMAIL}\nnobody@example.com"),
        actor=None,
        source="ui",
    )
    mass.confirm(job)
    db.session.commit()
    service.forget_contact(person, actor=None, source="ui")
    db.session.commit()
    assert job.selection["emails"] == ["other@example.com", "", "nobody@example.com"]
    mass.run(job)
    assert (job.processed, job.changed, job.not_found) == (3, 1, 1)
    assert db.session.get(Contact, other.id).status == "deleted"
    _person_is_nowhere()
