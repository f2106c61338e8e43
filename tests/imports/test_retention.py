"""Uploaded lists are people's data: a finished import's file goes at once, the file of
an import that is never finished goes after UPLOAD_KEEP_DAYS (7), and so do files that
no import refers to. The summary and the failed-rows report stay."""

from __future__ import annotations

import io
from datetime import timedelta

from portal import clock
from portal.extensions import db
from portal.imports import files, queries, service, tasks
from portal.imports.models import ImportJob, ImportRow, ImportStatus
from tests.backups.stores import age
from tests.imports.conftest import configured_import, write_csv

ROWS = [
    ["E-Mail", "Vorname"],
    ["anna@example.de", "Anna"],
    ["kaputt", "Kein"],
    ["łukasz@example.pl", "Łukasz"],
]


def _uploaded(account, group, tmp_path, name="list.csv") -> ImportJob:
    return configured_import(account, group, write_csv(tmp_path / name, ROWS))


def test_a_finished_import_keeps_its_report_but_not_the_file(account, group, tmp_path):
    job = _uploaded(account, group, tmp_path)
    stored = job.stored_path
    assert files.store().exists(stored)

    tasks.enqueue_run(job)  # the session app runs jobs at once: run, then the clean-up

    job = db.session.get(ImportJob, job.id)
    assert job.status == ImportStatus.FINISHED and job.created == 2
    assert not files.store().exists(stored) and job.stored_path == ""
    assert db.session.scalar(db.select(db.func.count()).select_from(ImportRow)) == 0
    assert [p.line for p in queries.problems(job)] == [3], "the failed-rows report stays"


def test_unfinished_imports_lose_their_file_after_seven_days(account, group, tmp_path):
    old = _uploaded(account, group, tmp_path, "old.csv")
    recent = _uploaded(account, group, tmp_path, "recent.csv")
    running = _uploaded(account, group, tmp_path, "running.csv")
    failed = _uploaded(account, group, tmp_path, "failed.csv")
    done = _uploaded(account, group, tmp_path, "done.csv")
    service.run(done)  # finished, but its clean-up job never ran (Redis was down)
    assert db.session.scalar(db.select(db.func.count()).select_from(ImportRow)) > 0
    now = clock.now()
    done.created_at = now - timedelta(days=10)
    old.created_at = now - timedelta(days=8)
    failed.created_at = now - timedelta(days=7, minutes=1)
    failed.status = ImportStatus.FAILED.value
    recent.created_at = now - timedelta(days=6)
    running.created_at = now - timedelta(days=9)
    running.status = ImportStatus.RUNNING.value  # a long import is never swept
    running.touched_at = now - timedelta(minutes=1)
    db.session.commit()
    store = files.store()
    orphan_old, orphan_new = f"{account.id}/broken-off.csv", f"{account.id}/just-now.csv"
    for orphan in (orphan_old, orphan_new):
        store.write_stream(orphan, [b"email\nx@example.de\n"])
    age(store, orphan_old, now - timedelta(days=8))
    paths = {job.id: job.stored_path for job in (old, recent, running, failed, done)}

    assert service.sweep_uploads(now) == 4

    for job, kept in ((old, False), (failed, False), (recent, True), (running, True)):
        job = db.session.get(ImportJob, job.id)
        assert store.exists(paths[job.id]) is kept
        if not kept:
            assert (job.status, job.error, job.stored_path) == ("cancelled", "file_expired", "")
    assert db.session.get(ImportJob, recent.id).status == ImportStatus.UPLOADED
    done = db.session.get(ImportJob, done.id)
    assert (done.status, done.created, done.stored_path) == ("finished", 2, "")
    assert not store.exists(paths[done.id])
    assert db.session.scalar(db.select(db.func.count()).select_from(ImportRow)) == 0
    assert not store.exists(orphan_old) and store.exists(orphan_new)
    assert service.sweep_uploads(now) == 0, "a second run finds nothing more"


def test_an_import_abandoned_by_a_dead_worker_loses_its_file_too(account, group, tmp_path):
    job = _uploaded(account, group, tmp_path, "abandoned.csv")
    now = clock.now()
    job.status = ImportStatus.RUNNING.value
    job.created_at = now - timedelta(days=9)
    job.touched_at = now - timedelta(days=8)  # its worker died; nobody continued it
    db.session.commit()
    stored = job.stored_path

    assert service.sweep_uploads(now) == 1

    job = db.session.get(ImportJob, job.id)
    assert not files.store().exists(stored)
    assert (job.status, job.error, job.stored_path) == ("cancelled", "file_expired", "")


def test_the_page_of_a_swept_import_says_why_and_offers_no_continue(app, client, data, tmp_path):
    group = data.group("Newsletter")
    response = client.post(
        "/a/acme/imports/new",
        data={"file": (io.BytesIO(b"E-Mail\nanna@example.de\n"), "liste.csv"), "group": str(group)},
        content_type="multipart/form-data",
    )
    page_url = response.headers["Location"]
    with app.app_context():
        job = db.session.scalar(db.select(ImportJob))
        job.status = ImportStatus.FAILED.value
        job.created_at = clock.now() - timedelta(days=8)
        db.session.commit()
        service.sweep_uploads()

    page = client.get(page_url).get_data(as_text=True)
    assert "its file was removed after 7 days" in page
    assert "upload it again" in page
    assert 'id="resume-button"' not in page

    page = client.get(f"{page_url}?lang=de").get_data(as_text=True)
    assert "7 Tagen" in page
