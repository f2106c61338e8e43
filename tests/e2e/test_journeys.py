"""Browser journeys through the whole portal, in Debian's Chromium with CSRF on: what an
owner, a person on the public sign-up form and a support staff user do with their own
hands. Every journey ends with a screenshot of its last page (test-artifacts/screenshots/).

The session app runs jobs at once (TESTING); the import journey uses a second app whose
jobs wait in Redis for a real `flask --app app rq worker` process, so that the progress
bar has something to show."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from playwright.sync_api import expect

from portal.accounts.models import Account, Role
from portal.backups.models import Backup
from portal.contacts.models import Contact, Group, Subscription
from portal.extensions import db
from portal.lifecycle import service as lifecycle
from portal.mail import outbox_messages
from tests.e2e.conftest import OWNER, sign_in

STAFF = "support@portal.example"
BERLIN = ZoneInfo("Europe/Berlin")
DANGER_RED = "rgb(220, 53, 69)"  # Bootstrap's --bs-danger: "to be deleted" is shown in it
WORKER_TIMEOUT_MS = 60_000  # a worker process starts in a few seconds, more on a busy machine

# Records the import progress bar on every page load and every change of its value, in
# the tab's sessionStorage, so that the values survive the page's own reloads.
PROGRESS_RECORDER = """
document.addEventListener("DOMContentLoaded", () => {
  const bar = document.getElementById("import-progress-bar");
  if (!bar) { return; }
  const status = document.getElementById("import-progress").dataset.status;
  const record = () => {
    const seen = JSON.parse(sessionStorage.getItem("e2e-progress") || "[]");
    seen.push([status, Number(bar.value)]);
    sessionStorage.setItem("e2e-progress", JSON.stringify(seen));
  };
  record();
  new MutationObserver(record).observe(bar, { attributes: true, attributeFilter: ["value"] });
});
"""


def _text(app, message: str, lang: str, **params) -> str:
    """The catalog's text for `message` in `lang`."""
    from flask_babel import force_locale, gettext

    with app.test_request_context("/"), force_locale(lang):
        return gettext(message, **params)


def _translated(app, message: str, lang: str, **params) -> str:
    """Like _text, and fails when a catalog leaves the message in English."""
    text = _text(app, message, lang, **params)
    if lang != "en":
        assert text != _text(app, message, "en", **params), f"{message!r} untranslated in {lang}"
    return text


def _short(moment: datetime, lang: str) -> str:
    """A date as the reader expects it in their language (Berlin time), computed by
    Babel itself and not by the portal's helpers."""
    return format_datetime(moment, "short", tzinfo=BERLIN, locale="en_GB" if lang == "en" else lang)


def _read(app, model, object_id: int):
    with app.app_context():
        obj = db.session.get(model, object_id)
        if obj is not None:
            db.session.expunge(obj)
        return obj


# --- 1. five languages ---------------------------------------------------------------------


def _switch_language(page, lang: str, by: str) -> None:
    if by == "footer":
        page.locator(f"footer a[data-lang={lang}]").click()
    else:
        page.wait_for_load_state("load")  # the dropdown needs Bootstrap's script
        page.locator("#language-menu").click()
        page.locator(f"nav.navbar .dropdown-menu a[hreflang={lang}]").click()
    expect(page).to_have_url(re.compile(rf"\?lang={lang}$"))
    expect(page.locator("html")).to_have_attribute("lang", lang)


