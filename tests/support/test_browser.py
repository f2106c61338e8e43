"""In a real browser (Chromium, CSRF on): a staff user signs in, finds a deleted contact
by its address, opens the account with a reason, restores the contact; the owner then
finds the access and the restore on the settings page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.accounts.models import Role
from portal.contacts.models import Contact
from portal.extensions import db
from tests.conftest import PASSWORD


def _sign_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")
    form = page.locator("main form[method=post]")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()


def test_staff_restore_a_contact_and_the_owner_sees_it(
    app, live_server, page, new_context, screenshot, make_account, make_user, make_data
):
    app.config["WTF_CSRF_ENABLED"] = True  # the autouse fixture switches it off again
    account_id = make_account("acme", name="Acme GmbH")
    make_user("owner@acme.example", account_id, Role.OWNER)
    make_user("support@portal.example", is_staff=True)
    data = make_data(account_id)
    group_id = data.group("Newsletter")
    contact_id = data.contact("jürgen@größ.de", "Jürgen", "Größ", groups=(group_id,), deleted=True)

    _sign_in(page, live_server, "support@portal.example")
    page.locator('nav.navbar a.nav-link[href="/support/"]').click()
    expect(page).to_have_url(f"{live_server}/support/")

    lookup = page.locator("#lookup-form")
    lookup.locator("input[name=email]").fill("Jürgen@Größ.de")
    lookup.locator("input[name=reason]").fill("Ticket #4711")
    lookup.locator("button[type=submit]").click()
    row = page.locator('#lookup-results tr[data-slug="acme"]')
    expect(row).to_contain_text("To be deleted")
    expect(row).not_to_contain_text("Größ")  # the address is the heading, names stay out
    row.get_by_role("link", name="Open the account").click()

    expect(page.locator("input[name=reason]")).to_have_value("Ticket #4711")
    page.locator("#open-button").click()
    expect(page.locator("#staff-banner")).to_contain_text("Acme GmbH")
    expect(page.locator("#access-reason")).to_contain_text("Ticket #4711")

    page.locator("#tab-deleted").click()
    page.locator(f"#pick-{contact_id}").check()
    page.locator("#restore-selected").click()
    expect(page.locator("main .alert-success")).to_contain_text("1 contact restored")
    expect(page.locator("#deleted-count")).to_contain_text("0 contacts are to be deleted.")
    screenshot(page, "-staff")
    with app.app_context():
        assert db.session.get(Contact, contact_id).status == "active"

    owner = new_context().new_page()
    _sign_in(owner, live_server, "owner@acme.example")
    owner.goto(f"{live_server}/a/acme/settings")
    events = owner.locator("#support-events")
    expect(events).to_contain_text("Support accessed your account. Reason: Ticket #4711")
    expect(events).to_contain_text("1 contact restored")
    expect(events).to_contain_text("support@portal.example")
    screenshot(owner, "-owner")

    # the owner's own browser gets nothing from /support/
    response = owner.goto(f"{live_server}/support/")
    assert response.status == 404
    assert not re.search(r"/login", owner.url)
