"""In a real browser: sign in through the form (with CSRF), land on the account's home
page, switch the language in the footer, and find the choice remembered for the session
(not on the profile)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.accounts.models import Role, User
from portal.extensions import db
from tests.e2e.conftest import sign_in


def _german(app, message: str) -> str:
    """The German catalog's text for `message` (the English text while untranslated)."""
    from flask_babel import force_locale, gettext

    with app.test_request_context("/"), force_locale("de"):
        return gettext(message)


def test_sign_in_and_switch_to_german(
    app, live_server, page, new_context, screenshot, make_account, make_user
):
    app.config["WTF_CSRF_ENABLED"] = True  # the autouse fixture switches it off again
    account_id = make_account("acme", name="Acme GmbH")
    user_id = make_user("owner@acme.example", account_id, Role.OWNER)
    html = page.locator("html")
    home = f"{live_server}/a/acme/"

    # Sign in through the form: the browser carries the CSRF token and the session cookie.
    sign_in(page, live_server, "owner@acme.example")
    expect(page).to_have_url(home)
    expect(html).to_have_attribute("lang", "en")
    expect(page.locator("nav.navbar .navbar-brand")).to_have_text("Acme GmbH")
    expect(page.locator("#my-role")).not_to_be_empty()

    # The footer's language links switch the page to German.
    page.locator("footer a[data-lang=de]").click()
    expect(page).to_have_url(re.compile(r"/a/acme/\?lang=de$"))
    expect(html).to_have_attribute("lang", "de")
    footer = page.locator("footer .language-switch")
    expect(footer.locator("strong")).to_have_text("Deutsch")
    expect(footer.locator("a[data-lang=en]")).to_have_attribute("hreflang", "en")
    your_role = _german(app, "Your role")
    if your_role != "Your role":  # assert the words too, once the catalog has them
        expect(page.locator("main")).to_contain_text(your_role)

    # Without ?lang the next page load stays German: the session remembers the choice ...
    page.goto(home)
    expect(page).to_have_url(home)
    expect(html).to_have_attribute("lang", "de")

    # ... for this session only: the profile keeps its own setting ("Automatic"), so a
    # new browser session (English browser) signs in to English (issue 16, point 13).
    with app.app_context():
        assert db.session.get(User, user_id).locale is None
    second = new_context("en-US").new_page()
    sign_in(second, live_server, "owner@acme.example")
    expect(second).to_have_url(home)
    expect(second.locator("html")).to_have_attribute("lang", "en")

    screenshot(second)