def test_owner_goes_through_all_five_languages(
    app, owner_page, newsletter, live_server, screenshot
):
    page = owner_page
    added = datetime(2026, 3, 9, 17, 5, tzinfo=UTC)  # day 9 of month 3: the order shows
    with app.app_context():
        contact = db.session.get(Contact, newsletter["anna"])
        contact.created_at = added
        db.session.commit()
    page.locator("nav.navbar a.nav-link", has_text="Contacts").click()
    expect(page).to_have_url(f"{live_server}/a/acme/contacts")

    for lang, switch in (
        ("en", None),
        ("de", "footer"),
        ("it", "menu"),
        ("nl", "footer"),
        ("pl", "menu"),
    ):
        if switch:
            _switch_language(page, lang, switch)
        main = page.locator("main")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(main.locator("h1")).to_have_text(_translated(app, "Contacts", lang))
        expect(page.locator("#contacts thead")).to_contain_text(_translated(app, "Added", lang))
        row = page.locator(f'#contacts tr[data-contact-id="{newsletter["anna"]}"]')
        expect(row.locator("td").last).to_have_text(_short(added, lang))
        expect(row.locator(".contact-status")).to_have_text(_translated(app, "Active", lang))

        # the card, reached by a plain link: the session keeps the language
        row.get_by_role("link", name="anna@example.com").click()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(main.locator("h1")).to_have_text("Anna Alt")
        expect(main.locator("h2").first).to_have_text(_translated(app, "Master data", lang))
        expect(main).to_contain_text(_text(app, "Added %(date)s", lang, date=_short(added, lang)))
        groups = page.locator("#contact-groups")
        expect(groups.locator("thead")).to_contain_text(_translated(app, "Signed up", lang))
        expect(groups.locator("td.signup")).to_have_text(_short(newsletter["at"], lang))
        page.locator("nav .breadcrumb a").first.click()  # back to the list

    expect(page.locator("main h1")).to_have_text("Kontakty")  # not only what the catalog says
    expect(page.locator("footer .language-switch a")).to_have_count(4)  # and one in bold
    expect(page.locator("footer .language-switch strong")).to_have_text("Polski")
    screenshot(page)


# --- 2. automatic backups off and on -----------------------------------------------------


def test_owner_switches_automatic_backups_off_and_on(
    app, owner, owner_page, newsletter, live_server, screenshot
):
    page = owner_page
    switch = page.locator("#settings-form input[name=automatic_backups]")
    saved = page.locator("main .alert-success")

    page.locator("nav.navbar a.nav-link", has_text="Settings").click()
    expect(page.locator("#privacy")).to_have_text("Privacy")
    expect(switch).to_be_checked()
    switch.uncheck()
    page.locator("#settings-form button[type=submit]").click()
    expect(saved).to_have_text("The settings have been saved.")
    page.reload()
    expect(switch).not_to_be_checked()
    expect(page.locator("#recent-changes li").first).to_contain_text("Automatic backups: on → off")
    assert _read(app, Account, owner).automatic_backups is False
    page.locator("nav.navbar a.nav-link", has_text="Backups").click()
    expect(page.locator("#backups-off")).to_contain_text("switched off for this account")

    group_switch = page.locator("#group-settings-form input[name=automatic_backups]")
    page.goto(f"{live_server}/a/acme/groups/{newsletter['group']}/settings")
    expect(page.locator("#account-switch-state")).to_contain_text(
        "switched off for the whole account"
    )
    expect(page.locator("#delete-group-form")).not_to_contain_text("A backup of the group")
    expect(group_switch).to_be_checked()

    page.locator("#account-switch-state a").click()  # "Account settings", back to Privacy
    expect(page).to_have_url(re.compile(r"/a/acme/settings#privacy$"))
    switch.check()
    page.locator("#settings-form button[type=submit]").click()
    expect(saved).to_have_text("The settings have been saved.")
    expect(switch).to_be_checked()
    expect(page.locator("#recent-changes li").first).to_contain_text("Automatic backups: off → on")
    assert _read(app, Account, owner).automatic_backups is True
    page.locator("nav.navbar a.nav-link", has_text="Backups").click()
    expect(page.locator("#backups-off")).to_have_count(0)

    # the group's own switch
    page.goto(f"{live_server}/a/acme/groups/{newsletter['group']}/settings")
    expect(page.locator("#account-switch-state")).to_contain_text("switched on for the account")
    expect(page.locator("#delete-group-form")).to_contain_text(
        "A backup of the group is saved first."
    )
    group_switch.uncheck()
    page.locator("#group-settings-form button[type=submit]").click()
    expect(saved).to_have_text("The settings have been saved.")
    page.reload()
    expect(group_switch).not_to_be_checked()
    expect(page.locator("#delete-group-form")).not_to_contain_text("A backup of the group")
    assert _read(app, Group, newsletter["group"]).automatic_backups is False

    group_switch.check()
    page.locator("#group-settings-form button[type=submit]").click()
    expect(saved).to_have_text("The settings have been saved.")
    page.reload()
    expect(group_switch).to_be_checked()
    expect(page.locator("#delete-group-form")).to_contain_text(
        "A backup of the group is saved first."
    )
    assert _read(app, Group, newsletter["group"]).automatic_backups is True
    changes = page.locator("#recent-changes li")
    expect(changes.nth(0)).to_contain_text("Automatic backups of group “Newsletter”: off → on")
    expect(changes.nth(1)).to_contain_text("Automatic backups of group “Newsletter”: on → off")
    screenshot(page)


