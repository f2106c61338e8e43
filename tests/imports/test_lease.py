"""The fencing token: a worker whose import was taken over by another writes nothing.

These run in one process (SQLite and PostgreSQL); the same with real worker processes,
one of them stuck, is in test_worker.py."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from portal.contacts.models import Contact
from portal.core import signals
from portal.extensions import db
from portal.imports import service
from portal.imports.lease import Lease, LeaseLost
from portal.imports.models import ImportJob, ImportRow, ImportStatus
from tests.imports.conftest import contact_state, postgresql_only, write_csv

ROWS = [["email", "first_name", "last_name", "tags"]] + [
    [f"kunde{i}@example.de", f"Jürgen{i}", "Größ", "Kunde;Żółw"] for i in range(60)
]


def _new_job(account, group, tmp_path, source="ui"):
    path = write_csv(tmp_path / "list.csv", ROWS)
    job = service.create_import(
        account, actor=None, group=group, source_path=path, filename="list.csv", source=source
    )
    service.configure(
        job, mapping=job.mapping, mode="update_add", import_consent=False, restore_deleted=False
    )
    db.session.commit()
    return job


def _take_over(job_id: int) -> None:
    """What a second worker does when it continues the import: bump the lease, on its
    own connection."""
    with db.engine.connect() as other:
        other.execute(
            db.update(ImportJob).where(ImportJob.id == job_id).values(lease=ImportJob.lease + 1)
        )
        other.commit()


def _reloaded(job_id: int) -> ImportJob:
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(ImportJob, job_id)


def test_worker_taken_over_between_two_batches_writes_no_more(
    app, account, group, tmp_path, monkeypatch
):
    monkeypatch.setitem(app.config, "IMPORT_BATCH_ROWS", 10)
    job = _new_job(account, group, tmp_path, source="api")
    commits = []

    def second_worker_arrives(session):
        # after the lease and two staged batches, a second worker continues the import
        commits.append(session)
        if len(commits) == 3:
            _take_over(job.id)

    event.listen(db.session, "after_commit", second_worker_arrives)
    try:
        with pytest.raises(LeaseLost):
            service.run(job)
    finally:
        event.remove(db.session, "after_commit", second_worker_arrives)

    job = _reloaded(job.id)
    assert job.status == ImportStatus.RUNNING, "the second worker's import, not failed"
    assert (job.staged_line, job.rows_valid, job.merged_line) == (21, 20, 0)
    assert db.session.scalar(db.select(db.func.count()).select_from(ImportRow)) == 20
    assert db.session.scalar(db.select(db.func.count()).select_from(Contact)) == 0

    service.run(job)  # the second worker: on from line 22, nothing doubled
    job = _reloaded(job.id)
    assert (job.status, job.created, job.rows_valid) == (ImportStatus.FINISHED, 60, 60)
    assert len(contact_state(account.id)) == 60


@postgresql_only(
    "on SQLite no second worker can take over while the first one is inside its "
    "write transaction (one writer at a time); between batches it can, see above"
)
def test_worker_taken_over_during_its_backup_writes_nothing(account, group, tmp_path):
    job = _new_job(account, group, tmp_path)
    seen_by_hook = []

    def stuck_in_backup(job):
        # the first worker takes its time; meanwhile a second one continues the import
        seen_by_hook.append(job.id)
        job.error = "written by the first worker"
        _take_over(job.id)

    with signals.before_import.connected_to(stuck_in_backup), pytest.raises(LeaseLost):
        service.run(job)
    assert seen_by_hook == [job.id]

    job = _reloaded(job.id)
    assert job.status == ImportStatus.RUNNING, "the second worker's import, not failed"
    assert job.error == "", "the first worker's batch was rolled back"
    assert (job.staged_line, job.merged_line, job.created) == (0, 0, 0)
    assert db.session.scalar(db.select(db.func.count()).select_from(ImportRow)) == 0
    assert db.session.scalar(db.select(db.func.count()).select_from(Contact)) == 0

    # the worker that took over runs the import to its end
    service.run(job)
    job = _reloaded(job.id)
    assert job.status == ImportStatus.FINISHED
    assert job.created == 60
    assert contact_state(account.id)["kunde7@example.de"]["tags"] == ["Kunde", "Żółw"]


def test_worker_taken_over_cannot_mark_the_import_failed(account, group, tmp_path):
    job = _new_job(account, group, tmp_path, source="api")
    job.status = ImportStatus.RUNNING.value
    first = Lease.take(job)
    job.status = ImportStatus.RUNNING.value
    second = Lease.take(job)
    assert second.token == first.token + 1

    service.fail(job, first, "RuntimeError: the first worker's connection broke")
    job = _reloaded(job.id)
    assert job.status == ImportStatus.RUNNING
    assert job.error == ""

    with pytest.raises(LeaseLost):
        first.begin()
    with pytest.raises(LeaseLost):
        first.commit()
    service.fail(job, second, "RuntimeError: the holder's own error")
    job = _reloaded(job.id)
    assert job.status == ImportStatus.FAILED
    assert service.can_resume(job)


def test_each_run_takes_a_new_lease(account, group, tmp_path):
    job = _new_job(account, group, tmp_path, source="api")
    before = job.lease
    service.check(job)
    service.run(job)
    job = _reloaded(job.id)
    assert job.status == ImportStatus.FINISHED
    assert job.lease == before + 2


@postgresql_only("time limits and JIT are PostgreSQL settings")
def test_an_import_transaction_has_time_limits_and_no_jit_only_while_it_lasts(
    account, group, tmp_path
):
    """JIT compiled the merge's classification at 0.3–0.7 s a chunk, for a statement
    that runs in 0.2 s; the settings end with the transaction, the pooled connection
    goes back as it was."""
    lease = Lease.take(_new_job(account, group, tmp_path))
    lease.begin()
    settings = "SELECT current_setting('jit'), current_setting('statement_timeout')"
    assert tuple(db.session.execute(db.text(settings)).one()) == ("off", "5min")
    db.session.rollback()
    assert tuple(db.session.execute(db.text(settings)).one()) != ("off", "5min")
