"""Webhooks go to public internet addresses only (issue 16, point 7): an admin could
link 127.0.0.1 (or a name resolving to it) and the worker posted the full contact sync
there, following redirects. Refused at link time and at every delivery, after DNS
resolution; no redirects; the delivery log says what kind of failure, never the
connection's own text. WEBHOOK_ALLOW_PRIVATE_TARGETS allows the own network, off by
default."""

from __future__ import annotations

import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portal.config import build_config
from portal.contacts import service as contacts
from portal.extensions import db
from portal.integrations import delivery, service, sync, targets
from portal.integrations.models import OutgoingEvent
from tests.helpers.apps import allowing_private_targets
from tests.integrations.conftest import Receiver

REFUSED_URLS = [
    "http://127.0.0.1:{port}/hooks",
    "http://localhost:{port}/hooks",  # a name that resolves to 127.0.0.1 (and ::1)
    "http://127.1:{port}/hooks",  # short forms the resolver reads as 127.0.0.1
    "http://2130706433:{port}/hooks",
    "http://0x7f000001:{port}/hooks",
    "http://[::1]:{port}/hooks",
    "http://[::ffff:127.0.0.1]:{port}/hooks",
    "http://0.0.0.0:{port}/hooks",
    "http://10.0.0.5/hooks",
    "http://172.16.3.4/hooks",
    "http://192.168.1.10/hooks",
    "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
    "http://[fe80::1]/hooks",
    "http://224.0.0.1/hooks",
    "http://100.64.0.1/hooks",  # shared address space (carrier-grade NAT)
    "https://user:secret@127.0.0.1:{port}/hooks",
]