# --- 3.-5. import, backup, undo ------------------------------------------------------------


def _csv_file(tmp_path, n_new: int = 3, encoding: str = "cp1250"):
    """What a Polish office exports from Excel: "CSV (semicolon)" in the Windows code
    page cp1250 (which holds the German umlauts too), or "CSV UTF-8" with a BOM
    (encoding="utf-8-sig"); headers in Polish, the fourth column named in a way the
    portal cannot guess. Anna gets a new last name, Jürgen stays as he is, `n_new`
    people are new."""
    rows = [
        ["Adres e-mail", "Imię", "Nazwisko", "Etykiety klienta"],
        ["anna@example.com", "Anna", "Łukasiewicz-Żółć", "Kraków"],
        ["juergen@example.de", "Jürgen", "Größ", ""],
        ["zofia@example.pl", "Zofia", "Wróblewska", "Kraków;Łódź"],
        ["malgorzata@example.pl", "Małgorzata", "Ćwik", "Łódź"],
        ["bjoern@example.de", "Björn", "Müßig", "Düsseldorf"],
    ]
    rows += [[f"osoba{i}@example.pl", "Łucja", f"Dąbrowska {i}", ""] for i in range(n_new - 3)]
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(rows)
    path = tmp_path / "odbiorcy-łódź.csv"
    path.write_bytes(out.getvalue().encode(encoding))
    return path


def _upload_and_map(page, base_url: str, path) -> None:
    """Upload page and mapping form, up to "Check the file"."""
    page.goto(f"{base_url}/a/acme/imports")
    page.locator("#new-import").click()
    form = page.locator("#upload-form")
    form.locator("input[name=file]").set_input_files(str(path))
    form.locator("select[name=group]").select_option(label="Newsletter")
    form.locator("button[type=submit]").click()

    mapping = page.locator("#mapping")
    expect(page.locator("main")).to_contain_text(path.name)
    expect(mapping).to_contain_text("Łukasiewicz-Żółć")  # the preview read the encoding
    expect(page.locator("#column-0")).to_have_value("email")
    expect(page.locator("#column-1")).to_have_value("first_name")
    expect(page.locator("#column-2")).to_have_value("last_name")
    page.locator("#column-3").select_option("tags")
    page.locator("#check-button").click()


def _start(page) -> None:
    dry_run = page.locator("#dry-run")
    expect(page.locator("main h1")).to_have_text("Import: what will happen")
    expect(dry_run.locator("[data-count=created]")).to_have_text("3")
    expect(dry_run.locator("[data-count=updated]")).to_have_text("1")
    expect(dry_run.locator("[data-count=unchanged]")).to_have_text("1")
    page.locator("#start-button").click()


def _summary(page, created: str = "3") -> None:
    summary = page.locator("#summary")
    expect(page.locator("main h1")).to_have_text("Import finished")
    expect(summary.locator("[data-count=created]")).to_have_text(created)
    expect(summary.locator("[data-count=updated]")).to_have_text("1")
    expect(summary.locator("[data-count=unchanged]")).to_have_text("1")
    expect(summary.locator("[data-count=invalid]")).to_have_text("0")


def _import_through_the_pages(page, base_url: str, path) -> None:
    """The whole import on the session app, where the jobs run at once."""
    _upload_and_map(page, base_url, path)
    _start(page)
    _summary(page)


