"""Deliveries on a real `rq worker` process: a change made by the web app reaches the
receiver through the job that the commit enqueued."""

from __future__ import annotations

import subprocess
import sys

from portal.accounts import service as accounts
from portal.config import ROOT
from portal.contacts import service as contacts
from portal.extensions import db
from portal.integrations import service
from portal.integrations.models import OutgoingEvent
from tests.workers import worker_env


def test_a_commit_enqueues_the_delivery_and_a_real_worker_sends_it(
    database_url, redis_url, receiver, app, web
):
    with web.app_context():
        account = accounts.create_account("Shop", "shop")
        link = service.link_provider(account, profile="webhook", url=receiver.url, actor=None)
        db.session.commit()
        receiver.secret = link.secret
        contacts.create_contact(account, "worker@example.com", first_name="Wiktoria", source="ui")
        db.session.commit()  # after_commit enqueues deliver_link for the link
    env = worker_env(database_url, redis_url)
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "rq", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    events = receiver.accepted_events()
    assert [e["type"] for e in events] == ["contact.created"]
    assert events[0]["contact"]["first_name"] == "Wiktoria" and receiver.bad_signatures == 0
    with web.app_context():
        assert db.session.scalar(db.select(OutgoingEvent.status)) == "delivered"
