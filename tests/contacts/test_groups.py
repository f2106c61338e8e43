"""Groups: counts, create, rename, delete (with its hook), settings and who may do what."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from portal.accounts.models import Account, Role
from portal.contacts import service
from portal.contacts.models import Activity, Contact, Group, Subscription
from portal.core import signals
from portal.core.audit import AuditEvent
from portal.extensions import db
from tests.helpers.auth import login


def only_receiver(monkeypatch, signal, receiver) -> None:
    """For this test `receiver` alone hears `signal` (not the backups area's snapshot,
    which create_app connected); the receivers come back after the test."""
    monkeypatch.setattr(signal, "receivers", {})
    monkeypatch.setattr(signal, "_by_receiver", defaultdict(set))
    monkeypatch.setattr(signal, "_by_sender", defaultdict(set))
    signal.connect(receiver, weak=False)


def _audit(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        events = list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)))
        for e in events:
            db.session.expunge(e)
        return events


@pytest.fixture
def groups(data):
    news = data.group("Newsletter")
    webinar = data.group("Webinar")
    data.contact("a@example.com", groups=(news,))
    data.contact("b@example.com", groups=(news, webinar))
    data.contact("c@example.com", unsubscribed=((news, "unsubscribed"),))
    data.contact("d@example.com", groups=(news,), deleted=True)
    data.contact("e@example.com", unsubscribed=((news, "bounced"),), deleted=True)
    return {"news": news, "webinar": webinar}


def _row(html: str, group_id: int) -> str:
    match = re.search(rf'<tr data-group-id="{group_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert match, html
    return match.group(1)


def _count(row: str, cls: str) -> str:
    return re.search(rf'class="text-end {cls}">(?:<span[^>]*>)?([^<]+)', row).group(1).strip()


def test_group_list_shows_active_inactive_and_pending_deletion_counts(client, groups):
    html = client.get("/a/acme/groups").get_data(as_text=True)
    news = _row(html, groups["news"])
    assert (_count(news, "count-active"), _count(news, "count-inactive")) == ("2", "1")
    assert _count(news, "count-deleted") == "2"
    webinar = _row(html, groups["webinar"])
    assert (_count(webinar, "count-active"), _count(webinar, "count-inactive")) == ("1", "0")
    assert html.index(">Newsletter<") < html.index(">Webinar<")


def test_group_page_lists_its_contacts_with_counts(client, groups):
    html = client.get(f"/a/acme/groups/{groups['news']}").get_data(as_text=True)
    assert "2 active · 1 inactive" in html and "2 to be deleted" in html
    rows = re.findall(r'<a href="/a/acme/contacts/\d+">([^<]+)</a>', html)
    assert rows == [
        "e@example.com",
        "d@example.com",
        "c@example.com",
        "b@example.com",
        "a@example.com",
    ]
    html = client.get(
        f"/a/acme/groups/{groups['news']}", query_string={"status": "unsubscribed"}
    ).get_data(as_text=True)
    assert re.findall(r'<a href="/a/acme/contacts/\d+">([^<]+)</a>', html) == ["c@example.com"]
    # the filter the bulk actions re-run is this group's
    assert f'name="filter" value="group={groups["news"]}&amp;status=unsubscribed"' in html


def test_group_page_pages_stay_on_the_group(client, data):
    news = data.group("Newsletter")
    for i in range(55):
        data.contact(f"p{i:02d}@example.com", groups=(news,))
    html = client.get(f"/a/acme/groups/{news}").get_data(as_text=True)
    next_url = re.search(r'href="([^"]+)" id="page-next"', html).group(1)
    assert next_url.startswith(f"/a/acme/groups/{news}?after=")
    html = client.get(next_url.replace("&amp;", "&")).get_data(as_text=True)
    assert len(re.findall(r'data-contact-id="', html)) == 5


def test_create_a_group(app, client, owner):
    response = client.post("/a/acme/groups/new", data={"name": "  Kunden   2025 "})
    assert response.status_code == 302
    with app.app_context():
        group = db.session.scalar(db.select(Group))
        assert group.name == "Kunden 2025" and group.automatic_backups is True
    assert response.headers["Location"].endswith(f"/a/acme/groups/{group.id}")
    [event] = _audit(app, "group.created")
    assert event.details["name"] == "Kunden 2025" and event.object_id == group.id


def test_group_names_are_unique_per_account(client, data, make_account, make_data):
    data.group("Newsletter")
    response = client.post("/a/acme/groups/new", data={"name": "newsletter"})
    assert response.status_code == 200
    assert "A group with this name already exists." in response.get_data(as_text=True)
    response = client.post("/a/acme/groups/new", data={"name": ""})
    assert "Please enter a name for the group." in response.get_data(as_text=True)
    # another account may use the same name
    make_data(make_account("other")).group("Newsletter")


def test_rename_a_group(app, client, groups):
    url = f"/a/acme/groups/{groups['news']}/rename"
    response = client.post(url, data={"name": "Newsletter DE"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Group, groups["news"]).name == "Newsletter DE"
    [event] = _audit(app, "group.renamed")
    assert event.details["old"] == "Newsletter" and event.details["new"] == "Newsletter DE"
    response = client.post(url, data={"name": "Webinar"})
    assert "A group with this name already exists." in response.get_data(as_text=True)


def test_delete_a_group_keeps_its_contacts_and_calls_the_hook(app, client, groups, monkeypatch):
    calls = []

    def snapshot(group, actor, source):
        with db.session.no_autoflush:
            count = db.session.scalar(
                db.select(db.func.count()).where(Subscription.group_id == group.id)
            )
        calls.append((group.name, actor.email, source, count))

    only_receiver(monkeypatch, signals.before_group_delete, snapshot)
    news = groups["news"]
    with app.app_context():
        contact = db.session.scalar(db.select(Contact).where(Contact.email == "b@example.com"))
        service.record_activity(contact, "open", group=db.session.get(Group, news))
        db.session.commit()
    response = client.post(f"/a/acme/groups/{news}/delete", data={"confirm": "y"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/a/acme/groups")
    assert calls == [("Newsletter", "owner@acme.example", "ui", 5)]
    with app.app_context():
        assert db.session.get(Group, news) is None
        assert db.session.scalar(db.select(db.func.count(Contact.id))) == 5
        assert (
            db.session.scalar(db.select(db.func.count()).where(Subscription.group_id == news)) == 0
        )
        assert db.session.scalar(db.select(db.func.count(Subscription.id))) == 1  # webinar
        assert db.session.scalar(db.select(Activity.group_id)) is None
    [event] = _audit(app, "group.deleted")
    assert event.details["name"] == "Newsletter" and event.details["subscriptions"] == 5
    assert "Its contacts were kept." in client.get("/a/acme/groups").get_data(as_text=True)


def test_delete_needs_confirmation(app, client, groups):
    response = client.post(f"/a/acme/groups/{groups['news']}/delete", data={})
    assert response.status_code == 200
    assert "Please confirm that the group shall be deleted." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Group, groups["news"]) is not None


def test_a_failing_hook_stops_the_deletion(app, owner, groups, monkeypatch):
    def refuse(group, actor, source):
        raise service.ServiceError("The backup could not be saved.")

    only_receiver(monkeypatch, signals.before_group_delete, refuse)
    with app.app_context():
        group = db.session.get(Group, groups["webinar"])
        with pytest.raises(service.ServiceError):
            service.delete_group(group, actor=None, source="api")
        db.session.rollback()
        assert db.session.get(Group, groups["webinar"]) is not None


def test_the_hook_learns_the_source(app, owner, groups, monkeypatch):
    calls = []
    only_receiver(
        monkeypatch,
        signals.before_group_delete,
        lambda g, actor, source: calls.append((actor, source)),
    )
    with app.app_context():
        service.delete_group(db.session.get(Group, groups["webinar"]), actor=None, source="api")
        db.session.commit()
    assert calls == [(None, "api")]


# --- settings and roles -------------------------------------------------------------------


@pytest.fixture
def as_role(client, owner, make_user):
    def sign_in(role: Role):
        if role is not Role.OWNER:
            make_user(f"{role.value}@acme.example", owner, role)
            client.post("/logout")
            login(client, f"{role.value}@acme.example")

    return sign_in


@pytest.mark.parametrize(
    "role, allowed",
    [(Role.VIEWER, False), (Role.EDITOR, False), (Role.ADMIN, True), (Role.OWNER, True)],
)
def test_group_settings_permissions_per_role(app, client, data, as_role, role, allowed):
    group = data.group("Newsletter")
    as_role(role)
    url = f"/a/acme/groups/{group}/settings"
    page = client.get(url).get_data(as_text=True)
    assert "Automatic backups" in page
    assert ('id="read-only-note"' in page) is not allowed
    response = client.post(url, data={})  # switch off
    assert response.status_code == (302 if allowed else 403)
    with app.app_context():
        assert db.session.get(Group, group).automatic_backups is (not allowed)
    events = _audit(app, "group.settings_changed")
    if allowed:
        [event] = events
        assert event.details["changes"] == {"automatic_backups": {"old": True, "new": False}}
        page = client.get(url).get_data(as_text=True)
        assert "Automatic backups of group “Newsletter”: on → off" in page
        client.post(url, data={"automatic_backups": "y"})
        with app.app_context():
            assert db.session.get(Group, group).automatic_backups is True
    else:
        assert events == []


@pytest.mark.parametrize(
    "role, allowed",
    [(Role.VIEWER, False), (Role.EDITOR, True), (Role.ADMIN, True), (Role.OWNER, True)],
)
def test_editors_and_up_create_rename_and_delete_groups(app, client, data, as_role, role, allowed):
    group = data.group("Newsletter")
    as_role(role)
    expected = 302 if allowed else 403
    assert client.post("/a/acme/groups/new", data={"name": "Neu"}).status_code == expected
    assert (
        client.post(f"/a/acme/groups/{group}/rename", data={"name": "Umbenannt"}).status_code
        == expected
    )
    assert (
        client.post(f"/a/acme/groups/{group}/delete", data={"confirm": "y"}).status_code == expected
    )
    list_page = client.get("/a/acme/groups").get_data(as_text=True)
    assert ('id="create-group-form"' in list_page) is allowed


def test_settings_page_tells_when_the_account_switch_is_off(app, client, data, owner):
    group = data.group("Newsletter")
    url = f"/a/acme/groups/{group}/settings"
    assert "switched on for the account" in client.get(url).get_data(as_text=True)
    with app.app_context():
        db.session.get(Account, owner).automatic_backups = False
        db.session.commit()
    html = client.get(url).get_data(as_text=True)
    assert "switched off for the whole account" in html


def test_group_list_says_backups_are_off_when_the_account_switch_is_off(app, client, data, owner):
    data.group("Newsletter")
    assert '<td class="group-backups">on</td>' in client.get("/a/acme/groups").get_data(
        as_text=True
    )
    with app.app_context():
        db.session.get(Account, owner).automatic_backups = False
        db.session.commit()
    html = client.get("/a/acme/groups?lang=de").get_data(as_text=True)
    assert '<td class="group-backups">aus – für das Konto ausgeschaltet</td>' in html


def test_services_refuse_unknown_sources(app, owner):
    with app.app_context():
        account = db.session.get(Account, owner)
        with pytest.raises(ValueError):
            service.create_group(account, "X", actor=None, source="web")