def test_owner_imports_a_csv_and_watches_the_progress_bar(
    app, owner, newsletter, async_live_server, page, rq_worker, tmp_path, screenshot
):
    base = async_live_server  # jobs wait for a worker here
    page.add_init_script(PROGRESS_RECORDER)
    sign_in(page, base, OWNER)
    expect(page).to_have_url(f"{base}/a/acme/")
    path = _csv_file(tmp_path, n_new=300, encoding="utf-8-sig")
    _upload_and_map(page, base, path)

    # the dry run waits for a worker: the progress page shows, the bar runs to the end
    progress = page.locator("#import-progress")
    expect(progress).to_have_attribute("data-status", "checking")
    expect(page.locator("#import-status-text")).to_have_text("Checking the file")
    checker = rq_worker(IMPORT_BATCH_ROWS="50")
    dry_run = page.locator("#dry-run")
    expect(dry_run.locator("[data-count=created]")).to_have_text("300", timeout=WORKER_TIMEOUT_MS)
    expect(dry_run.locator("[data-count=updated]")).to_have_text("1")
    expect(dry_run.locator("[data-count=unchanged]")).to_have_text("1")
    # the burst worker must be gone before "Start", or it would take the run job too and
    # finish it before the progress page could show it
    assert checker.wait(timeout=WORKER_TIMEOUT_MS / 1000) == 0

    page.locator("#start-button").click()
    expect(progress).to_have_attribute("data-status", re.compile("queued|running"))
    expect(page.locator("#import-status-text")).to_have_text(re.compile("Queued|Importing"))
    # the run's own bar: its phase named, from 0 (it used to drop from 100 to 60)
    expect(page.locator("#import-detail")).to_have_text(
        re.compile("Waiting for a worker|Backup of the group|Importing")
    )
    rq_worker(IMPORT_BATCH_ROWS="50", IMPORT_CHUNK_ROWS="100")
    expect(page.locator("main h1")).to_have_text("Import finished", timeout=WORKER_TIMEOUT_MS)
    _summary(page, created="300")

    seen = json.loads(page.evaluate("sessionStorage.getItem('e2e-progress')"))
    print(f"progress bar values seen: {seen}")
    check = [value for status, value in seen if status == "checking"]
    run = [value for status, value in seen if status in ("queued", "running")]
    assert check and check[-1] == 100, seen
    assert run and run[-1] == 100 and run[0] == 0, seen
    assert run == sorted(run), f"the bar went backwards: {seen}"

    # the people are there, with their letters and tags
    page.goto(f"{base}/a/acme/contacts?q=Łukasiewicz")
    expect(page.locator("#contacts tbody tr")).to_have_count(1)
    expect(page.locator("#contacts")).to_contain_text("Anna Łukasiewicz-Żółć")
    filters = page.locator("#contact-filters")
    filters.locator("input[name=q]").fill("")
    filters.locator("select[name=tag]").select_option(label="Łódź")
    filters.get_by_role("button", name="Filter").click()
    expect(page.locator("#match-count")).to_have_attribute("data-count", "2")
    expect(page.locator("#contacts")).to_contain_text("Małgorzata Ćwik")

    # and the import is in the history, with its summary one click away
    page.locator("nav.navbar a.nav-link", has_text="Imports").click()
    history = page.locator("#import-history tbody tr")
    expect(history).to_have_count(1)
    expect(history).to_contain_text(path.name)
    expect(history).to_contain_text("Finished")
    history.locator("td:first-child a").click()  # the date opens the summary
    _summary(page, created="300")
    screenshot(page)


