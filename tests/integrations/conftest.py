"""A real HTTP receiver on loopback that checks every signature, and helpers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portal.accounts.models import Account
from portal.extensions import db
from portal.integrations import delivery

# the support console's fixtures, for the reset of a provider link by staff
from tests.support.conftest import acme, now, owner_client, staff_client  # noqa: F401


class Receiver:
    """Records every request; `status` decides the answer (None: the connection is
    refused, as when the receiver is down)."""

    def __init__(self):
        self.secret = ""
        self.status = 200
        self.requests: list[dict] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = delivery.verify(
                    receiver.secret,
                    body,
                    self.headers.get("X-Portal-Signature", ""),
                    tolerance=10**9,
                )
                receiver.bad_signatures += 0 if ok else 1
                receiver.requests.append(
                    {
                        "status": receiver.status,
                        "body": json.loads(body),
                        "headers": dict(self.headers),
                    }
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/portal"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted_events(self) -> list[dict]:
        return [e for r in self.requests if 200 <= r["status"] < 300 for e in r["body"]["events"]]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(private_targets):
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def account(ctx, make_account):
    return db.session.get(Account, make_account("acme", timezone="Europe/Berlin"))
