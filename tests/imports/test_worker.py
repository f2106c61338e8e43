"""Imports on a real `rq worker` process: the whole job, and a worker killed mid-way."""

from __future__ import annotations

import os
import signal
import time

from portal.accounts import service as accounts
from portal.contacts.models import Contact, Group, Subscription, Tag, contact_tags
from portal.extensions import db
from portal.imports import service, tasks
from portal.imports.models import ImportJob, ImportRow, ImportRowProblem, ImportStatus
from tests.imports.conftest import contact_state, postgresql_only, write_csv
from tests.workers import children, kill_with_work_horses, start_worker


def _rows(n):
    rows = [["email", "first_name", "last_name", "tags"]]
    rows += [
        [f"user{i}@example.com", f"Zoë{i}", f"Größ{i % 7}", f"T{i % 3};Ł{i % 2}"] for i in range(n)
    ]
    return rows


def _new_import(app, tmp_path, slug, rows):
    with app.app_context():
        account = accounts.create_account(slug.title(), slug)
        group = Group(account_id=account.id, name="Newsletter")
        db.session.add(group)
        db.session.commit()
        path = write_csv(tmp_path / f"{slug}.csv", rows)
        job = service.create_import(
            account, actor=None, group=group, source_path=path, filename=f"{slug}.csv", source="ui"
        )
        service.configure(
            job, mapping=job.mapping, mode="update_add", import_consent=False, restore_deleted=False
        )
        db.session.commit()
        return account.id, job.id


def _status(app, job_id):
    with app.app_context():
        db.session.remove()
        return db.session.get(ImportJob, job_id)


def test_import_runs_on_a_real_worker(web, tmp_path, database_url, redis_url):
    account_id, job_id = _new_import(web, tmp_path, "realworker", _rows(300))
    with web.app_context():
        tasks.enqueue_check(db.session.get(ImportJob, job_id))
    out = start_worker(database_url, redis_url).finish(timeout=120)
    job = _status(web, job_id)
    assert job.status == ImportStatus.READY, out[-3000:]
    assert job.dry_run["created"] == 300
    with web.app_context():
        tasks.enqueue_run(db.session.get(ImportJob, job_id))
        from portal.extensions import rq

        assert rq.get_queue().job_ids, "the run job must be waiting in the queue"
    out = start_worker(database_url, redis_url).finish(timeout=120)
    with web.app_context():
        job = db.session.get(ImportJob, job_id)
        assert job.status == ImportStatus.FINISHED, out[-3000:]
        assert job.created == 300
        assert len(contact_state(account_id)) == 300


def test_killed_worker_resumes_without_doubling(web, tmp_path, database_url, redis_url):
    rows = _rows(20000)
    clean_account, clean_job = _new_import(web, tmp_path, "clean", rows)
    with web.app_context():
        service.run(db.session.get(ImportJob, clean_job))

    account_id, job_id = _new_import(web, tmp_path, "killed", rows)
    with web.app_context():
        tasks.enqueue_run(db.session.get(ImportJob, job_id))
    worker = start_worker(
        database_url, redis_url, burst=False, IMPORT_BATCH_ROWS="200", IMPORT_CHUNK_ROWS="2000"
    )
    deadline = time.monotonic() + 120
    staged_at_kill = 0
    while time.monotonic() < deadline:
        job = _status(web, job_id)
        assert job.status != ImportStatus.FAILED, job.error
        if job.staged_line >= 2000:
            kill_with_work_horses(worker.pid)
            staged_at_kill = job.staged_line
            break
        time.sleep(0.02)
    worker.process.wait(timeout=30)
    killed_at = time.monotonic()
    assert 0 < staged_at_kill < 20001, "the worker must die in the middle of the import"
    job = _status(web, job_id)
    assert job.status == ImportStatus.RUNNING and not job.staging_done
    with web.app_context():
        assert not service.can_resume(db.session.get(ImportJob, job_id)), "it looks alive"

    # the next worker to start finds the dead one's job and fails the import at once
    start_worker(database_url, redis_url).finish(timeout=60)
    job = _status(web, job_id)
    assert job.status == ImportStatus.FAILED and job.error.startswith("worker_lost")
    assert time.monotonic() - killed_at < 30
    with web.app_context():
        job = db.session.get(ImportJob, job_id)
        assert service.can_resume(job)  # "Continue", without ten quiet minutes
        tasks.enqueue_run(job)
    out = start_worker(
        database_url, redis_url, IMPORT_BATCH_ROWS="200", IMPORT_CHUNK_ROWS="2000"
    ).finish(timeout=300)
    with web.app_context():
        job = db.session.get(ImportJob, job_id)
        assert job.status == ImportStatus.FINISHED, out[-3000:]
        clean = db.session.get(ImportJob, clean_job)
        assert job.counters() == clean.counters()
        assert job.created == 20000
        killed_state = contact_state(account_id)
        clean_state = contact_state(clean_account)
        assert len(killed_state) == 20000

        def comparable(state):
            return {
                email: (c["first"], c["last"], c["tags"], [s[0] for s in c["subs"].values()])
                for email, c in state.items()
            }

        assert comparable(killed_state) == comparable(clean_state)


