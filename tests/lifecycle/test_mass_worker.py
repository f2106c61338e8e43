"""Mass deletion of 100,000 contacts as a job on a real `rq worker` process, restored in
bulk afterwards, with the progress on the job's row."""

from __future__ import annotations

import subprocess
import sys
from zoneinfo import ZoneInfo

from portal.accounts import service as accounts
from portal.accounts.models import Account
from portal.config import ROOT
from portal.contacts import counts as contact_counts
from portal.contacts import demo, queries
from portal.contacts.models import Contact, ContactStatus, Subscription
from portal.contacts.queries import ContactFilter
from portal.extensions import db
from portal.lifecycle import mass, tasks
from portal.lifecycle.models import LifecycleAction, LifecycleJob
from tests.workers import worker_env

N = 100_000


def _run_worker(database_url, redis_url) -> str:
    env = worker_env(database_url, redis_url)
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "rq", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def _statuses(account_id: int) -> dict[str, int]:
    rows = db.session.execute(
        db.select(Contact.status, db.func.count())
        .where(Contact.account_id == account_id)
        .group_by(Contact.status)
    )
    return dict(rows.all())


def _subscriptions(group_id: int) -> set[tuple]:
    return set(
        db.session.execute(
            db.select(
                Subscription.contact_id,
                Subscription.active,
                Subscription.activated_at,
                Subscription.deactivated_at,
                Subscription.optout_reason,
            ).where(Subscription.group_id == group_id)
        ).all()
    )


def _start(account, action, f) -> int:
    job = mass.draft_for_filter(
        account, action, f, tz=ZoneInfo("Europe/Berlin"), actor=None, source="ui"
    )
    mass.confirm(job)
    tasks.enqueue(job)
    return job.id


def test_a_hundred_thousand_contacts_are_deleted_by_a_worker_and_restored_in_bulk(
    web, app, database_url, redis_url
):
    with web.app_context():
        account = accounts.create_account("Big", "big", timezone="Europe/Berlin")
        db.session.commit()
        demo.build_large_account(account, N, group_count=2, activities=0.0)
        account_id = account.id
        group_id = queries.groups_of(account)[0].id
        before = contact_counts.group_counts(account, [group_id])[group_id]
        subscriptions_before = _subscriptions(group_id)
        already_deleted = _statuses(account.id).get(ContactStatus.DELETED.value, 0)  # ~1 % demo
        job_id = _start(account, LifecycleAction.DELETE, ContactFilter(status="active"))
        # signed-off contacts are not "active": they are left alone
        assert db.session.get(LifecycleJob, job_id).total >= N * 0.8

    _run_worker(database_url, redis_url)

    with web.app_context():
        job = db.session.get(LifecycleJob, job_id)
        assert job.status == "finished", job.error
        assert job.processed == job.total and job.changed == job.total
        assert mass.progress(job)["percent"] == 100
        statuses = _statuses(account_id)
        assert statuses[ContactStatus.DELETED.value] == job.total + already_deleted
        assert sum(statuses.values()) == N
        after = contact_counts.group_counts(db.session.get(Account, account_id), [group_id])[
            group_id
        ]
        assert after.active == 0 and after.total == before.total
        restore_id = _start(
            db.session.get(Account, account_id),
            LifecycleAction.RESTORE,
            ContactFilter(status="deleted"),
        )

    _run_worker(database_url, redis_url)

    with web.app_context():
        job = db.session.get(LifecycleJob, restore_id)
        assert job.status == "finished" and job.changed == job.total
        statuses = _statuses(account_id)
        assert statuses == {ContactStatus.ACTIVE.value: N}
        restored = contact_counts.group_counts(db.session.get(Account, account_id), [group_id])[
            group_id
        ]
        assert restored.to_be_deleted == 0 and restored.total == before.total
        # every contact is back with exactly its sign-up and sign-off data
        assert _subscriptions(group_id) == subscriptions_before