def test_owner_downloads_the_backup_the_import_made(
    app, owner, owner_page, newsletter, live_server, tmp_path, screenshot
):
    page = owner_page
    _import_through_the_pages(page, live_server, _csv_file(tmp_path))

    page.locator("nav.navbar a.nav-link", has_text="Backups").click()
    group = page.locator('#backups tbody.backup-group[data-group="Newsletter"]')
    row = group.locator("tr[data-backup-id]")
    expect(row).to_have_count(1)
    expect(row.locator(".backup-reason")).to_contain_text("Before an import")
    expect(row.locator(".backup-count")).to_have_text("2")  # Anna and Jürgen, before
    with app.app_context():
        backup = db.session.scalars(db.select(Backup)).one()
        expect(row.locator(".backup-date")).to_have_text(
            format_datetime(backup.created_at, "medium", tzinfo=BERLIN, locale="en_GB")
        )

    with page.expect_download() as info:
        row.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert re.fullmatch(
        r"backup-Newsletter-\d{4}-\d\d-\d\d-\d{4}\.csv", download.suggested_filename
    )
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    content = target.read_bytes()
    assert content.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["Email", "First name", "Last name", "Tags"]  # in English
    people = {row[0]: (row[1], row[2], row[4]) for row in rows[1:]}
    # the state before the import: Anna's old name, nobody the import added
    assert people == {
        "anna@example.com": ("Anna", "Alt", "yes"),
        "juergen@example.de": ("Jürgen", "Größ", "yes"),
    }, rows
    screenshot(page)


def test_owner_undoes_the_import(
    app, owner, owner_page, newsletter, live_server, tmp_path, screenshot
):
    page = owner_page
    group_url = f"{live_server}/a/acme/groups/{newsletter['group']}"
    page.goto(group_url)
    before = page.locator("#contacts tbody").inner_text()
    expect(page.locator("#group-counts")).to_contain_text("2 active")
    _import_through_the_pages(page, live_server, _csv_file(tmp_path))
    page.goto(group_url)
    expect(page.locator("#group-counts")).to_contain_text("5 active")
    for name in ("Anna Łukasiewicz-Żółć", "Małgorzata Ćwik", "Björn Müßig"):  # cp1250, read right
        expect(page.locator("#contacts")).to_contain_text(name)

    page.locator("nav.navbar a.nav-link", has_text="Imports").click()
    page.locator("#import-history tbody tr a").first.click()
    expect(page.locator("#undo-panel h2")).to_have_text("Undo this import")
    page.locator("#undo-button").click()
    # the confirmation page: what the undo would do, before anything happens
    expect(page.locator("#undo-plan [data-count=set_back]")).to_have_text("1")  # Anna only
    expect(page.locator("#undo-plan [data-count=removed]")).to_have_text("3")
    expect(page.locator("#undo-plan [data-count=deleted]")).to_have_text("3")
    page.locator("#undo-confirm").click()
    expect(page.locator("main .alert-success")).to_have_text("The import has been undone.")
    expect(page.locator("#import-undone")).to_contain_text("This import was undone on")
    expect(page.locator("#import-undone")).to_contain_text(
        "Contacts set back: 1 · removed from the group: 3 · deleted: 3."  # Jürgen was unchanged
    )

    page.goto(group_url)
    expect(page.locator("#group-counts")).to_have_text(re.compile(r"^\s*2 active · 0 inactive\s*$"))
    expect(page.locator("#contacts tbody tr")).to_have_count(2)
    assert page.locator("#contacts tbody").inner_text() == before
    expect(page.locator("#contacts")).to_contain_text("Anna Alt")
    expect(page.locator("#contacts")).not_to_contain_text("Łukasiewicz")
    page.goto(f"{live_server}/a/acme/imports")
    expect(page.locator("#import-history .badge", has_text="undone")).to_have_count(1)
    screenshot(page)


# --- 6.-8. delete and restore, forget, sign up again -----------------------------------------


