"""The console's "restore all" of many contacts: the web app queues a mass-action job
and a real `rq worker` process restores them, with the staff user as the actor on the
job and in the audit log, and every sign-up and sign-off date as it was."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from portal.accounts import service as accounts
from portal.accounts.models import Account, Role
from portal.config import ROOT
from portal.contacts import demo
from portal.contacts.models import Contact, ContactStatus, Subscription
from portal.core.audit import AuditEvent
from portal.extensions import db
from portal.lifecycle import service as lifecycle
from portal.lifecycle.models import LifecycleJob
from tests.helpers.apps import web_app
from tests.helpers.auth import PASSWORD, login
from tests.workers import worker_env

N = 20_000


@pytest.fixture
def web(database_url, redis_url):
    """The app as the web process has it: queues are asynchronous."""
    with web_app(database_url, redis_url, WTF_CSRF_ENABLED=False, SERVER_NAME="localhost") as app:
        yield app


def _subscriptions(account_id: int) -> set[tuple]:
    return set(
        db.session.execute(
            select(
                Subscription.contact_id,
                Subscription.group_id,
                Subscription.active,
                Subscription.activated_at,
                Subscription.deactivated_at,
                Subscription.optout_reason,
            ).where(Subscription.account_id == account_id)
        ).all()
    )


def test_restore_all_of_many_contacts_runs_on_a_real_worker(web, database_url, redis_url):
    with web.app_context():
        account = accounts.create_account("Groß GmbH", "gross", timezone="Europe/Berlin")
        owner = accounts.create_user("owner@gross.example", PASSWORD)
        accounts.add_member(account, owner, Role.OWNER)
        accounts.create_user("support@portal.example", PASSWORD, is_staff=True)
        db.session.commit()
        demo.build_large_account(account, N, group_count=3, activities=0.0)
        account_id = account.id
        before = _subscriptions(account_id)
        ids = list(db.session.scalars(select(Contact.id).where(Contact.account_id == account_id)))
        lifecycle.delete_contacts(account, ids, actor=owner, source="ui")
        db.session.commit()

    client = web.test_client()
    login(client, "support@portal.example")
    client.post("/support/accounts/gross/open", data={"reason": "Ticket #100: deleted all"})
    response = client.post("/support/accounts/gross/deleted/restore", data={"scope": "all"})
    assert response.status_code == 302
    with web.app_context():
        job = db.session.scalar(select(LifecycleJob).where(LifecycleJob.account_id == account_id))
        assert job.status == "queued" and job.total == N
        assert job.created_by.email == "support@portal.example" and job.source == "support"

    started = time.monotonic()
    env = worker_env(database_url, redis_url)
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "rq", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"worker restored {N} contacts in {time.monotonic() - started:.1f} s")

    with web.app_context():
        job = db.session.get(LifecycleJob, job.id)
        assert job.status == "finished", job.error
        assert job.changed == N and job.processed == N
        statuses = set(
            db.session.scalars(
                select(Contact.status).where(Contact.account_id == account_id).distinct()
            )
        )
        assert statuses == {ContactStatus.ACTIVE.value}
        assert _subscriptions(account_id) == before
        event = db.session.scalar(
            select(AuditEvent).where(
                AuditEvent.account_id == account_id, AuditEvent.action == "contacts.restored"
            )
        )
        assert event.actor_type == "staff" and event.actor_label == "support@portal.example"
        assert event.details["count"] == N
        assert db.session.get(Account, account_id).automatic_backups is True

    page = client.get("/support/accounts/gross/deleted").get_data(as_text=True)
    assert "0 contacts are to be deleted." in page and f'data-job="{job.id}"' in page
