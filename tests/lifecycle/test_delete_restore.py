"""Soft delete and restore: from the card, from a selection in the list, and through the
service every other path uses. A deleted contact is red, "to be deleted", has its own
filter, leaves the active counts and can be restored with everything it had."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import time_machine

from portal.accounts.models import Role
from portal.contacts import counts as contact_counts
from portal.contacts import service as contacts
from portal.contacts.models import Contact, Subscription
from portal.core.audit import AuditEvent
from portal.extensions import db
from portal.lifecycle import service
from tests.helpers.auth import login


def _post(client, url, **data):
    return client.post(url, data=data, follow_redirects=True)


def test_delete_from_the_card_marks_red_and_says_when_it_is_purged(
    client, make_account, make_user, make_data
):
    d = make_data(make_account("acme", timezone="Europe/Berlin"))
    group = d.group("Newsletter")
    cid = d.contact("anna@example.com", "Anna", "Nowak", groups=(group,), tags=("VIP",))
    make_user("owner@acme.example", d.account_id, Role.OWNER)
    with time_machine.travel(datetime(2030, 12, 2, 15, 30, tzinfo=UTC), tick=False):
        login(client, "owner@acme.example")
        page = _post(client, f"/a/acme/contacts/{cid}/delete").get_data(as_text=True)
    assert "to be deleted" in page
    assert 'id="contact-header"' in page and "contact-deleted" in page
    notice = re.search(r'id="purge-notice">(.*?)</div>', page, re.S).group(1)
    # deleted at 16:30 Berlin: removed in the night to 3 December, 02:00-04:00 Berlin
    assert "in the account's night: 03/12/2030, 02:00 – 04:00 Europe/Berlin." in notice.replace(
        "&#39;", "'"
    ), notice
    assert "Europe/Berlin" in notice
    contact = d.get(Contact, cid)
    assert contact.status == "deleted"
    assert contact.deleted_at == datetime(2030, 12, 2, 15, 30, tzinfo=UTC)
    # the card now offers "Restore" instead of "Delete"
    assert 'id="action-restore_contact"' in page and 'id="action-delete_contact"' not in page


def test_restore_from_the_card_brings_back_groups_tags_and_sign_up_data(client, data, app):
    group = data.group("Newsletter")
    signup = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    cid = data.contact("anna@example.com", groups=(group,), tags=("VIP",), signup_at=signup)
    _post(client, f"/a/acme/contacts/{cid}/delete")
    page = _post(client, f"/a/acme/contacts/{cid}/restore").get_data(as_text=True)
    assert "has been restored" in page
    with app.app_context():
        contact = db.session.get(Contact, cid)
        assert contact.status == "active" and contact.deleted_at is None
        assert [t.name for t in contact.tags] == ["VIP"]
        sub = db.session.scalar(db.select(Subscription).where(Subscription.contact_id == cid))
        assert sub.active and sub.activated_at == signup
        actions = list(db.session.scalars(db.select(AuditEvent.action).order_by(AuditEvent.id)))
        assert actions[-2:] == ["contacts.deleted", "contacts.restored"]


def test_deleted_contacts_have_their_own_filter_and_leave_the_active_counts(client, data, app):
    group = data.group("Newsletter")
    keep = data.contact("keep@example.com", groups=(group,))
    gone = data.contact("gone@example.com", groups=(group,))
    _post(client, f"/a/acme/contacts/{gone}/delete")
    deleted = client.get("/a/acme/contacts?status=deleted").get_data(as_text=True)
    assert "gone@example.com" in deleted and "keep@example.com" not in deleted
    active = client.get("/a/acme/contacts?status=active").get_data(as_text=True)
    assert "keep@example.com" in active and "gone@example.com" not in active
    everything = client.get("/a/acme/contacts").get_data(as_text=True)
    row = re.search(
        rf'<tr class="contact-row contact-deleted" data-contact-id="{gone}"', everything
    )
    assert row, "the deleted contact is shown red in the list"
    with app.app_context():
        counts = contact_counts.group_counts(_account(app), [group])[group]
        assert (counts.active, counts.to_be_deleted) == (1, 1)
    assert keep


def _account(app):
    from portal.accounts.models import Account

    return db.session.scalar(db.select(Account).where(Account.slug == "acme"))


def test_selection_in_the_list_is_deleted_and_restored_at_once(client, data, app):
    ids = [data.contact(f"p{i}@example.com") for i in range(5)]
    page = client.post(
        "/a/acme/contacts/bulk/delete",
        data={"ids": [str(ids[0]), str(ids[1])]},
        headers={"Referer": "http://localhost/a/acme/contacts"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "2 contacts are marked “to be deleted”" in page
    with app.app_context():
        statuses = {c.id: c.status for c in db.session.scalars(db.select(Contact))}
    assert [statuses[i] for i in ids] == ["deleted", "deleted", "active", "active", "active"]
    page = client.post(
        "/a/acme/contacts/bulk/restore",
        data={"scope": "page", "page_ids": ",".join(map(str, ids))},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "2 contacts restored." in page
    with app.app_context():
        assert {c.status for c in db.session.scalars(db.select(Contact))} == {"active"}


def test_select_all_matching_goes_through_a_confirmation(client, data, app):
    for i in range(3):
        data.contact(f"match{i}@example.com")
    data.contact("other@example.org")
    response = client.post(
        "/a/acme/contacts/bulk/delete",
        data={"scope": "matching", "filter": "q=match"},
    )
    assert response.status_code == 302 and "/contacts/manage/" in response.location
    page = client.get(response.location).get_data(as_text=True)
    assert "3 contacts will be marked “to be deleted”" in page
    assert "Search: match" in page
    with app.app_context():  # nothing has changed before the confirmation
        assert {c.status for c in db.session.scalars(db.select(Contact))} == {"active"}


def test_viewers_cannot_delete_restore_or_forget(client, app, make_account, make_user, make_data):
    account_id = make_account("acme")
    make_user("viewer@acme.example", account_id, Role.VIEWER)
    cid = make_data(account_id).contact("anna@example.com")
    login(client, "viewer@acme.example")
    card = client.get(f"/a/acme/contacts/{cid}").get_data(as_text=True)
    assert "action-delete_contact" not in card and "action-forget_contact" not in card
    for url in (
        f"/a/acme/contacts/{cid}/delete",
        f"/a/acme/contacts/{cid}/restore",
        f"/a/acme/contacts/{cid}/forget",
        "/a/acme/contacts/bulk/delete",
        "/a/acme/contacts/manage/list",
    ):
        assert client.post(url, data={"ids": [str(cid)], "confirm": "y"}).status_code == 403
    assert client.get("/a/acme/contacts/manage").status_code == 403
    with app.app_context():
        assert db.session.get(Contact, cid).status == "active"


def test_editors_may_delete_and_forget(client, app, make_account, make_user, make_data):
    account_id = make_account("acme")
    make_user("editor@acme.example", account_id, Role.EDITOR)
    d = make_data(account_id)
    first, second = d.contact("a@example.com"), d.contact("b@example.com")
    login(client, "editor@acme.example")
    assert client.post(f"/a/acme/contacts/{first}/delete").status_code == 302
    assert (
        client.post(f"/a/acme/contacts/{second}/forget", data={"confirm": "y"}).status_code == 302
    )
    with app.app_context():
        assert db.session.get(Contact, first).status == "deleted"
        assert db.session.get(Contact, second) is None


def test_another_tenants_contact_is_a_404(client, data, make_account, make_data):
    other = make_account("other")
    foreign = make_data(other).contact("secret@other.example")
    for url in (
        f"/a/acme/contacts/{foreign}/delete",
        f"/a/acme/contacts/{foreign}/restore",
        f"/a/acme/contacts/{foreign}/forget",
    ):
        assert client.post(url, data={"confirm": "y"}).status_code == 404
    assert client.get(f"/a/acme/contacts/{foreign}/forget").status_code == 404
    # a foreign id slipped into a selection is ignored, not deleted
    client.post("/a/acme/contacts/bulk/delete", data={"ids": [str(foreign)]})
    assert make_data(other).get(Contact, foreign).status == "active"


def test_service_counts_only_real_changes_and_ignores_other_accounts(account, make_account):
    other = db.session.get(type(account), make_account("other"))
    mine = contacts.create_contact(account, "me@example.com", source="ui")
    theirs = contacts.create_contact(other, "them@example.com", source="ui")
    db.session.commit()
    assert service.delete_contacts(account, [mine.id, theirs.id], actor=None, source="api") == 1
    assert service.delete_contacts(account, [mine.id], actor=None, source="api") == 0
    assert theirs.status == "active"
    assert service.undelete_contacts(account, [mine.id, theirs.id], actor=None, source="api") == 1
    assert mine.status == "active"
