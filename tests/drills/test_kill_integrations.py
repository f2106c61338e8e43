"""kill -9 in the middle of a full sync (the worker writing one `contact.synced` outbox
row per contact) and in the middle of its delivery to a real HTTP receiver on loopback
(killed while the receiver holds a batch, before the worker could commit it as sent)."""

from __future__ import annotations

import threading
import time
from collections import Counter

from portal import events
from portal.extensions import db
from portal.integrations import delivery, sync, tasks
from portal.integrations.models import EventStatus, OutgoingEvent, ProviderLink, SyncRun
from tests.drills.conftest import (
    emails_by_id,
    failed_on_the_next_worker,
    fresh,
    hold_deliveries,
    link_provider,
    new_account,
    outbox_per_contact,
)
from tests.integrations.conftest import Receiver
from tests.workers import wait_for


def _start_sync(account_id: int, link_id: int) -> int:
    """The owner accepted the tag mapping: the full sync is queued."""
    run = sync.start(db.session.get(ProviderLink, link_id), actor=None)
    db.session.commit()
    return run.id


def _synced_per_email(account_id: int) -> Counter:
    emails = emails_by_id(account_id)
    return Counter(
        {emails[cid]: n for cid, n in outbox_per_contact(account_id, events.CONTACT_SYNCED).items()}
    )


def test_full_sync_killed_mid_way_queues_every_contact_once(web, workers):
    n = 20_000
    with web.app_context():
        clean = new_account("clean", n)
        clean_run = _start_sync(clean, link_provider(clean))
        sync.run(db.session.get(SyncRun, clean_run))  # what the job runs, in-process

        drill = new_account("drill", n)
        run_id = _start_sync(drill, link_provider(drill))
        total = db.session.get(SyncRun, run_id).total
        tasks.enqueue_sync(db.session.get(SyncRun, run_id))

    worker = workers(burst=False)
    with web.app_context():
        wait_for(
            lambda: fresh(SyncRun, run_id).processed >= 3 * sync.BATCH,
            timeout=60,
            message="the sync must get going",
            worker=worker,
        )
        worker.kill()
        killed_at = time.monotonic()
        run = fresh(SyncRun, run_id)
        assert run.status == "running" and 0 < run.processed < total, worker.output()[-3000:]
        # what was committed is whole batches, each with the checkpoint
        assert sum(outbox_per_contact(drill, events.CONTACT_SYNCED).values()) == run.processed
        processed = run.processed
        assert not sync.can_resume(run), "nobody has noticed yet"

        # the next worker fails the sync at once: "continue" on the integrations page
        run = failed_on_the_next_worker(workers, SyncRun, run_id, killed_at)
        assert run.processed == processed
        assert sync.can_resume(run)
        tasks.enqueue_sync(run)
    out = workers().finish(timeout=120)

    with web.app_context():
        run, reference = fresh(SyncRun, run_id), db.session.get(SyncRun, clean_run)
        assert run.status == "finished", out[-3000:]
        assert (run.total, run.processed) == (reference.total, reference.processed) == (total,) * 2
        synced = _synced_per_email(drill)
        assert set(synced.values()) == {1}, "no contact queued twice for one run"
        assert synced == _synced_per_email(clean)
        assert len(synced) == total


class _HeldLog(list):
    """The receiver's request log; the `hold_at`-th request is held (the receiver got
    the batch but has not answered) until `release` is set."""

    def __init__(self, hold_at: int):
        super().__init__()
        self.hold_at = hold_at
        self.holding = threading.Event()
        self.release = threading.Event()

    def append(self, item) -> None:
        super().append(item)
        if len(self) == self.hold_at:
            self.holding.set()
            self.release.wait(timeout=60)


def _received(receiver: Receiver) -> list[list[int]]:
    """The event ids of every request the receiver got, in order."""
    return [[e["id"] for e in r["body"]["events"]] for r in receiver.requests]


