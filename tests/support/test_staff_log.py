"""The owner's whole log of support access (issue 16, point 6): the settings page shows
the newest 30 staff events, and a contact look-up was pushed out of sight by 31 page
views. The log page shows all of them, paged, filtered by staff member and by action;
the CSV download has every entry, formula-safe, for editors, never cached."""

from __future__ import annotations

import csv
import io
import re

import pytest

from portal.accounts.models import Role
from tests.helpers.auth import login
from tests.support.conftest import STAFF_EMAIL, open_account, staff_events

OTHER_STAFF = "second-line@portal.example"


@pytest.fixture
def busy_support(app, acme, staff_client, make_user, now):
    """Support opens acme, looks up a contact, then looks at 31 pages (as one does when
    hunting a bug); a second staff member opens it with a hostile reason."""
    from portal.accounts.models import Account
    from portal.contacts import service as contacts
    from portal.extensions import db

    with app.app_context():
        contacts.create_contact(db.session.get(Account, acme), "anna@example.com", source="ui")
        db.session.commit()
    open_account(staff_client, "acme", reason="Ticket #4711")
    staff_client.post("/support/lookup", data={"email": "anna@example.com", "reason": "T 1"})
    for _ in range(31):
        assert staff_client.get("/support/accounts/acme/").status_code == 200
    make_user(OTHER_STAFF, is_staff=True)
    other = app.test_client()
    login(other, OTHER_STAFF)
    open_account(other, "acme", reason='=HYPERLINK("http://evil.example")')
    return staff_events(app, acme)


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr data-action="([^"]+)" data-id="(\d+)"', page)


def test_a_look_up_pushed_off_the_settings_page_is_in_the_log(owner_client, busy_support):
    assert len(busy_support) >= 34
    looked_up = [e for e in busy_support if e.action == "support.contact_looked_up"]
    assert len(looked_up) == 1
    settings = owner_client.get("/a/acme/settings").get_data(as_text=True)
    assert 'data-action="support.contact_looked_up"' not in settings  # the excerpt of 30
    assert 'id="all-support-events"' in settings
    log = owner_client.get("/a/acme/settings/support").get_data(as_text=True)
    # 50 to a page, newest first: the look-up (the 3rd entry of 35) is on the first page
    assert ("support.contact_looked_up", str(looked_up[0].id)) in _rows(log)


def test_the_log_pages_through_every_entry_once(owner_client, busy_support, app):
    from portal.core.audit import AuditEvent
    from portal.extensions import db

    with app.app_context():  # 120 more entries: three pages
        first = busy_support[0]
        db.session.add_all(
            AuditEvent(
                account_id=first.account_id,
                actor_type="staff",
                actor_label=STAFF_EMAIL,
                action="support.viewed",
                details={"page": "backups", "reason": f"Ticket {i}"},
            )
            for i in range(120)
        )
        db.session.commit()
        expected = db.session.scalars(
            db.select(AuditEvent.id)
            .where(AuditEvent.account_id == first.account_id, AuditEvent.actor_type == "staff")
            .order_by(AuditEvent.id.desc())
        ).all()
    seen: list[int] = []
    url = "/a/acme/settings/support"
    pages = 0
    while url:
        page = owner_client.get(url).get_data(as_text=True)
        seen += [int(i) for _, i in _rows(page)]
        pages += 1
        found = re.search(r'href="([^"]+)" id="next-page"', page)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == expected and pages == 4


def test_filters_by_staff_member_and_by_action(owner_client, busy_support):
    mine = owner_client.get(f"/a/acme/settings/support?staff={OTHER_STAFF}").get_data(as_text=True)
    rows = _rows(mine)
    assert [a for a, _ in rows] == ["support.access_opened"]
    opened = owner_client.get("/a/acme/settings/support?action=support.access_opened")
    assert [a for a, _ in _rows(opened.get_data(as_text=True))] == ["support.access_opened"] * 2
    both = owner_client.get(
        f"/a/acme/settings/support?staff={STAFF_EMAIL}&action=support.contact_looked_up"
    ).get_data(as_text=True)
    assert [a for a, _ in _rows(both)] == ["support.contact_looked_up"]
    # a filter the log does not know shows everything, never an error
    unknown = owner_client.get("/a/acme/settings/support?staff=x%40y&action=%00nope")
    assert unknown.status_code in (200, 400)
    german = owner_client.get("/a/acme/settings/support?lang=de").get_data(as_text=True)
    assert "Zugriffe durch den Support" in german and "Alle Aktionen" in german


def test_the_csv_has_every_entry_formula_safe_and_is_never_cached(
    owner_client, busy_support, app, make_user
):
    response = owner_client.get("/a/acme/settings/support.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "no-store" in response.headers["Cache-Control"]
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["Time (UTC)", "Support staff", "Action", "What"]
    assert len(rows) - 1 == len(busy_support)
    for row in rows[1:]:
        assert all(not cell or cell[0] not in "=+-@\t\r" for cell in row), row
    hostile = [r for r in rows if r[1] == OTHER_STAFF]
    assert "=HYPERLINK" in hostile[0][3] and hostile[0][3].startswith("Support accessed")
    filtered = owner_client.get("/a/acme/settings/support.csv?action=support.contact_looked_up")
    assert len(list(csv.reader(io.StringIO(filtered.get_data(as_text=True))))) == 2


@pytest.mark.parametrize(("role", "page", "download"), [("viewer", 200, 403), ("editor", 200, 200)])
def test_members_read_the_log_and_editors_download_it(
    app, acme, busy_support, make_user, role, page, download
):
    make_user(f"{role}@acme.example", acme, Role(role))
    client = app.test_client()
    login(client, f"{role}@acme.example")
    assert client.get("/a/acme/settings/support").status_code == page
    assert client.get("/a/acme/settings/support.csv").status_code == download
    shown = client.get("/a/acme/settings/support").get_data(as_text=True)
    assert ('id="staff-log-download"' in shown) == (download == 200)


def test_another_accounts_member_gets_404(app, acme, beta, busy_support):
    client = app.test_client()
    login(client, "owner@beta.example")
    assert client.get("/a/acme/settings/support").status_code == 404
    assert client.get("/a/acme/settings/support.csv").status_code == 404
    assert client.get("/a/beta/settings/support").status_code == 200
    assert "Ticket #4711" not in client.get("/a/beta/settings/support").get_data(as_text=True)