@pytest.fixture
def fake_dns(monkeypatch):
    """Names this test decides about, resolved by the real resolver's interface: the
    portal asks socket.getaddrinfo like everyone else."""
    answers: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return real(answers[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def _contact_event(account) -> None:
    contacts.create_contact(account, "anna@example.com", first_name="Anna", source="ui")
    db.session.commit()


def _event(link_id: int) -> OutgoingEvent:
    db.session.expire_all()
    return db.session.scalar(
        db.select(OutgoingEvent).where(OutgoingEvent.link_id == link_id).order_by(OutgoingEvent.id)
    )


def test_the_setting_is_off_by_default_and_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", raising=False)
    assert build_config({"SECRET_KEY": "x"})["WEBHOOK_ALLOW_PRIVATE_TARGETS"] is False
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    assert build_config({"SECRET_KEY": "x"})["WEBHOOK_ALLOW_PRIVATE_TARGETS"] is True


@pytest.mark.parametrize("template", REFUSED_URLS)
def test_linking_a_private_address_is_refused(account, template):
    receiver = Receiver()  # something listens on 127.0.0.1 (the port in the URLs)
    try:
        url = template.format(port=receiver.server.server_address[1])
        with pytest.raises(service.ServiceError, match="public internet"):
            service.link_provider(account, profile="webhook", url=url, actor=None)
        db.session.rollback()
        assert service.current_link(account) is None
        assert receiver.requests == []
    finally:
        receiver.close()


def test_a_name_that_resolves_to_loopback_is_refused_when_linking(account, fake_dns):
    fake_dns["hooks.provider.example"] = "127.0.0.1"
    with pytest.raises(service.ServiceError, match="public internet"):
        service.link_provider(
            account, profile="webhook", url="https://hooks.provider.example/x", actor=None
        )
    fake_dns["hooks.provider.example"] = "93.184.216.34"  # a public address: accepted
    link = service.link_provider(
        account, profile="webhook", url="https://hooks.provider.example/x", actor=None
    )
    assert link.url == "https://hooks.provider.example/x"


def test_a_name_that_cannot_be_found_is_refused_with_its_own_message(account):
    with pytest.raises(service.ServiceError, match="could not be found"):
        service.link_provider(
            account, profile="webhook", url="https://nowhere.invalid/hooks", actor=None
        )


def test_the_link_page_says_why_and_links_nothing(owner, client, app):
    page = client.post(
        "/a/acme/integrations/link",
        data={"profile": "webhook", "url": "http://169.254.169.254/latest/meta-data/"},
        follow_redirects=True,
    )
    assert "must be on the public internet" in page.get_data(as_text=True)
    assert 'id="link-form"' in page.get_data(as_text=True)  # still the form to link
    german = client.post(
        "/a/acme/integrations/link?lang=de",
        data={"profile": "webhook", "url": "http://localhost/x"},
        follow_redirects=True,
    )
    assert "öffentlichen Internet" in german.get_data(as_text=True)
    with app.app_context():
        from portal.integrations.models import ProviderLink

        assert db.session.scalar(db.select(db.func.count(ProviderLink.id))) == 0


def test_every_delivery_checks_again_after_resolving_the_name(account, fake_dns):
    """DNS rebinding: the name was public when the link was made and points at the
    receiver on 127.0.0.1 now. Nothing is sent; the log says why, in general words."""
    receiver = Receiver()
    try:
        fake_dns["hooks.provider.example"] = "93.184.216.34"
        port = receiver.server.server_address[1]
        link = service.link_provider(
            account,
            profile="webhook",
            url=f"http://hooks.provider.example:{port}/hooks/portal",
            actor=None,
        )
        service.accept_mapping(link, {}, actor=None)
        db.session.commit()
        _contact_event(account)
        fake_dns["hooks.provider.example"] = "127.0.0.1"
        outcome = delivery.deliver(link.id)
        assert outcome.delivered == 0 and receiver.requests == []
        event = _event(link.id)
        assert event.status == "pending" and event.last_error == targets.REFUSED
        assert event.attempts == 1 and event.next_attempt_at is not None
        # the same check on a full sync's deliveries
        sync.run(sync.start(link, actor=None))
        delivery.deliver(link.id, now=event.next_attempt_at)
        assert receiver.requests == []
    finally:
        receiver.close()


def test_a_redirect_to_loopback_is_not_followed(account, fake_dns, monkeypatch):
    """The provider's endpoint (public) answers 307 to http://127.0.0.1:<port>/: the
    delivery fails with "redirect" and the receiver behind it hears nothing."""
    inside = Receiver()
    outside = _Redirector(f"{inside.url}")
    try:
        # the redirecting server is this machine's 127.0.0.2, played as a public host
        fake_dns["hooks.provider.example"] = "127.0.0.2"
        real = targets.is_public
        monkeypatch.setattr(targets, "is_public", lambda a: a == "127.0.0.2" or real(a))
        link = service.link_provider(
            account,
            profile="webhook",
            url=f"http://hooks.provider.example:{outside.port}/hooks",
            actor=None,
        )
        service.accept_mapping(link, {}, actor=None)
        db.session.commit()
        _contact_event(account)
        delivery.deliver(link.id)
        assert outside.hits == 1, "the endpoint itself was asked"
        assert inside.requests == []
        event = _event(link.id)
        assert event.status == "pending" and event.last_status == 307
        assert event.last_error == targets.REDIRECT
    finally:
        inside.close()
        outside.close()


def test_redirects_are_not_followed_with_private_targets_allowed_either(account, app):
    inside = Receiver()
    outside = _Redirector(inside.url, host="127.0.0.1")
    try:
        with allowing_private_targets(app):
            link = service.link_provider(account, profile="webhook", url=outside.url, actor=None)
            service.accept_mapping(link, {}, actor=None)
            db.session.commit()
            _contact_event(account)
            delivery.deliver(link.id)
        assert outside.hits == 1 and inside.requests == []
        assert _event(link.id).last_error == targets.REDIRECT
    finally:
        inside.close()
        outside.close()


def test_the_delivery_log_shows_general_words_not_the_connections_text(
    owner, client, app, private_targets
):
    """A closed port: the log says "no connection", not the host, the port or
    "Connection refused"; an older row's free text is shown in the same general words."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with app.app_context():
        from portal.accounts.models import Account

        account = db.session.get(Account, owner)
        link = service.link_provider(
            account, profile="webhook", url=f"http://127.0.0.1:{port}/hooks", actor=None
        )
        service.accept_mapping(link, {}, actor=None)
        db.session.commit()
        _contact_event(account)
        contacts.create_contact(account, "bert@example.com", source="ui")
        db.session.commit()
        delivery.deliver(link.id)
        first = _event(link.id)
        assert first.last_error == targets.NO_CONNECTION
        legacy = db.session.scalars(
            db.select(OutgoingEvent).where(OutgoingEvent.link_id == link.id)
        ).all()[-1]
        legacy.last_error = f"ConnectionError: HTTPConnectionPool(host='10.0.0.5', port={port})"
        db.session.commit()
    page = client.get("/a/acme/integrations").get_data(as_text=True)
    log = re.search(r'<table[^>]*id="delivery-log".*?</table>', page, re.S).group(0)
    assert "No connection to the receiver." in log and "The delivery failed." in log
    assert str(port) not in log and "10.0.0.5" not in page and "refused" not in log.lower()
    german = client.get("/a/acme/integrations?lang=de").get_data(as_text=True)
    assert "Keine Verbindung zum Empfänger." in german


class _Redirector:
    """Answers every POST with 307 to `location`."""

    def __init__(self, location: str, host: str = "127.0.0.2"):
        self.hits = 0
        redirector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                redirector.hits += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(307)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
