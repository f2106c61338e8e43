"""Full sync to a provider (issue 9): queue one event per contact, deliver them to a
real HTTP receiver on loopback that checks every signature.

    DATABASE_URL=postgresql+psycopg://…/scratch \
        .venv/bin/python bench/sync_bench.py --contacts 100000

Builds an account of N contacts (contacts.demo, 2 groups, tags), links the generic
webhook provider to a receiver in this process (ThreadingHTTPServer), accepts the tag
mapping and runs the sync as the worker does (`sync.run`, then `delivery.deliver`), and
reports the time to queue, the time to deliver, events/s, requests and the receiver's
verdict (signatures, every contact exactly once)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class Receiver:
    def __init__(self) -> None:
        from portal.integrations import delivery

        self.secret = ""
        self.requests = 0
        self.bad = 0
        self.contacts: dict[int, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not delivery.verify(receiver.secret, body, self.headers["X-Portal-Signature"]):
                    receiver.bad += 1
                receiver.requests += 1
                for event in json.loads(body)["events"]:
                    if event["type"] == "contact.synced":
                        cid = event["contact"]["id"]
                        receiver.contacts[cid] = receiver.contacts.get(cid, 0) + 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def main() -> None:
    from bench.keys import use_bench_keys

    use_bench_keys()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()

    from portal import create_app
    from portal.accounts import service as accounts
    from portal.contacts import demo
    from portal.extensions import db
    from portal.integrations import delivery, service, sync

    # the receiver listens on this machine: a private address, refused by default
    app = create_app({"WEBHOOK_ALLOW_PRIVATE_TARGETS": True})
    with app.app_context():
        db.drop_all()
        db.create_all()
        account = accounts.create_account("Sync bench", "syncbench")
        db.session.commit()
        demo.build_large_account(account, args.contacts, group_count=2, activities=0.0)
        receiver = Receiver()
        link = service.link_provider(account, profile="webhook", url=receiver.url, actor=None)
        receiver.secret = link.secret
        service.accept_mapping(link, {}, actor=None)
        run = sync.start(link, actor=None)
        db.session.commit()
        load_before = os.getloadavg()
        started = time.perf_counter()
        sync.run(run)
        queued = time.perf_counter() - started
        started = time.perf_counter()
        sent = delivery.deliver(link.id, max_batches=10**6).delivered
        delivered = time.perf_counter() - started
        once = all(n == 1 for n in receiver.contacts.values())
        print(
            json.dumps(
                {
                    "database": db.engine.dialect.name,
                    "contacts_synced": run.processed,
                    "queue_seconds": round(queued, 2),
                    "deliver_seconds": round(delivered, 2),
                    "events_per_second": round(sent / delivered, 1),
                    "requests": receiver.requests,
                    "bad_signatures": receiver.bad,
                    "every_contact_exactly_once": once and len(receiver.contacts) == run.processed,
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
