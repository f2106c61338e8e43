"""The backups page, download and restore buttons, roles, tenancy, damaged files."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime

from portal import clock
from portal.accounts import service as accounts
from portal.accounts.models import Account, Role
from portal.backups.models import Backup
from portal.backups.read import record_download
from portal.backups.snapshot import snapshot
from portal.backups.undo import request_undo, run_undo
from portal.contacts import service as contacts
from portal.core.storage import get_storage
from portal.extensions import db
from portal.imports.models import ImportJob
from portal.template_helpers import days_left, human_size
from tests.backups.conftest import build_contacts
from tests.backups.stores import damage, lose
from tests.helpers.auth import login


def _member(account, email, role, **kwargs):
    user = accounts.create_user(email, "correct-horse-battery")
    for key, value in kwargs.items():
        setattr(user, key, value)
    accounts.add_member(account, user, role)
    db.session.commit()
    return user


@pytest.fixture
def backups(account, group, time_machine):
    """Two groups with backups at different times."""
    time_machine.move_to("2025-06-01T08:00:00+00:00", tick=False)
    kunden = contacts.create_group(account, "aktionen", actor=None, source="ui")
    build_contacts(account, group, 3)
    build_contacts(account, kunden, 2, prefix="k")
    made = [snapshot(group, reason="import")]
    time_machine.move_to("2025-06-03T18:30:00+00:00", tick=False)
    made.append(snapshot(kunden, reason="manual"))
    made.append(snapshot(group, reason="manual"))
    contacts.delete_group(kunden, actor=None, source="ui")  # a fourth one, group gone
    db.session.commit()
    return made


def test_backups_page_sorted_by_group_then_newest_with_details(client, account, backups):
    _member(account, "ed@acme.example", Role.EDITOR)
    login(client, "ed@acme.example")
    page = client.get("/a/acme/backups").get_data(as_text=True)
    order = re.findall(r'data-backup-id="(\d+)"', page)
    by_id = {b.id: b for b in db.session.scalars(db.select(Backup))}
    names = [by_id[int(i)].group_name for i in order]
    assert names == ["aktionen", "aktionen", "Newsletter", "Newsletter"]  # case-insensitive
    dates = [by_id[int(i)].created_at for i in order]
    assert dates[0] >= dates[1] and dates[2] > dates[3]
    assert "group deleted" in page  # "aktionen" is gone, its backups stay
    assert "master data" in page and "API" in page and "30 days" in page
    assert "in 28 days" in page and "in 30 days" in page
    assert "Before the group was deleted" in page and "Before an import" in page
    assert f'href="/a/acme/backups/{backups[0].id}/download"' in page
    assert f'href="/a/acme/backups/{backups[0].id}/restore"' in page  # the confirmation page
    assert re.search(r'class="text-end backup-size">\d+(\.\d)? KB<|\d+ bytes<', page)


def test_dates_in_the_users_language_and_timezone(client, account, backups):
    _member(account, "pl@acme.example", Role.VIEWER, locale="pl", timezone="America/New_York")
    login(client, "pl@acme.example")
    page = client.get("/a/acme/backups").get_data(as_text=True)
    created = backups[0].created_at
    expected = format_datetime(created, "medium", tzinfo=ZoneInfo("America/New_York"), locale="pl")
    assert expected in page  # 1 cze 2025, 04:00:00
    assert '<html lang="pl">' in page


def test_human_sizes_use_the_readers_number_format(app):
    with app.test_request_context("/?lang=de"):
        assert human_size(1536) == "1,5 KB"
        assert human_size(5 * 1024**2) == "5 MB"
        assert human_size(1).lower() == "1 byte"


def test_viewers_see_the_list_but_cannot_download_or_restore(client, account, backups):
    _member(account, "vi@acme.example", Role.VIEWER)
    login(client, "vi@acme.example")
    page = client.get("/a/acme/backups").get_data(as_text=True)
    assert "Newsletter" in page and "/download" not in page and 'id="viewer-note"' in page
    assert client.get(f"/a/acme/backups/{backups[0].id}/download").status_code == 403
    assert client.get(f"/a/acme/backups/{backups[0].id}/restore").status_code == 403
    assert client.post(f"/a/acme/backups/{backups[0].id}/restore").status_code == 403
    assert "/restore" not in page


@pytest.mark.parametrize("action", ["get-download", "post-restore", "get-restore"])
def test_another_tenants_backup_is_404(client, account, backups, action):
    other = accounts.create_account("Other", "other")
    _member(other, "o@other.example", Role.OWNER)
    login(client, "o@other.example")
    backup_id = backups[0].id
    if action == "get-download":
        response = client.get(f"/a/other/backups/{backup_id}/download")
    elif action == "get-restore":
        response = client.get(f"/a/other/backups/{backup_id}/restore")
    else:
        response = client.post(f"/a/other/backups/{backup_id}/restore")
    assert response.status_code == 404
    assert "Newsletter" not in client.get("/a/other/backups").get_data(as_text=True)


def _damage(backup):
    damage(get_storage(), backup.storage_key)


def test_a_damaged_backup_is_refused_with_a_clear_message(client, account, backups):
    _member(account, "ed@acme.example", Role.EDITOR)
    login(client, "ed@acme.example")
    backup = backups[2]
    _damage(backup)
    response = client.get(f"/a/acme/backups/{backup.id}/download", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert "The backup file is damaged" in page and "Nothing has been" in page
    page = client.get(f"/a/acme/backups/{backup.id}/restore", follow_redirects=True).get_data(
        as_text=True
    )
    assert "The backup file is damaged" in page and 'id="restore-plan"' not in page
    page = client.post(
        f"/a/acme/backups/{backup.id}/restore", data={"mode": "exact"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "The backup file is damaged" in page
    assert db.session.scalar(db.select(ImportJob)) is None  # nothing restored


def test_a_missing_backup_file_is_refused(client, account, backups):
    _member(account, "ed@acme.example", Role.EDITOR)
    login(client, "ed@acme.example")
    backup = backups[2]
    lose(get_storage(), backup.storage_key)
    page = client.get(f"/a/acme/backups/{backup.id}/restore", follow_redirects=True).get_data(
        as_text=True
    )
    assert "could not be found" in page
    assert db.session.scalar(db.select(ImportJob)) is None


def test_downloads_are_audited(client, account, backups):
    from portal.core.audit import AuditEvent

    _member(account, "ed@acme.example", Role.EDITOR)
    login(client, "ed@acme.example")
    response = client.get(f"/a/acme/backups/{backups[2].id}/download")
    assert response.status_code == 200
    assert (
        'filename="backup-newsletter-2025-06-03-2030.csv"'  # Berlin time
        in response.headers["Content-Disposition"]
    )
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "backup.downloaded"))
    assert event is not None and event.details["name"] == "Newsletter"
    settings = client.get("/a/acme/backups").get_data(as_text=True)
    assert "Newsletter" in settings


def test_nav_shows_backups_and_the_switch_warning(client, account, group):
    account = db.session.get(Account, account.id)
    account.automatic_backups = False
    db.session.commit()
    _member(account, "vi@acme.example", Role.VIEWER)
    login(client, "vi@acme.example")
    page = client.get("/a/acme/backups").get_data(as_text=True)
    assert 'href="/a/acme/backups"' in page
    assert 'id="backups-off"' in page and 'id="no-backups"' in page


def test_tag_names_refuse_the_import_separators(ctx):
    for name in ("A,B", "A;B", "A|B"):
        with pytest.raises(contacts.ServiceError) as refused:
            contacts.clean_tag_name(name)
        assert "comma" in str(refused.value)
    assert contacts.clean_tag_name("  Straßen  fest ") == "Straßen fest"


def test_expiry_counts_calendar_days_in_the_readers_timezone(account, group, time_machine):
    time_machine.move_to("2025-06-01T23:30:00+00:00", tick=False)
    build_contacts(account, group, 1)
    backup = snapshot(group, reason="manual")
    berlin = ZoneInfo("Europe/Berlin")  # already 2 June there
    assert days_left(backup, tz=ZoneInfo("UTC")) == 30
    assert days_left(backup, tz=berlin) == 30
    later = clock.now() + timedelta(days=29, hours=1)  # 1 July, 00:30 UTC / 02:30 Berlin
    assert days_left(backup, later, ZoneInfo("UTC")) == 0  # expires 1 July, 23:30
    assert days_left(backup, later, berlin) == 1  # expires 2 July, 01:30


def test_audit_events_of_backups_read_as_sentences(app, account, group, run_import):
    from portal.core.audit import AuditEvent
    from portal.support.describe import describe_event

    build_contacts(account, group, 2)
    job = run_import([["email"], ["neu@example.de"]])
    undo = request_undo(job, actor=None)
    db.session.commit()
    run_undo(undo)
    contacts.delete_group(group, actor=None, source="ui")
    db.session.commit()
    record_download(db.session.scalar(db.select(Backup)), actor=None)
    with app.test_request_context("/"):
        texts = {
            e.action: describe_event(e)
            for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))
        }
    assert texts["backup.created"].startswith("Backup of group “Newsletter” with 2 contacts")
    assert texts["backup.downloaded"] == "Backup of group “Newsletter” downloaded"
    assert texts["import.undone"].startswith("Import into group “Newsletter” undone")
