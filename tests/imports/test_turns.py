"""PostgreSQL: imports into one account take turns chunk by chunk, and an address that
another writer (the API, the sign-up form) creates in the middle of a chunk is merged
into, not doubled. SQLite gives the same guarantees by its single write lock."""

from __future__ import annotations

import threading
import time

from sqlalchemy import event

from portal.accounts.models import Account
from portal.contacts.models import Contact, Group, Subscription
from portal.extensions import db
from portal.imports import planner, service
from portal.imports.models import ImportJob, ImportStatus
from tests.imports.conftest import configured_import, postgresql_only, write_csv

pytestmark = postgresql_only(
    "the turns are PostgreSQL advisory locks; SQLite serializes all writers"
)

ROWS = 400


def _file(tmp_path, name: str, domain: str):
    rows = [["email", "first_name"]] + [[f"p{i}@{domain}", f"P{i}"] for i in range(ROWS)]
    return write_csv(tmp_path / name, rows)


def _ready_import(make_account, slug: str, tmp_path) -> int:
    account = db.session.get(Account, make_account(slug))
    group = Group(account_id=account.id, name="Newsletter")
    db.session.add(group)
    db.session.commit()
    return configured_import(account, group, _file(tmp_path, f"{slug}.csv", f"{slug}.de")).id


def _run_in_thread(app, job_id: int) -> threading.Thread:
    def run():
        with app.app_context():
            service.run(db.session.get(ImportJob, job_id))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _job(job_id: int) -> ImportJob:
    db.session.expire_all()
    return db.session.get(ImportJob, job_id)


def test_an_import_waits_for_its_turn_while_another_one_merges_into_the_account(
    app, ctx, make_account, tmp_path
):
    waiting = _ready_import(make_account, "acme", tmp_path)
    elsewhere = _ready_import(make_account, "other", tmp_path)
    acme = _job(waiting).account_id
    # a chunk of another import of acme is being merged: it holds acme's turn
    holder = db.engine.connect()
    holder.begin()
    planner.take_turn_in_account(acme, on=holder)
    try:
        thread = _run_in_thread(app, waiting)
        # another account's import is not held up
        service.run(db.session.get(ImportJob, elsewhere))
        assert (_job(elsewhere).status, _job(elsewhere).created) == (ImportStatus.FINISHED, ROWS)
        time.sleep(1.0)
        job = _job(waiting)
        assert job.status == ImportStatus.RUNNING and job.merged_line == 0 and thread.is_alive()
        assert (
            db.session.scalar(
                db.select(db.func.count()).select_from(Contact).where(Contact.account_id == acme)
            )
            == 0
        )
    finally:
        holder.commit()  # the other chunk is done: acme's turn is free
        holder.close()
    thread.join(timeout=60)
    job = _job(waiting)
    assert (job.status, job.created, job.merged_line) == (
        ImportStatus.FINISHED,
        ROWS,
        ROWS + 1,
    )  # line 1 is the header


def test_an_address_the_api_creates_during_a_chunk_is_updated_not_doubled(
    ctx, make_account, tmp_path
):
    job_id = _ready_import(make_account, "acme", tmp_path)
    job = _job(job_id)
    account_id, group_id = job.account_id, job.group_id
    taken = "p7@acme.de"

    def api_creates_first(conn, cursor, statement, parameters, context, executemany):
        """Between the chunk's classification and its insert, another session signs the
        address up (committed), as the API or the sign-up form would."""
        if not statement.lstrip().startswith("INSERT INTO contacts (id,"):
            return
        with db.engine.begin() as other:
            other.execute(
                Contact.__table__.insert().values(
                    account_id=account_id, email=taken, first_name="Api", fields={}
                )
            )

    event.listen(db.engine, "before_cursor_execute", api_creates_first)
    try:
        service.run(job)
    finally:
        event.remove(db.engine, "before_cursor_execute", api_creates_first)

    job = _job(job_id)
    assert job.status == ImportStatus.FINISHED
    assert (job.created, job.updated) == (ROWS - 1, 1), job.counters()
    emails = list(
        db.session.scalars(db.select(Contact.email).where(Contact.account_id == account_id))
    )
    assert len(emails) == len(set(emails)) == ROWS
    contact = db.session.scalar(db.select(Contact).where(Contact.email == taken))
    assert contact.first_name == "P7"  # the file's name, merged into the API's contact
    assert db.session.scalar(
        db.select(db.func.count())
        .select_from(Subscription)
        .where(Subscription.contact_id == contact.id, Subscription.group_id == group_id)
    )
