"""Finding accounts by name or address, and a contact by its exact email address across
all accounts — with only the account, the status, the deletion and purge time, and of a
forgotten person only that the address is blocked."""

from __future__ import annotations

from portal.accounts.models import Account
from portal.core.audit import AuditEvent
from portal.extensions import db
from portal.lifecycle import service as lifecycle
from tests.support.conftest import STAFF_EMAIL, staff_events


def test_accounts_are_found_by_name_or_address(app, make_account, staff_client):
    make_account("acme", name="Acme GmbH")
    make_account("kuchnia", name="Kuchnia Łódź")
    make_account("p100", name="100% Pasta")
    page = staff_client.get("/support/?q=acme").get_data(as_text=True)
    assert 'data-slug="acme"' in page and "kuchnia" not in page
    page = staff_client.get("/support/?q=ŁÓDŹ").get_data(as_text=True)  # name, any case
    assert 'data-slug="kuchnia"' in page
    page = staff_client.get("/support/?q=p10").get_data(as_text=True)  # the address
    assert 'data-slug="p100"' in page
    page = staff_client.get("/support/?q=%25").get_data(as_text=True)  # % is no wildcard
    assert 'data-slug="p100"' in page and 'data-slug="acme"' not in page
    page = staff_client.get("/support/?q=nothing-like-it").get_data(as_text=True)
    assert "No account matches “nothing-like-it”." in page


def _lookup(client, email, reason="Ticket #77"):
    return client.post("/support/lookup", data={"email": email, "reason": reason})


def test_a_contact_is_found_in_every_account_with_status_and_purge_time(
    app, acme, beta, make_account, make_data, staff_client, now
):
    quiet = make_account("quiet", name="Quiet Ltd")
    a, b = make_data(acme), make_data(beta)
    a.contact("Jürgen.Größ@Example.DE", "Jürgen", "Größ")
    now.move_to("2026-03-02T09:30:00+00:00", tick=False)
    b_id = b.contact("jürgen.größ@example.de", "Secret", "Name")
    with app.app_context():
        lifecycle.delete_contacts(
            db.session.get(Account, beta), [b_id], actor=None, source="ui", record=False
        )
        db.session.commit()
    response = _lookup(staff_client, "  JÜRGEN.größ@example.de ")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    rows = page.split('id="lookup-results"')[1]
    acme_row = rows.split('data-slug="acme"')[1].split("</tr>")[0]
    beta_row = rows.split('data-slug="beta"')[1].split("</tr>")[0]
    assert "Active" in acme_row
    assert "To be deleted" in beta_row
    # times in the staff user's timezone (none set: UTC), and said so; the deletion at
    # 9:30 UTC, and the first purge window after it: 02:00–04:00 the next night in Rome
    # (UTC+1), as the account lives it and beside it in the reader's zone
    assert "Times are in your time zone, UTC." in page
    assert "02/03/2026, 09:30" in beta_row  # English, day first
    assert (
        "03/03/2026, 02:00 – 04:00 Europe/Rome (03/03/2026, 01:00 – 03:00 your time, UTC)"
        in beta_row
    )
    assert 'data-slug="quiet"' not in page
    # names are not part of a lookup
    assert "Secret" not in page and "Größ</" not in page
    # every account found has the lookup in its audit log, without the address
    for account_id in (acme, beta):
        [event] = staff_events(app, account_id)
        assert event.action == "support.contact_looked_up"
        assert event.details == {"reason": "Ticket #77", "forgotten": False}
        assert event.actor_label == STAFF_EMAIL and event.object_type == "contact"
        assert "example.de" not in str(event.details)
    assert staff_events(app, quiet) == []


def test_a_forgotten_address_shows_only_that_it_is_blocked(
    app, acme, beta, make_data, staff_client, owner_client
):
    a = make_data(acme)
    group_id = a.group("Newsletter")
    contact_id = a.contact(
        "kasia@example.pl", "Katarzyna", "Wąsowska", groups=(group_id,), tags=("VIP",)
    )
    make_data(beta).contact("kasia@example.pl", "Kasia", "Beta")
    with app.app_context():
        contact = db.session.get(lifecycle.Contact, contact_id)
        lifecycle.forget_contact(contact, actor=None, source="ui")
        db.session.commit()
    page = _lookup(staff_client, "kasia@example.pl", "GDPR question, ticket 12").get_data(
        as_text=True
    )
    acme_row = page.split('data-slug="acme"')[1].split("</tr>")[0]
    assert "Forgotten (“forget me”)" in acme_row
    assert "Active" not in acme_row and "To be deleted" not in acme_row
    for secret in ("Katarzyna", "Wąsowska", "Newsletter", "VIP", f"{contact_id}<"):
        assert secret not in acme_row
    assert "match-deleted" not in acme_row and "match-purge" not in acme_row
    assert "Active" in page.split('data-slug="beta"')[1].split("</tr>")[0]
    [event] = staff_events(app, acme)
    assert event.details == {"reason": "GDPR question, ticket 12", "forgotten": True}
    assert event.object_id is None
    settings = owner_client.get("/a/acme/settings").get_data(as_text=True)
    assert (
        "Support looked up an email address that was forgotten in this account; nothing "
        "about the person was shown. Reason: GDPR question, ticket 12"
    ) in settings


def test_an_unknown_address_finds_nothing_and_records_nothing(app, acme, staff_client):
    page = _lookup(staff_client, "nobody@example.org").get_data(as_text=True)
    assert "No account has this address as a contact, and none has forgotten it." in page
    assert staff_events(app, acme) == []
    with app.app_context():  # no event anywhere holds the address
        details = [e.details for e in db.session.scalars(db.select(AuditEvent))]
        assert "nobody" not in str(details)


def test_a_lookup_needs_a_valid_address_and_a_reason(app, acme, make_data, staff_client):
    make_data(acme).contact("ola@example.pl")
    page = _lookup(staff_client, "not-an-address").get_data(as_text=True)
    assert "This is not a valid email address." in page
    page = _lookup(staff_client, "ola@example.pl", reason=" ").get_data(as_text=True)
    assert "Please state the reason (a ticket number or a few words)." in page
    assert 'id="lookup-results"' not in page
    assert staff_events(app, acme) == []
    # the address stays out of the URL: the lookup is a POST only
    assert staff_client.get("/support/lookup?email=ola@example.pl").status_code == 405
