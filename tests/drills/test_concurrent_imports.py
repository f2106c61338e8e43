"""Two imports into the same account at once, on two workers, into two groups, with
15,000 addresses in both files: no contact twice, every row of both files counted in
its import's summary, and the account ends as after the same two imports one by one."""

from __future__ import annotations

from pathlib import Path

from rq import Worker as RqWorker

from portal.accounts.models import Account
from portal.contacts import service as contacts
from portal.contacts.models import Contact
from portal.extensions import db, rq
from portal.imports import service as imports
from portal.imports import tasks
from portal.imports.models import ImportJob, ImportStatus
from tests.drills.conftest import account_state, fresh, new_account
from tests.imports.conftest import write_csv
from tests.workers import wait_for

BAD = 20  # per file: 10 invalid addresses, 10 repeated lines


def _rows(first: int, last: int, tag: str) -> list[list[str]]:
    rows = [["email", "first_name", "last_name", "tags"]]
    rows += [
        [f"user{i}@example.com", f"Zoë{i}", f"Größ{i % 7}", f"{tag};Kunde"]
        for i in range(first, last)
    ]
    rows += [[f"kein-at-zeichen-{i}.example.com", "X", "Y", tag] for i in range(10)]
    rows += rows[1:11]  # the first ten lines again
    return rows


def _imports(account_id: int, files: dict[str, Path]) -> dict[str, int]:
    """One import per file, each into its own group ("update and add")."""
    account = db.session.get(Account, account_id)
    ids = {}
    for name, path in files.items():
        group = contacts.create_group(account, name, actor=None, source="ui")
        job = imports.create_import(
            account, actor=None, group=group, source_path=path, filename=f"{name}.csv", source="ui"
        )
        imports.configure(
            job, mapping=job.mapping, mode="update_add", import_consent=False, restore_deleted=False
        )
        ids[name] = job.id
    db.session.commit()
    return ids


def _idle(names: set[str]) -> bool:
    """Every named worker is registered with Redis and waiting for a job."""
    found = RqWorker.all(connection=rq.queue.connection)
    return names <= {w.name for w in found if w.get_state() == "idle"}


def test_two_imports_into_one_account_at_once(web, workers, tmp_path):
    files = {
        "Shop": write_csv(tmp_path / "shop.csv", _rows(0, 30_000, "Shop")),
        "Kurs": write_csv(tmp_path / "kurs.csv", _rows(15_000, 45_000, "Kurs")),
    }
    with web.app_context():
        clean = new_account("clean", 0)
        for job_id in _imports(clean, files).values():  # one after the other
            imports.run(db.session.get(ImportJob, job_id))

        drill = new_account("drill", 0)
        jobs = _imports(drill, files)
    # Both workers wait for work before the jobs are queued, so each takes one and both
    # start at once: with burst workers started after queuing, the first could finish
    # its import (1.6 s on SQLite) before the second worker was up.
    first, second = workers(burst=False), workers(burst=False)
    with web.app_context():
        wait_for(
            lambda: _idle({first.name, second.name}),
            timeout=60,
            message="both workers must be waiting for work",
            worker=first,
        )
        for job_id in jobs.values():
            tasks.enqueue_run(db.session.get(ImportJob, job_id))

    def settled():
        rows = [fresh(ImportJob, job_id) for job_id in jobs.values()]
        return all(j.status in (ImportStatus.FINISHED, ImportStatus.FAILED) for j in rows)

    with web.app_context():
        wait_for(settled, timeout=300, message="both imports must end")
        out = first.output() + second.output()
        both = {name: fresh(ImportJob, job_id) for name, job_id in jobs.items()}
        for job in both.values():
            assert job.status == ImportStatus.FINISHED, (job.error, out[-3000:])
        # both ran at the same time: each began before the other ended
        shop, kurs = both["Shop"], both["Kurs"]
        assert shop.started_at < kurs.finished_at and kurs.started_at < shop.finished_at

        emails = db.session.scalars(db.select(Contact.email).where(Contact.account_id == drill))
        emails = list(emails)
        assert len(emails) == len(set(emails)) == 45_000, "no contact twice"
        for job in both.values():
            counted = job.counters()
            assert sum(counted.values()) == 30_000 + BAD, counted  # every line accounted for
            assert counted["invalid"] + counted["skipped"] == BAD, counted
        assert shop.created + kurs.created == 45_000  # each address created exactly once

        reference = [
            db.session.get(ImportJob, i)
            for i in db.session.scalars(
                db.select(ImportJob.id).where(ImportJob.account_id == clean)
            )
        ]
        assert sum(j.created for j in reference) == 45_000
        assert account_state(drill) == account_state(clean)
