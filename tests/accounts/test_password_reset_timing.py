"""Password reset answers in the same time for known and unknown addresses (issue 16,
point 15): the mail is queued, so the request never waits for the mail server — which
it did only for addresses with an account, and that difference told who has one.

The app here queues its jobs as in production (RQ_ASYNC); a slow mail server is
simulated (every delivery takes SLOW seconds); then the queued jobs are run."""

from __future__ import annotations

import statistics
import time

import pytest

from portal import mail
from portal.extensions import rq
from portal.mail import outbox_messages
from tests.helpers.apps import queued_twin

SLOW = 0.4  # seconds a delivery takes at the simulated mail server
ROUNDS = 6


@pytest.fixture
def queued_app(app):
    """The session app's database, Redis and outbox, with jobs that wait for a worker."""
    keys = ("SECRET_KEY", "SUPPRESSION_KEY", "OUTBOX_DIR", "BASE_URL")
    with queued_twin(
        app, keys, WTF_CSRF_ENABLED=False, LOGIN_RATE_LIMIT="1000 per minute"
    ) as second:
        yield second


@pytest.fixture
def slow_mail_server(monkeypatch):
    real = mail._deliver

    def deliver_slowly(message):
        time.sleep(SLOW)
        real(message)

    monkeypatch.setattr(mail, "_deliver", deliver_slowly)


def _run_queued_jobs(app) -> int:
    """What a worker would do with the queue: run every job, in an app context."""
    done = 0
    with app.app_context():
        for queue in rq.queues.values():
            for job in queue.get_jobs():
                job.perform()
                queue.remove(job)
                done += 1
    return done


def _ask(client, email: str) -> float:
    started = time.perf_counter()
    response = client.post("/password/forgot", data={"email": email})
    elapsed = time.perf_counter() - started
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    return elapsed


def test_known_and_unknown_addresses_answer_in_the_same_time(
    queued_app, slow_mail_server, make_user
):
    make_user("owner@acme.example")
    client = queued_app.test_client()
    _ask(client, "warm-up@acme.example")
    known, unknown = [], []
    for _ in range(ROUNDS):
        known.append(_ask(client, "owner@acme.example"))
        unknown.append(_ask(client, "nobody@acme.example"))
    median_known, median_unknown = statistics.median(known), statistics.median(unknown)
    print(f"median known {median_known * 1000:.1f} ms, unknown {median_unknown * 1000:.1f} ms")
    assert median_known < SLOW / 2, "the request waited for the mail server"
    assert abs(median_known - median_unknown) < SLOW / 4
    with queued_app.app_context():
        assert outbox_messages() == []  # nothing sent while the requests ran

    assert _run_queued_jobs(queued_app) == 2 * ROUNDS + 1  # one job per request, known or not
    with queued_app.app_context():
        messages = outbox_messages()
    assert [m["To"] for m in messages] == ["owner@acme.example"] * ROUNDS
    assert all("/password/reset/" in m.get_content() for m in messages)


def test_a_reset_link_from_the_queue_works(queued_app, make_user):
    make_user("owner@acme.example")
    client = queued_app.test_client()
    client.post("/password/forgot", data={"email": " Owner@ACME.example "})
    assert _run_queued_jobs(queued_app) == 1
    with queued_app.app_context():
        [message] = outbox_messages()
    body = message.get_content()
    path = body[body.index("/password/reset/") :].split()[0]
    response = client.post(
        path, data={"password": "a-brand-new-pass", "confirm": "a-brand-new-pass"}
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
