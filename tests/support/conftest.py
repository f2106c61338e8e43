"""Fixtures for the support console: two customer accounts with owners, a staff user
with their own browser session, and helpers to open an account in the console."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portal.accounts.models import Role
from portal.core.audit import AuditEvent
from tests.helpers.auth import login

STAFF_EMAIL = "support@portal.example"
OWNER_EMAIL = "owner@acme.example"
SIGNUP = datetime(2024, 3, 1, 9, 15, 30, 123456, tzinfo=UTC)
SIGNOFF = datetime(2024, 9, 2, 17, 45, 0, 654321, tzinfo=UTC)


START = "2026-03-02T09:00:00+00:00"  # a Monday; 10:00 in Berlin


@pytest.fixture
def now(time_machine):
    """The clock stands at START before anyone signs in (a signed session cookie from
    the future would be refused); tests move it forward with time_machine.move_to."""
    time_machine.move_to(START, tick=False)
    return time_machine


@pytest.fixture
def acme(now, make_account, make_user):
    """Account "acme" (Berlin) with its owner; returns the account id."""
    account_id = make_account("acme", name="Acme GmbH", timezone="Europe/Berlin")
    make_user(OWNER_EMAIL, account_id, Role.OWNER)
    return account_id


@pytest.fixture
def beta(make_account, make_user):
    """A second account "beta" with its own owner."""
    account_id = make_account("beta", name="Beta Srl", timezone="Europe/Rome")
    make_user("owner@beta.example", account_id, Role.OWNER)
    return account_id


@pytest.fixture
def staff_client(app, now, make_user):
    """A browser session of a signed-in support staff user (a member of nothing)."""
    make_user(STAFF_EMAIL, is_staff=True)
    client = app.test_client()
    assert login(client, STAFF_EMAIL).status_code == 302
    return client


@pytest.fixture
def owner_client(app, now, acme):
    client = app.test_client()
    assert login(client, OWNER_EMAIL).status_code == 302
    return client


def open_account(client, slug: str, reason: str = "Ticket #4711"):
    response = client.post(f"/support/accounts/{slug}/open", data={"reason": reason})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert response.headers["Location"].endswith(f"/support/accounts/{slug}/")
    return response


def staff_events(app, account_id: int) -> list[AuditEvent]:
    from portal.extensions import db

    with app.app_context():
        events = list(
            db.session.scalars(
                db.select(AuditEvent)
                .where(AuditEvent.account_id == account_id, AuditEvent.actor_type == "staff")
                .order_by(AuditEvent.id)
            )
        )
        for event in events:
            db.session.expunge(event)
        return events
