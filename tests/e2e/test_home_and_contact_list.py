"""The account at a glance and the contact list, in a real browser, in all five languages
(issue 17, points 14 and 15): the owner's home page shows the contacts by status and by
group, the imports, the latest backup with its age, tonight's purge and the open support
access, each a link to its page; the contact list sorts by a column header, says
"1–50 of 62" in the reader's language and pages on with the sort, and its search finds a
part of an address ("neu" finds bernd.neu02@…). Screenshots of both pages per language
(test-artifacts/screenshots/)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from babel.numbers import format_decimal
from playwright.sync_api import expect

from portal.backups.snapshot import snapshot
from portal.contacts.models import Contact, Group
from portal.core.audit import StaffAccess
from portal.extensions import db
from portal.imports.models import ImportJob
from tests.e2e.conftest import OWNER, sign_in
from tests.e2e.test_journeys import _translated

LANGUAGES = ("en", "de", "it", "nl", "pl")


@pytest.fixture
def account_data(app, owner, newsletter):
    """62 contacts (Anna Alt, Jürgen Größ, Bernd Neu and 59 more), one of them to be
    deleted, a finished import with its backup, and an open support access."""
    data = newsletter["data"]
    group = newsletter["group"]
    data.contact("bernd.neu02@example.de", "Bernd", "Neu", groups=(group,))
    for i in range(58):
        data.contact(f"person{i:02d}@example.org", f"Person{i:02d}", "Muster", groups=(group,))
    data.contact("zoe@example.org", "Zoe", "Zett", groups=(group,), deleted=True)
    with app.app_context():
        gone = db.session.scalar(db.select(Contact).where(Contact.email == "zoe@example.org"))
        gone.deleted_at = datetime.now(UTC) - timedelta(minutes=5)
        job = ImportJob(
            account_id=owner,
            group_id=group,
            group_name="Newsletter",
            filename="kunden.csv",
            status="finished",
            created=12,
            updated=3,
            source="ui",
        )
        db.session.add(job)
        db.session.flush()
        backup = snapshot(db.session.get(Group, group), reason="import", import_job=job)
        job.backup_id = backup.id
        db.session.add(
            StaffAccess(
                staff_label="support@portal.example",
                account_id=owner,
                reason="Ticket 4711",
                expires_at=datetime.now(UTC) + timedelta(minutes=50),
            )
        )
        db.session.commit()
        return {"import": job.id, "backup": backup.id}


def _number(value: int, lang: str) -> str:
    return format_decimal(value, locale="en_GB" if lang == "en" else lang)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_home_page_and_contact_list(app, account_data, live_server, page, screenshot, lang):
    sign_in(page, live_server, OWNER)
    page.goto(f"{live_server}/a/acme/?lang={lang}")

    # --- the home page ---
    expect(page.locator("#home-groups-title")).to_have_text(
        _translated(app, "Contacts by group", lang)
    )
    expect(page.locator("#home-status-total")).to_have_text("62")
    expect(page.locator("#home-status-active")).to_have_text("61")
    expect(page.locator("#home-status-deleted")).to_have_text("1")
    expect(page.locator("#home-purge-count")).to_have_text(_purge_text(app, lang))
    expect(page.locator("#home-imports-ended tr[data-import-id] .import-created")).to_have_text(
        "12"
    )
    undo = page.locator(f"#home-undo-{account_data['import']}")
    expect(undo).to_have_attribute("href", f"/a/acme/backups/undo/{account_data['import']}")
    expect(page.locator(f"#home-backup-restore-{account_data['backup']}")).to_have_attribute(
        "href", f"/a/acme/backups/{account_data['backup']}/restore"
    )
    expect(page.locator(".staff-access")).to_contain_text("Ticket 4711")
    screenshot(page, f"-home-{lang}")

    # the group's figure leads to the group's page
    page.locator("#home-groups a", has_text="Newsletter").click()
    expect(page.locator("main h1")).to_contain_text("Newsletter")

    # --- the contact list: sorted by address, paged with the sort ---
    page.goto(f"{live_server}/a/acme/contacts")
    total = _number(62, lang)
    of = "%(first)s–%(last)s of %(total)s"
    expect(page.locator("#page-range")).to_have_text(
        _translated(app, of, lang, first="1", last="50", total=total)
    )
    page.locator("#sort-email").click()
    rows = page.locator("#contacts tbody tr.contact-row a")
    expect(rows.first).to_have_text("anna@example.com")
    expect(page.locator("th[aria-sort=ascending] #sort-email")).to_have_count(1)
    page.locator("#page-next").click()
    expect(page.locator("#page-range")).to_have_text(
        _translated(app, of, lang, first="51", last="62", total=total)
    )
    expect(rows.last).to_have_text("zoe@example.org")
    screenshot(page, f"-contacts-{lang}")

    # a part of an address, typed into the search: the sort stays
    page.locator("#contact-filters input[name=q]").fill("neu")
    page.locator("#contact-filters button[type=submit]").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_text("bernd.neu02@example.de")
    assert "sort=email" in page.url
    screenshot(page, f"-search-{lang}")

    # nothing found: no bulk actions
    page.locator("#contact-filters input[name=q]").fill("nobody-is-called-this")
    page.locator("#contact-filters button[type=submit]").click()
    expect(page.locator("#no-contacts")).to_be_visible()
    expect(page.locator("#bulk-form")).to_have_count(0)


def _purge_text(app, lang: str) -> str:
    from flask_babel import force_locale, ngettext

    with app.test_request_context("/"), force_locale(lang):
        text = ngettext(
            "%(num)d contact will be removed for good by the nightly purge.",
            "%(num)d contacts will be removed for good by the nightly purge.",
            1,
        )
    return text