def _linked(account_id: int, receiver: Receiver, *, hold: bool) -> int:
    link_id = link_provider(account_id, receiver.url, hold=hold)
    receiver.secret = db.session.get(ProviderLink, link_id).secret
    return link_id


def _types_per_email(account_id: int, receiver: Receiver) -> dict[str, list[str]]:
    seen: dict[int, dict] = {}
    for request in receiver.requests:
        for event in request["body"]["events"]:
            seen[event["id"]] = event
    per_email: dict[str, list[str]] = {}
    for _, event in sorted(seen.items()):
        per_email.setdefault(event["contact"]["email"], []).append(event["type"])
    return per_email


def test_delivery_killed_between_send_and_commit_resends_only_that_batch(web, workers):
    n = 3_000
    clean_receiver, receiver = Receiver(), Receiver()
    receiver.requests = held = _HeldLog(hold_at=10)
    try:
        with web.app_context():
            clean = new_account("clean", n)
            clean_link = _linked(clean, clean_receiver, hold=True)
            clean_run = db.session.get(SyncRun, _start_sync(clean, clean_link))
            sync.run(clean_run)
            total = clean_run.total
            assert delivery.deliver(clean_link).delivered == total  # in-process, the clean run

            drill = new_account("drill", n)
            link_id = _linked(drill, receiver, hold=False)
            sync.run(db.session.get(SyncRun, _start_sync(drill, link_id)))
            tasks.schedule_delivery(link_id)  # as run_sync does when it has queued everyone
            hold_deliveries(link_id)  # no further delivery job: the cron will pick it up
            outbox = set(
                db.session.scalars(
                    db.select(OutgoingEvent.id).where(OutgoingEvent.link_id == link_id)
                )
            )
            assert len(outbox) == total

        worker = workers(burst=False)
        wait_for(
            held.holding.is_set,
            timeout=60,
            message="the worker must deliver up to the held batch",
            worker=worker,
        )
        worker.kill()  # the receiver has the 10th batch; the worker never heard "200"
        held.release.set()

        with web.app_context():
            in_flight = _received(receiver)[-1]
            statuses = dict(
                db.session.execute(
                    db.select(OutgoingEvent.id, OutgoingEvent.status).where(
                        OutgoingEvent.link_id == link_id
                    )
                ).all()
            )
            delivered = {i for i, s in statuses.items() if s == EventStatus.DELIVERED.value}
            assert len(delivered) == 9 * delivery.BATCH
            assert all(statuses[i] == EventStatus.PENDING.value for i in in_flight)

        # the cron's every-minute run, after the killed worker's lease (2 min) ran out
        offset = (delivery.LEASE.total_seconds()) + 30
        with web.app_context():
            tasks.deliver_due.enqueue()
        out = workers(clock_offset=offset).finish(timeout=120)

        with web.app_context():
            db.session.remove()
            rows = db.session.execute(
                db.select(OutgoingEvent.id, OutgoingEvent.status, OutgoingEvent.attempts).where(
                    OutgoingEvent.link_id == link_id
                )
            ).all()
            assert {s for _, s, _ in rows} == {EventStatus.DELIVERED.value}, out[-3000:]
            assert {a for _, _, a in rows} == {1}, "the portal recorded each event sent once"
        received = Counter(i for ids in _received(receiver) for i in ids)
        assert set(received) == outbox, "no event is missing"
        twice = {i for i, count in received.items() if count > 1}
        # at least once: only the batch that was in flight at the kill came again
        assert twice == set(in_flight) and set(received.values()) == {1, 2}
        assert [ids for ids in _received(receiver) if set(ids) & twice] == [in_flight] * 2
        assert receiver.bad_signatures == 0
        # and the provider knows the same as after a clean run
        clean_seen = Counter(i for ids in _received(clean_receiver) for i in ids)
        assert set(clean_seen.values()) == {1}
        with web.app_context():
            assert _types_per_email(drill, receiver) == _types_per_email(clean, clean_receiver)
    finally:
        held.release.set()
        receiver.close()
        clean_receiver.close()
