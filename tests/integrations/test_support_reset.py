"""Only support staff reset a linked provider — from the console, with the reason of
their access, audited and visible to the owner; the owner then links the new one."""

from __future__ import annotations

from portal.accounts.models import Account
from portal.core.audit import AuditEvent
from portal.extensions import db
from portal.integrations import service
from portal.integrations.models import ProviderLink
from tests.support.conftest import open_account


def test_staff_reset_the_link_with_their_reason_and_the_owner_links_anew(
    app, acme, staff_client, owner_client, receiver
):
    owner_client.post("/a/acme/integrations/link", data={"profile": "webhook", "url": receiver.url})
    with app.app_context():
        assert service.current_link(db.session.get(Account, acme)) is not None
    open_account(staff_client, "acme", reason="Ticket 815: switch to Brevo")
    overview = staff_client.get("/support/accounts/acme/").get_data(as_text=True)
    assert 'data-action="reset-integration"' in overview
    # without the confirmation nothing happens
    staff_client.post("/support/accounts/acme/integration/reset", data={})
    with app.app_context():
        assert service.current_link(db.session.get(Account, acme)) is not None
    page = staff_client.post(
        "/support/accounts/acme/integration/reset", data={"confirm": "yes"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "The provider link is reset." in page
    with app.app_context():
        link = db.session.scalar(db.select(ProviderLink))
        assert link.status == "reset" and link.reset_reason == "Ticket 815: switch to Brevo"
        event = db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "integration.reset")
        )
        assert (
            event.actor_type == "staff" and event.details["reason"] == "Ticket 815: switch to Brevo"
        )
    settings = owner_client.get("/a/acme/settings").get_data(as_text=True)
    assert "reset by the support team" in settings and "Ticket 815" in settings
    # the button is gone once nothing is linked; the owner links the new provider
    assert 'data-action="reset-integration"' not in staff_client.get(
        "/support/accounts/acme/"
    ).get_data(as_text=True)
    owner_client.post("/a/acme/integrations/link", data={"profile": "names", "url": receiver.url})
    with app.app_context():
        assert service.current_link(db.session.get(Account, acme)).profile == "names"


def test_the_reset_route_is_a_404_for_the_owner(app, acme, owner_client, receiver):
    owner_client.post("/a/acme/integrations/link", data={"profile": "webhook", "url": receiver.url})
    response = owner_client.post(
        "/support/accounts/acme/integration/reset", data={"confirm": "yes"}
    )
    assert response.status_code == 404
    with app.app_context():
        assert service.current_link(db.session.get(Account, acme)) is not None