def _written(app, account_id, job_id):
    """Everything the import wrote, in a few set-based queries: its row, its reported
    rows, staging, and the account's contacts with their tags and subscriptions."""
    with app.app_context():
        db.session.remove()
        job = db.session.get(ImportJob, job_id)
        row = (
            job.status,
            job.counters(),
            job.staged_line,
            job.merged_line,
            job.staging_done,
            job.finished_at,
            job.error,
            job.lease,
        )
        counted = {
            "problems": db.select(ImportRowProblem).where(ImportRowProblem.import_id == job_id),
            "staged": db.select(ImportRow).where(ImportRow.import_id == job_id),
        }
        counts = {
            name: db.session.scalar(db.select(db.func.count()).select_from(q.subquery()))
            for name, q in counted.items()
        }
        contacts = {
            email: (first, last, status, updated_at)
            for email, first, last, status, updated_at in db.session.execute(
                db.select(
                    Contact.email,
                    Contact.first_name,
                    Contact.last_name,
                    Contact.status,
                    Contact.updated_at,
                ).where(Contact.account_id == account_id)
            )
        }
        tags = sorted(
            db.session.execute(
                db.select(Contact.email, Tag.name)
                .join(contact_tags, contact_tags.c.contact_id == Contact.id)
                .join(Tag, Tag.id == contact_tags.c.tag_id)
                .where(Contact.account_id == account_id)
            ).all()
        )
        subs = sorted(
            db.session.execute(
                db.select(Contact.email, Subscription.active, Subscription.activated_at)
                .join(Subscription, Subscription.contact_id == Contact.id)
                .where(Contact.account_id == account_id)
            ).all()
        )
        return {"job": row, **counts, "contacts": contacts, "tags": tags, "subs": subs}


@postgresql_only(
    "SQLite has one writer at a time and no server to end a stuck worker's "
    "transaction; the lease itself is tested on SQLite in test_lease.py"
)
def test_stuck_worker_is_fenced_off_by_the_one_that_continues(
    web, tmp_path, database_url, redis_url
):
    """Worker A gets stuck (SIGSTOP of its work horse) in the middle of an import; the
    page's "continue" starts worker B, which finishes the import. When A wakes up it
    must not write a single row: its next commit finds that its lease is gone."""
    rows = _rows(20000)
    clean_account, clean_job = _new_import(web, tmp_path, "cleanrun", rows)
    with web.app_context():
        service.run(db.session.get(ImportJob, clean_job))

    account_id, job_id = _new_import(web, tmp_path, "stuck", rows)
    with web.app_context():
        tasks.enqueue_run(db.session.get(ImportJob, job_id))
    small = {"IMPORT_BATCH_ROWS": "200", "IMPORT_CHUNK_ROWS": "2000"}
    # A stuck inside a transaction holds row locks: the server cancels and ends it
    worker_a = start_worker(database_url, redis_url, IMPORT_STUCK_SECONDS="3", **small)
    horses = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = _status(web, job_id)
        assert job.status != ImportStatus.FAILED, job.error
        if job.staged_line >= 2000 and (horses := children(worker_a.pid)):
            for horse in horses:
                os.kill(horse, signal.SIGSTOP)
            break
        time.sleep(0.02)
    assert horses, "worker A must be stopped in the middle of the import"
    try:
        stopped_at = _status(web, job_id)
        assert stopped_at.status == ImportStatus.RUNNING and not stopped_at.staging_done

        with web.app_context():
            job = db.session.get(ImportJob, job_id)
            job.touched_at = None  # ten quiet minutes later the page offers "continue"
            db.session.commit()
            assert service.can_resume(job)
            tasks.enqueue_run(job)
        out_b = start_worker(database_url, redis_url, **small).finish(timeout=300)
        finished = _written(web, account_id, job_id)
        assert finished["job"][0] == ImportStatus.FINISHED, out_b[-3000:]
        with web.app_context():
            assert finished["job"][1] == db.session.get(ImportJob, clean_job).counters()
    finally:
        for horse in horses:
            os.kill(horse, signal.SIGCONT)
    out_a = worker_a.finish(timeout=120)

    assert _written(web, account_id, job_id) == finished, out_a[-3000:]
    clean = _written(web, clean_account, clean_job)
    assert len(finished["contacts"]) == 20000

    def names(written):
        return {email: c[:3] for email, c in written["contacts"].items()}

    def links(written):
        return [(email, tag) for email, tag in written["tags"]]

    assert names(finished) == names(clean)
    assert links(finished) == links(clean)
    assert [(e, a) for e, a, _ in finished["subs"]] == [(e, a) for e, a, _ in clean["subs"]]
