"""Switching tools, in German, in a real browser: an owner imports Mailchimp's export
of unsubscribed members. The mapping page recognises it, the check step says before
anything is written that everyone arrives signed off, and lists the one person who
signed up again here since; the result keeps everybody the file opted out signed off.
Screenshots: the check step and the summary (test-artifacts/screenshots/)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from portal.contacts.models import Contact, Subscription
from portal.extensions import db
from tests.e2e.conftest import OWNER, sign_in
from tests.e2e.test_journeys import _translated
from tests.imports import tool_exports


def _file_people(export):
    """(address, its UNSUB_TIME) of the first two people of the export."""
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8"))))
    times = [
        (r["Email Address"].lower(), datetime.fromisoformat(r["UNSUB_TIME"]).replace(tzinfo=UTC))
        for r in rows[:2]
    ]
    return times


def test_owner_imports_a_mailchimp_export_of_unsubscribed_members_in_german(
    app,
    owner,
    newsletter,
    live_server,
    page,
    tmp_path,
    screenshot,  # noqa: F811
):
    export = tool_exports.mailchimp_unsubscribed()
    (stays, stays_off), (again, again_off) = _file_people(export)
    data = newsletter["data"]
    # two of them are active here: one signed up before the sign-off Mailchimp has,
    # the other signed up again here after it
    data.contact(stays, groups=(newsletter["group"],), signup_at=stays_off - timedelta(days=30))
    data.contact(again, groups=(newsletter["group"],), signup_at=again_off + timedelta(days=3))
    path = tmp_path / export.filename
    path.write_bytes(export.content)

    sign_in(page, live_server, OWNER)
    page.goto(f"{live_server}/a/acme/imports/new?lang=de")
    form = page.locator("#upload-form")
    form.locator("input[name=file]").set_input_files(str(path))
    form.locator("select[name=group]").select_option(label="Newsletter")
    form.locator("button[type=submit]").click()

    recognised = _translated(
        app,
        "This looks like an export of %(tool)s (%(variant)s).",
        "de",
        tool="Mailchimp",
        variant=_translated(app, "unsubscribed members", "de"),
    )
    expect(page.locator("#recognised")).to_contain_text(recognised)
    headers = export.content.decode().splitlines()[0].replace('"', "").split(",")
    expect(page.locator(f"#column-{headers.index('UNSUB_TIME')}")).to_have_value("signoff_at")
    expect(page.locator(f"#column-{headers.index('TAGS')}")).to_have_value("tags")
    screenshot(page, "-mapping")
    page.locator("#check-button").click()

    # the check step, before anything is written
    expect(page.locator("main h1")).to_have_text(_translated(app, "Import: what will happen", "de"))
    effects = page.locator("#consent-effects")
    created_off = len(export.expected.signed_off) - 2
    expect(effects.locator("dt[data-effect=new_off]")).to_have_text(
        _translated(app, "Added as signed off", "de")
    )
    expect(effects.locator("dd[data-effect=new_off] .effect-count")).to_have_text(str(created_off))
    expect(effects.locator("dd[data-effect=signed_off] .effect-count")).to_have_text("1")
    expect(effects.locator("dd[data-effect=kept_newer] .effect-examples")).to_contain_text(again)
    expect(effects.locator("[data-effect=new_on]")).to_have_count(0)
    expect(page.locator("#consent-columns")).to_contain_text("UNSUB_TIME")
    expect(page.locator("#date_zone")).to_have_value("UTC")
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Contact.id))) == 4  # nothing written
    screenshot(page, "-check")

    page.locator("#start-button").click()
    expect(page.locator("main h1")).to_have_text(_translated(app, "Import finished", "de"))
    summary = page.locator("#consent-effects")
    expect(summary.locator("dd[data-effect=new_off] .effect-count")).to_have_text(str(created_off))
    screenshot(page)

    with app.app_context():
        emails = set(export.expected.signed_off)
        active = set(
            db.session.scalars(
                db.select(Contact.email)
                .join(Subscription, Subscription.contact_id == Contact.id)
                .where(Subscription.active, Contact.email.in_(emails))
            )
        )
    assert active == {again}  # only the newer consent here stands