def test_owner_deletes_a_contact_and_restores_it(
    app, owner, owner_page, newsletter, live_server, screenshot
):
    page = owner_page
    contact_id = newsletter["jurgen"]
    page.goto(f"{live_server}/a/acme/contacts")
    page.get_by_role("link", name="juergen@example.de").click()
    header = page.locator("#contact-header")
    expect(header).to_have_attribute("data-status", "active")

    page.locator("#action-delete_contact").click()
    expect(page.locator("main .alert-warning")).to_contain_text(
        "The contact is marked “to be deleted”."
    )
    expect(header).to_have_attribute("data-status", "deleted")
    expect(page.locator("#contact-status")).to_have_text("To be deleted")
    expect(header.locator("h1")).to_have_css("color", DANGER_RED)
    expect(page.locator("#contact-status")).to_have_css("background-color", DANGER_RED)
    with app.app_context():
        contact = db.session.get(Contact, contact_id)
        start, _end = lifecycle.purge_time(contact, db.session.get(Account, owner))
    notice = page.locator("#purge-notice")
    expect(notice).to_contain_text("no longer counts as active")
    expect(notice).to_contain_text(
        f"removed for good in the account's night: {_short(start, 'en')} – 04:00 Europe/Berlin."
    )
    expect(notice).to_contain_text("Until then it can be restored.")
    page.locator("nav .breadcrumb a").first.click()
    row = page.locator(f'#contacts tr[data-contact-id="{contact_id}"]')
    expect(row.locator(".contact-status")).to_have_text("To be deleted")
    for cell in ("td:nth-child(2) a", "td:nth-child(3)", ".contact-status", "td:last-child"):
        expect(row.locator(cell)).to_have_css("color", DANGER_RED)

    row.get_by_role("link", name="juergen@example.de").click()
    page.locator("#action-restore_contact").click()
    expect(page.locator("main .alert-success")).to_have_text(
        "The contact has been restored, with its groups and tags."
    )
    expect(header).to_have_attribute("data-status", "active")
    expect(page.locator("#purge-notice")).to_have_count(0)
    expect(header.locator("h1")).not_to_have_css("color", DANGER_RED)
    expect(page.locator('#contact-groups tr[data-group="Newsletter"]')).to_have_attribute(
        "data-active", "true"
    )
    assert _read(app, Contact, contact_id).status == "active"
    screenshot(page)


def test_owner_forgets_a_contact(app, owner, owner_page, newsletter, live_server, screenshot):
    page = owner_page
    contact_id = newsletter["jurgen"]
    page.goto(f"{live_server}/a/acme/contacts")
    page.get_by_role("link", name="juergen@example.de").click()
    page.locator("#action-forget_contact").click()

    expect(page.locator("main h1")).to_have_text("Forget juergen@example.de for good?")
    expect(page.locator("#erasure-list")).to_contain_text("Jürgen Größ")
    expect(page.locator("#erasure-list")).to_contain_text("1 group membership")
    page.locator("#forget-button").click()  # without the tick nothing happens
    expect(page.locator("#forget-form .invalid-feedback")).to_have_text(
        "Please confirm that the contact shall be erased."
    )
    assert _read(app, Contact, contact_id) is not None

    page.locator("#forget-form input[name=confirm]").check()
    page.locator("#forget-button").click()
    expect(page).to_have_url(f"{live_server}/a/acme/contacts")
    expect(page.locator("main .alert-success")).to_contain_text("erased for good")
    expect(page.locator("#contacts tbody tr")).to_have_count(1)
    expect(page.locator("#contacts")).not_to_contain_text("juergen@example.de")
    expect(page.locator("#contacts")).to_contain_text("anna@example.com")
    page.goto(f"{live_server}/a/acme/contacts?status=deleted")
    expect(page.locator("#no-contacts")).to_be_visible()
    response = page.goto(f"{live_server}/a/acme/contacts/{contact_id}")
    assert response.status == 404
    assert _read(app, Contact, contact_id) is None
    page.goto(f"{live_server}/a/acme/contacts?q=juergen")
    expect(page.locator("#no-contacts")).to_be_visible()
    screenshot(page)


