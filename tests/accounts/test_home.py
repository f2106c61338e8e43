"""The account's home page (issue 17, point 14): contacts by status and by group,
imports in progress and the last ones with their results, the latest backups with their
age and their undo / restore entry points, the contacts the next purge removes, open
support access - each linking to its page, with the numbers of the data, and nothing of
another account."""

from __future__ import annotations

import html as html_lib
import re
from datetime import UTC, datetime, timedelta

import pytest

from portal.accounts.models import Account
from portal.backups.snapshot import snapshot
from portal.contacts import counts as contact_counts
from portal.contacts import queries
from portal.contacts.models import Contact, Group
from portal.core.audit import StaffAccess
from portal.extensions import db
from portal.imports.models import ImportJob
from portal.lifecycle import service as lifecycle
from tests.helpers.auth import login

HOME = "/a/acme/"
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)  # 10:00 in Berlin


def _text(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert match, element_id
    return html_lib.unescape(match.group(1)).strip()


def _fill(app, make_data, account_id: int, prefix: str) -> dict:
    """Contacts in every state, two groups, imports, a backup, a support access."""
    d = make_data(account_id)
    news = d.group(f"{prefix} News")
    shop = d.group(f"{prefix} Shop")
    d.contact(f"a1@{prefix}.example", groups=(news, shop))
    d.contact(f"a2@{prefix}.example", groups=(news,))
    d.contact(f"a3@{prefix}.example")  # in no group: active
    d.contact(f"u1@{prefix}.example", unsubscribed=((news, "unsubscribed"),))
    # active in one group, signed off in the other: active
    d.contact(f"a4@{prefix}.example", groups=(shop,), unsubscribed=((news, "bounced"),))
    gone = d.contact(f"d1@{prefix}.example", groups=(news,), deleted=True)
    late = d.contact(f"d2@{prefix}.example", deleted=True)
    with app.app_context():
        account = db.session.get(Account, account_id)
        # deleted after tonight's window began: not in tonight's purge (there is none
        # yet at 10:00; the next window starts at 02:00 tomorrow)
        db.session.get(Contact, gone).deleted_at = NOW - timedelta(hours=1)
        db.session.get(Contact, late).deleted_at = NOW - timedelta(days=2)
        running = ImportJob(  # into another group: one into News would hold its undo back
            account_id=account_id,
            group_id=shop,
            group_name=f"{prefix} Shop",
            filename=f"{prefix}-running.csv",
            status="running",
            staged_line=100,
            staging_done=True,
            merged_line=50,
        )
        done = ImportJob(
            account_id=account_id,
            group_id=news,
            group_name=f"{prefix} News",
            filename=f"{prefix}-done.csv",
            status="finished",
            created=12,
            updated=3,
            skipped=2,
            invalid=1,
            source="ui",
        )
        db.session.add_all([running, done])
        db.session.flush()
        backup = snapshot(db.session.get(Group, news), reason="import", import_job=done)
        done.backup_id = backup.id
        access = StaffAccess(
            user_id=None,
            staff_label="support@example.com",
            account_id=account_id,
            reason=f"{prefix}-TICKET-4711",
            started_at=NOW - timedelta(minutes=5),
            expires_at=NOW + timedelta(minutes=55),
        )
        closed = StaffAccess(
            user_id=None,
            staff_label="support@example.com",
            account_id=account_id,
            reason=f"{prefix}-CLOSED",
            started_at=NOW - timedelta(minutes=30),
            expires_at=NOW + timedelta(minutes=30),
            ended_at=NOW - timedelta(minutes=10),
        )
        db.session.add_all([access, closed])
        db.session.commit()
        assert account is not None
        return {
            "news": news,
            "shop": shop,
            "running": running.id,
            "done": done.id,
            "backup": backup.id,
            "access": access.id,
        }


@pytest.fixture
def home(app, client, owner, make_account, make_data, time_machine):
    time_machine.move_to(NOW, tick=False)
    login(client, "owner@acme.example")  # a session of the frozen clock's time
    other = make_account("other")
    theirs = _fill(app, make_data, other, "zeta")
    # more of everything in the other account, so that a leak changes the numbers
    z = make_data(other)
    for i in range(7):
        z.contact(f"extra{i}@zeta.example", deleted=True)
    mine = _fill(app, make_data, owner, "acme")
    return mine, theirs


def test_home_numbers_match_the_data(client, app, owner, home):
    mine, _ = home
    html = client.get(HOME).get_data(as_text=True)
    assert _text(html, "home-status-active") == "4"
    assert _text(html, "home-status-unsubscribed") == "1"
    assert _text(html, "home-status-deleted") == "2"
    assert _text(html, "home-status-total") == "7"
    with app.app_context():
        account = db.session.get(Account, owner)
        counts = contact_counts.status_counts(account)
        # the same partition as the list's status filter
        for key, value in (
            ("active", counts.active),
            ("unsubscribed", counts.unsubscribed),
            ("deleted", counts.to_be_deleted),
        ):
            f = queries.ContactFilter(status=key)
            assert queries.count_contacts(account, f) == (value, False)
    news = re.search(rf'data-group-id="{mine["news"]}">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'class="text-end group-\w+">(\d+)<', news) == ["2", "2", "1"]
    shop = re.search(rf'data-group-id="{mine["shop"]}">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'class="text-end group-\w+">(\d+)<', shop) == ["2", "0", "0"]
    # each figure links to its page
    assert 'href="/a/acme/contacts?status=unsubscribed"' in html
    assert 'href="/a/acme/contacts?status=deleted"' in html
    assert f'href="/a/acme/groups/{mine["news"]}"' in html


def test_home_shows_imports_backups_purge_and_support(client, home):
    mine, _ = home
    html = html_lib.unescape(client.get(HOME).get_data(as_text=True))
    running = re.search(rf'<li data-import-id="{mine["running"]}">(.*?)</li>', html, re.S)
    # the progress page's own figure (imports.queries.percent: read 100 %, merged 50 %)
    assert "acme-running.csv" in running.group(1) and "Importing (80%)" in running.group(1)
    row = re.search(rf'<tr data-import-id="{mine["done"]}">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'class="text-end import-\w+">(\d+)<', row) == ["12", "3", "2", "1"]
    # straight to the confirmation pages, with their dry run (issue 17, points 1 and 2)
    assert f'href="/a/acme/backups/undo/{mine["done"]}" id="home-undo-{mine["done"]}"' in row
    backup = re.search(rf'<tr data-backup-id="{mine["backup"]}">(.*?)</tr>', html, re.S).group(1)
    assert "0 seconds ago" in backup or "now" in backup
    assert f'href="/a/acme/backups/undo/{mine["done"]}"' in backup  # undo the import
    assert f'href="/a/acme/backups/{mine["backup"]}/restore"' in backup
    # the purge: only the contact deleted before tomorrow's 02:00 window... both are
    assert _text(html, "home-purge-count").startswith("2 contacts will be removed")
    assert "06/12/2026, 02:00 – 04:00 Europe/Berlin" in html
    assert "acme-TICKET-4711" in html and "acme-CLOSED" not in html
    assert 'href="/a/acme/settings/support"' in html


def test_home_shows_nothing_of_another_account(client, home):
    html = html_lib.unescape(client.get(HOME).get_data(as_text=True))
    assert "zeta" not in html.lower()
    _, theirs = home
    for key in ("running", "done"):
        assert f'data-import-id="{theirs[key]}"' not in html
    assert f'data-backup-id="{theirs["backup"]}"' not in html
    assert f'data-group-id="{theirs["news"]}"' not in html


def test_a_later_backup_ages_and_the_purge_moves_to_the_next_night(
    client, app, owner, home, time_machine
):
    time_machine.move_to(NOW + timedelta(hours=3), tick=False)
    html = html_lib.unescape(client.get(HOME).get_data(as_text=True))
    assert "3 hours ago" in html
    # 02:30 Berlin: the window runs; contacts deleted before 02:00 are in it
    time_machine.move_to(datetime(2026, 12, 6, 1, 30, tzinfo=UTC), tick=False)
    with app.app_context():
        outlook = lifecycle.next_purge(db.session.get(Account, owner))
    assert outlook.start == datetime(2026, 12, 6, 1, 0, tzinfo=UTC) and outlook.count == 2


def test_an_empty_account_says_so(client, owner):
    html = client.get(HOME).get_data(as_text=True)
    assert _text(html, "home-status-total") == "0"
    for section in ("purge", "support", "imports", "backups"):
        element = f"home-{section}-none"
        assert f'id="{element}"' in html


def test_a_viewer_sees_the_figures_without_undo_and_restore(client, owner, home, make_user):
    make_user("viewer@acme.example", owner, "viewer")
    client.post("/logout")
    login(client, "viewer@acme.example")
    html = client.get(HOME).get_data(as_text=True)
    assert _text(html, "home-status-total") == "7"
    assert "home-undo-" not in html and "home-backup-restore-" not in html
