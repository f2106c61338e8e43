"""The API key page in a real browser: a key is shown once with a button that copies it,
and reloading the page makes no second key (issue 17, point 9)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.api.models import ApiKey
from portal.extensions import db
from tests.e2e.conftest import OWNER, sign_in


def test_owner_creates_a_key_copies_it_and_a_reload_makes_no_second(
    app, owner, live_server, new_context, screenshot
):
    context = new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page = context.new_page()
    sign_in(page, live_server, OWNER)
    page.goto(f"{live_server}/a/acme/settings/api")
    page.locator("input[name=name]").fill("Shop")
    page.locator("main form button[type=submit]").last.click()
    key = page.locator("#new-key-value")
    expect(key).to_have_value(re.compile(r"^rpk_"))
    page.locator("#copy-key").click()
    expect(page.locator("#copy-key")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == key.input_value()
    screenshot(page)

    page.reload()
    expect(page.locator("#new-key-value")).to_have_count(0)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(ApiKey.id))) == 1
