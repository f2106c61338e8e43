"""The integrations page: link, report, accept, sync progress, delivery log; roles and
tenancy; no way for the owner to unlink."""

from __future__ import annotations

import re

from portal.accounts.models import Role
from portal.extensions import db
from portal.integrations.models import OutgoingEvent, ProviderLink, SyncRun
from tests.helpers.auth import login


def test_an_owner_links_checks_the_tags_accepts_and_the_sync_starts(app, data, client, receiver):
    for i, tag in enumerate(["Händler", "VIP"]):
        data.contact(f"c{i}@example.com", tags=(tag,))
    page = client.get("/a/acme/integrations").get_data(as_text=True)
    assert 'id="link-form"' in page
    response = client.post(
        "/a/acme/integrations/link", data={"profile": "ascii_ids", "url": receiver.url}
    )
    assert response.location.endswith("/a/acme/integrations/tags")
    report = client.get("/a/acme/integrations/tags").get_data(as_text=True)
    assert 'data-unfit="1"' in report and "umlauts or ß" in report
    assert re.search(r'value="HAENDLER"', report)
    with app.app_context():
        link = db.session.scalar(db.select(ProviderLink))
        receiver.secret = link.secret
        tag_fields = re.findall(r'name="(tag_\d+)"', report)
    done = client.post(
        "/a/acme/integrations/tags",
        data={f: v for f, v in zip(tag_fields, ["HAENDLER", "VIP"], strict=True)},
        follow_redirects=True,
    )
    text = done.get_data(as_text=True)
    assert "The full sync has started." in text
    with app.app_context():
        run = db.session.scalar(db.select(SyncRun))
        assert run.status == "finished" and run.processed == 2
        status = client.get(f"/a/acme/integrations/sync/{run.id}/status").get_json()
        assert status["queued"] == 2 and status["delivered"] == 0
    # the owner finds no way to unlink, only the note about the support team
    assert 'id="switch-note"' in text and "support team" in text
    assert not [
        r for r in app.url_map.iter_rules() if "integrations" in r.rule and "unlink" in r.rule
    ]
    again = client.post(
        "/a/acme/integrations/link",
        data={"profile": "webhook", "url": receiver.url},
        follow_redirects=True,
    )
    assert "already linked" in again.get_data(as_text=True)


def test_the_report_can_be_checked_for_any_provider_before_linking(data, client):
    data.contact("a@example.com", tags=("Łódź_2024",))
    page = client.get("/a/acme/integrations/tags?profile=ascii_ids").get_data(as_text=True)
    assert "LODZ-2024" in page and "underscores" in page and 'id="accept-mapping"' not in page
    assert client.get("/a/acme/integrations/tags?profile=nonsense").status_code == 404


def test_viewers_and_editors_cannot_link_or_accept(app, client, make_account, make_user, receiver):
    account_id = make_account("acme")
    for role in (Role.VIEWER, Role.EDITOR):
        email = f"{role.value}@acme.example"
        make_user(email, account_id, role)
        member = app.test_client()
        login(member, email)
        assert (
            member.post(
                "/a/acme/integrations/link", data={"profile": "webhook", "url": receiver.url}
            ).status_code
            == 403
        )
        assert 'id="link-form"' not in member.get("/a/acme/integrations").get_data(as_text=True)


def test_another_accounts_sync_and_events_are_404(
    app, data, client, make_account, make_data, receiver
):
    from portal.accounts.models import Account
    from portal.integrations import service, sync

    other = make_account("other")
    with app.app_context():
        account = db.session.get(Account, other)
        link = service.link_provider(account, profile="webhook", url=receiver.url, actor=None)
        run_id = sync.start(link, actor=None).id
        db.session.commit()
    make_data(other).contact("secret@other.example")
    with app.app_context():
        event_id = db.session.scalar(db.select(OutgoingEvent.id))
    assert client.get(f"/a/acme/integrations/sync/{run_id}/status").status_code == 404
    assert client.post(f"/a/acme/integrations/sync/{run_id}/resume").status_code == 404
    assert client.post(f"/a/acme/integrations/events/{event_id}/resend").status_code == 404
    page = client.get("/a/acme/integrations").get_data(as_text=True)
    assert "secret@other.example" not in page and receiver.url not in page