@pytest.mark.parametrize("before", ["forgotten", "deleted"])
def test_person_signs_up_again_through_the_public_form(
    app, owner, owner_page, newsletter, live_server, new_context, screenshot, before
):
    contact_id = newsletter["jurgen"]
    with app.app_context():
        contact = db.session.get(Contact, contact_id)
        account = db.session.get(Account, owner)
        if before == "forgotten":
            lifecycle.forget_contact(contact, actor=None, source="ui")
        else:
            lifecycle.delete_contacts(account, [contact_id], actor=None, source="ui")
        db.session.commit()

    page = owner_page
    page.goto(f"{live_server}/a/acme/groups")
    page.get_by_role("link", name="Newsletter").click()
    form_url = page.locator("#signup-form-link").get_attribute("href")
    assert re.fullmatch(rf"{live_server}/f/[\w-]+", form_url), form_url

    person = new_context("de-DE").new_page()  # the person, in their own browser
    person.goto(form_url)
    expect(person.locator("html")).to_have_attribute("lang", "de")
    form = person.locator("form#signup-form")
    form.locator("input[name=email]").fill("Juergen@Example.de")
    form.locator("input[name=first_name]").fill("Jürgen")
    form.locator("input[name=last_name]").fill("Größ")
    form.locator("#signup-button").click()
    expect(person.locator("#signup-sent")).to_contain_text(
        _translated(app, "Almost done — please check your inbox.", "de")
    )

    with app.app_context():
        messages = outbox_messages()
    assert len(messages) == 1
    mail = messages[0]
    assert mail["To"] == "juergen@example.de"
    body = mail.get_content()
    assert "Newsletter" in body and "Acme GmbH" in body
    links = re.findall(rf"{re.escape(live_server)}/f/\S+/confirm/\S+", body)
    assert len(links) == 1, body
    with app.app_context():
        back = db.session.scalar(db.select(Contact).where(Contact.email == "juergen@example.de"))
        if before == "forgotten":
            assert back is None  # nothing comes back before the person confirms
        else:
            assert back.status == "deleted"

    person.goto(links[0])
    expect(person.locator("#confirmed-title")).to_have_text(
        _translated(app, "Thank you — your sign-up is confirmed.", "de")
    )
    expect(person.locator("#confirmed-text")).to_contain_text("Newsletter")
    screenshot(person, "-person")

    page.goto(f"{live_server}/a/acme/contacts?q=juergen")
    row = page.locator("#contacts tbody tr.contact-row")
    expect(row).to_have_count(1)
    expect(row.locator(".contact-status")).to_have_text("Active")
    row.get_by_role("link", name="juergen@example.de").click()
    expect(page.locator("main h1")).to_have_text("Jürgen Größ")
    expect(page.locator('#contact-groups tr[data-group="Newsletter"]')).to_have_attribute(
        "data-active", "true"
    )
    with app.app_context():
        contact = db.session.scalar(db.select(Contact).where(Contact.email == "juergen@example.de"))
        assert contact.status == "active"
        sub = db.session.scalar(
            db.select(Subscription).where(Subscription.contact_id == contact.id)
        )
        assert sub.active and sub.source == "form" and sub.confirmed_at is not None
        assert not lifecycle.is_forgotten(db.session.get(Account, owner), "juergen@example.de")
    screenshot(page)


# --- 9. support staff ----------------------------------------------------------------------


def test_staff_restores_a_contact_and_the_owner_sees_it(
    app, live_server, page, new_context, screenshot, make_account, make_user, make_data
):
    """A staff user signs in, finds a deleted contact by its address, opens the account
    with a reason and restores the contact; the owner then finds the access and the
    restore on the settings page."""
    app.config["WTF_CSRF_ENABLED"] = True  # the autouse fixture switches it off again
    account_id = make_account("acme", name="Acme GmbH")
    make_user(OWNER, account_id, Role.OWNER)
    make_user(STAFF, is_staff=True)
    data = make_data(account_id)
    group_id = data.group("Newsletter")
    contact_id = data.contact("jürgen@größ.de", "Jürgen", "Größ", groups=(group_id,), deleted=True)

    sign_in(page, live_server, STAFF)
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
    assert _read(app, Contact, contact_id).status == "active"

    owner = new_context().new_page()
    sign_in(owner, live_server, OWNER)
    # the owner's own browser gets nothing from /support/ ...
    response = owner.goto(f"{live_server}/support/")
    assert response.status == 404
    assert not re.search(r"/login", owner.url)
    # ... and finds what the staff user did on the settings page
    owner.goto(f"{live_server}/a/acme/settings")
    events = owner.locator("#support-events")
    expect(events).to_contain_text("Support accessed your account. Reason: Ticket #4711")
    expect(events).to_contain_text("1 contact restored")
    expect(events).to_contain_text(STAFF)
    screenshot(owner)
