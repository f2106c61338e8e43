"""The account's own sender address (issue 17, point 10): sign-up confirmations come from
it only after a mail to it was answered; until then from the portal's address, always
with the account's name."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import time_machine

from portal.accounts.models import Account, Role
from portal.core.audit import AuditEvent
from portal.extensions import db
from portal.mail import outbox_messages
from tests.helpers.auth import login
from tests.lifecycle.test_signup import _sign_up, _token


def _last_mail(app):
    with app.app_context():
        return outbox_messages()[-1]


def _confirm_path(message) -> str:
    return re.search(r"http://localhost(/sender/confirm/\S+)", message.get_content()).group(1)


def _request(client, email="news@acme.example"):
    return client.post("/a/acme/settings/sender", data={"email": email})


def _doi_sender(app, client, group_id: int, email: str) -> tuple[str, str | None]:
    _sign_up(app.test_client(), _token(app, group_id), email)
    message = _last_mail(app)
    return message["From"], message["Sender"]


def test_a_confirmed_address_sends_the_sign_up_mails(app, client, data):
    group = data.group("Newsletter")
    assert _request(client, "News@Acme.example").status_code == 302
    message = _last_mail(app)
    assert message["To"] == "news@acme.example"
    assert "Acme" in message["Subject"] and "news@acme.example" in message["Subject"]
    page = client.get("/a/acme/settings").get_data(as_text=True)
    assert "Waiting for confirmation: news@acme.example" in page
    # not before the link was opened: the portal's address, with the account's name
    sender, via = _doi_sender(app, client, group, "first@example.com")
    assert sender.startswith("Acme <") and "news@acme.example" not in sender and via is None

    stranger = app.test_client()  # whoever reads that mailbox, not signed in
    link = _confirm_path(message)
    question = stranger.get(link)
    assert question.status_code == 200 and "news@acme.example" in question.get_data(as_text=True)
    with app.app_context():  # a mail scanner's GET confirms nothing
        assert db.session.get(Account, data.account_id).sender_email is None
    done = stranger.post(link)
    assert "now come from news@acme.example" in done.get_data(as_text=True)

    sender, via = _doi_sender(app, client, group, "second@example.com")
    assert sender == "Acme <news@acme.example>" and via and "@" in via
    assert stranger.post(link).status_code == 404  # used up
    page = client.get("/a/acme/settings").get_data(as_text=True)
    assert "come from “Acme” (news@acme.example)." in page
    with app.app_context():
        actions = db.session.scalars(
            db.select(AuditEvent.action)
            .where(AuditEvent.action.like("account.sender%"))
            .order_by(AuditEvent.id)
        ).all()
    assert actions == ["account.sender_requested", "account.sender_confirmed"]


def test_a_new_request_keeps_the_confirmed_address_until_it_is_confirmed(app, client, data):
    group = data.group("Newsletter")
    _request(client, "news@acme.example")
    client.post(_confirm_path(_last_mail(app)))
    _request(client, "other@acme.example")
    first_link = _confirm_path(_last_mail(app))
    sender, _via = _doi_sender(app, client, group, "third@example.com")
    assert sender == "Acme <news@acme.example>"
    # going back to the portal's address drops the pending one: its link is dead
    client.post("/a/acme/settings/sender/remove")
    assert app.test_client().post(first_link).status_code == 404
    sender, via = _doi_sender(app, client, group, "fourth@example.com")
    assert "acme.example" not in sender and via is None


def test_the_link_expires_and_a_wrong_one_confirms_nothing(app, client, data):
    _request(client)
    link = _confirm_path(_last_mail(app))
    assert client.get("/sender/confirm/not-a-token").status_code == 404
    with time_machine.travel(datetime.now(UTC) + timedelta(days=2, hours=1)):
        assert app.test_client().post(link).status_code == 404
    with app.app_context():
        assert db.session.get(Account, data.account_id).sender_email is None


def test_only_admins_set_it_and_a_bad_address_is_refused(app, client, owner, make_user):
    refused = _request(client, "news@acme.example\r\nBcc: x@evil.example")
    assert refused.status_code == 422
    assert "This is not a valid email address." in refused.get_data(as_text=True)
    make_user("editor@acme.example", owner, Role.EDITOR)
    editor = app.test_client()
    login(editor, "editor@acme.example")
    assert (
        editor.post("/a/acme/settings/sender", data={"email": "x@acme.example"}).status_code == 403
    )
    assert editor.post("/a/acme/settings/sender/remove").status_code == 403
    assert 'id="sender-form"' not in editor.get("/a/acme/settings").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Account, owner).sender_email_pending is None


def test_the_confirmation_mail_speaks_the_requesters_language(app, client, data):
    client.get("/a/acme/settings?lang=pl")
    _request(client)
    message = _last_mail(app)
    assert message["Content-Language"] == "pl"
    assert "adres" in message.get_content()
