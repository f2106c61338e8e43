"""Crash drills: real worker processes, killed -9 in the middle of their work, and the
state they leave compared with a clean run of the same work. See docs/decisions/drills.md.

Helpers read the database set-based (a few queries for 50,000 contacts), keyed by what
two accounts with the same input share: addresses, group and tag names."""

from __future__ import annotations

import socket
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from portal.accounts import service as accounts
from portal.accounts.models import Account
from portal.contacts import demo
from portal.contacts.models import Contact, Group, Subscription, Tag, contact_tags
from portal.extensions import db, rq
from portal.integrations import service as integrations
from portal.integrations import tasks as integration_tasks
from portal.integrations.models import OutgoingEvent
from tests.helpers.apps import web_app
from tests.workers import Worker, start_worker, wait_for

# every drill builds its accounts at this instant, so two builds are identical; what
# the drilled work itself stamps is later (see account_state)
BUILT_AT = (datetime.now(UTC) - timedelta(days=30)).replace(
    hour=10, minute=0, second=0, microsecond=0
)
WORK = "(set by the work)"
QUIET = timedelta(minutes=11)  # a job that shows no sign of life this long may be continued


@pytest.fixture
def web(database_url, redis_url, tmp_path):
    """The app as the web process has it: queues are asynchronous."""
    with web_app(
        database_url,
        redis_url,
        BACKUP_DIR=str(tmp_path / "backups"),
        # the drills' receivers and closed ports are on 127.0.0.1 (issue 16, point 7)
        WEBHOOK_ALLOW_PRIVATE_TARGETS=True,
    ) as app:
        yield app


@pytest.fixture
def workers(database_url, redis_url, tmp_path):
    """Start workers on the test database; whatever still runs at the end is killed."""
    started: list[Worker] = []

    def start(*, burst: bool = True, redis: str | None = None, **kwargs) -> Worker:
        kwargs.setdefault("BACKUP_DIR", str(tmp_path / "backups"))
        kwargs.setdefault("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")  # receivers on 127.0.0.1
        worker = start_worker(database_url, redis or redis_url, burst=burst, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()
        worker.log.unlink(missing_ok=True)


def new_account(slug: str, n: int, *, groups: int = 2, tz: str = "Europe/Berlin") -> int:
    """An account with `n` generated contacts (names, fields, tags, sign-up and sign-off
    data in `groups` groups), the same for every slug."""
    with time_machine.travel(BUILT_AT, tick=False):
        account = accounts.create_account(slug.title(), slug, timezone=tz)
        db.session.commit()
        if n:
            demo.build_large_account(account, n, group_count=groups, activities=0.0, batch=10_000)
        db.session.commit()
        return account.id


def closed_port() -> int:
    """A loopback port nobody listens on: deliveries there fail at once (and retry later),
    so a drill about the outbox is not slowed down by sending it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def link_provider(account_id: int, url: str | None = None, *, hold: bool = True) -> int:
    """A linked webhook provider: from now on every change writes outbox rows (not sent
    unless `hold` is false, see hold_deliveries)."""
    account = db.session.get(Account, account_id)
    url = url or f"http://127.0.0.1:{closed_port()}/hooks"
    link = integrations.link_provider(account, profile="webhook", url=url, actor=None)
    db.session.commit()
    if hold:
        hold_deliveries(link.id)
    return link.id


def hold_deliveries(link_id: int, seconds: int = 900) -> None:
    """No delivery job is enqueued for the link for a while (its debounce key is taken,
    as right after one was): drills about the outbox rows do not wait for workers that
    send them. The delivery drill in test_kill_integrations.py sends for real."""
    rq.get_queue("default").connection.set(integration_tasks._debounce_key(link_id), 1, ex=seconds)


def age(row) -> None:
    """Ten quiet minutes later: the row's last sign of life moves back, so the page
    offers "continue" (what a user waits for after a worker died)."""
    row.touched_at = (row.touched_at or datetime.now(UTC)) - QUIET
    db.session.commit()


FAILED_WITHIN = 30  # seconds from the kill until the row says "failed" (issue 16, point 8)


def failed_on_the_next_worker(workers, model, row_id: int, killed_at: float):
    """The next worker to start (as the product starts one after a crash) finds the dead
    worker's job and fails its row — within FAILED_WITHIN seconds of the kill, not after
    ten quiet minutes. Returns the row."""
    worker = workers(burst=True)
    row = wait_for(
        lambda: (r := fresh(model, row_id)).status == "failed" and r,
        timeout=FAILED_WITHIN,
        message=f"{model.__tablename__} {row_id} must be failed when its worker is gone",
    )
    assert time.monotonic() - killed_at < FAILED_WITHIN, "failed, but too late"
    assert row.error.startswith("worker_lost"), row.error
    worker.finish(timeout=60)
    return fresh(model, row_id)


def _stamp(value: datetime | None):
    """A time from the built data as it is; one the work set (now) as WORK, since a
    clean run and a drilled one do the same work at different moments."""
    return WORK if value is not None and value > BUILT_AT else value


def account_state(account_id: int) -> dict:
    """Contacts, tags and subscriptions of an account by address and names."""
    contacts = {
        email: (first, last, status, fields or {}, deleted_at is not None)
        for email, first, last, status, fields, deleted_at in db.session.execute(
            db.select(
                Contact.email,
                Contact.first_name,
                Contact.last_name,
                Contact.status,
                Contact.fields,
                Contact.deleted_at,
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
        (
            (email, group, active, _stamp(on), _stamp(off), reason)
            for email, group, active, on, off, reason in db.session.execute(
                db.select(
                    Contact.email,
                    Group.name,
                    Subscription.active,
                    Subscription.activated_at,
                    Subscription.deactivated_at,
                    Subscription.optout_reason,
                )
                .join(Subscription, Subscription.contact_id == Contact.id)
                .join(Group, Group.id == Subscription.group_id)
                .where(Contact.account_id == account_id)
            )
        ),
        key=lambda r: (r[0], r[1]),
    )
    return {"contacts": contacts, "tags": tags, "subscriptions": subs}


def outbox_per_contact(account_id: int, kind: str) -> Counter:
    """How many outbox rows of `kind` each contact id has."""
    return Counter(
        db.session.scalars(
            db.select(OutgoingEvent.contact_id).where(
                OutgoingEvent.account_id == account_id, OutgoingEvent.kind == kind
            )
        )
    )


def emails_by_id(account_id: int) -> dict[int, str]:
    return dict(
        db.session.execute(
            db.select(Contact.id, Contact.email).where(Contact.account_id == account_id)
        ).all()
    )


def fresh(model, row_id: int):
    """The row as it is in the database now (not as this session remembers it)."""
    db.session.remove()
    return db.session.get(model, row_id)
