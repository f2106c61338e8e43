"""What staff do in an opened account — restore contacts "to be deleted", restore a
backup, undo an import — goes through the owning areas' services with the staff user as
actor, brings back groups, tags and the sign-up and sign-off data, and every step is an
audit event the account's owner sees on the settings page."""

from __future__ import annotations

import re

import pytest

from portal import clock
from portal.accounts.models import Account, User
from portal.backups.models import Backup, ImportUndo
from portal.backups.snapshot import snapshot
from portal.contacts import service as contacts
from portal.contacts.models import Contact, ContactStatus, Group
from portal.extensions import db
from portal.imports import service as imports
from portal.imports.models import ImportJob
from portal.lifecycle import service as lifecycle
from portal.lifecycle.models import LifecycleJob
from portal.support import console
from portal.support.describe import TEXTS_KEY
from tests.backups.conftest import group_state
from tests.imports.conftest import contact_state, write_csv
from tests.support.conftest import SIGNOFF, SIGNUP, STAFF_EMAIL, open_account, staff_events


def _account(account_id: int) -> Account:
    return db.session.get(Account, account_id)


@pytest.fixture
def people(app, acme, make_data):
    """Contacts with two groups (one signed off with a reason), tags and custom fields."""
    data = make_data(acme)
    news = data.group("Newsletter")
    shop = data.group("Kunden")
    data.field("city", "Stadt")
    ids = [
        data.contact(
            f"person{i}@beispiel.de",
            "Jürgen",
            f"Größ {i}",
            groups=(news,),
            unsubscribed=((shop, "bounced"),),
            signup_at=SIGNUP,
            signoff_at=SIGNOFF,
            tags=("Kunde", "Łódź"),
            fields={"city": "Köln"},
        )
        for i in range(3)
    ]
    keeper = data.contact("stays@beispiel.de", groups=(news,))
    return {"ids": ids, "keeper": keeper, "news": news, "shop": shop}


def _delete(app, acme, ids):
    with app.app_context():
        lifecycle.delete_contacts(_account(acme), ids, actor=None, source="ui")
        db.session.commit()


def _without_status(state: dict) -> dict:
    return {email: {k: v for k, v in s.items() if k != "status"} for email, s in state.items()}


def test_staff_restore_brings_contacts_back_with_groups_and_sign_up_data(
    app, acme, people, staff_client
):
    with app.app_context():
        before = contact_state(acme)
    _delete(app, acme, people["ids"])
    open_account(staff_client, "acme", "Ticket #1: deleted the wrong three")
    page = staff_client.get("/support/accounts/acme/deleted").get_data(as_text=True)
    assert "3 contacts are to be deleted." in page
    assert "person0@beispiel.de" in page and "stays@beispiel.de" not in page
    assert 'Kunden <span class="small">(signed off)</span>' in page
    response = staff_client.post(
        "/support/accounts/acme/deleted/restore",
        data={"ids": [str(people["ids"][0]), str(people["ids"][2])]},
        follow_redirects=True,
    )
    assert "2 contacts restored, with their groups, tags and sign-up and sign-off data." in (
        response.get_data(as_text=True)
    )
    with app.app_context():
        after = contact_state(acme)
    assert after["person1@beispiel.de"]["status"] == ContactStatus.DELETED.value
    for email in ("person0@beispiel.de", "person2@beispiel.de"):
        assert after[email]["status"] == ContactStatus.ACTIVE.value
        assert _without_status({email: after[email]}) == _without_status({email: before[email]})
        subs = after[email]["subs"]
        assert subs[people["news"]] == (True, SIGNUP, None, None)
        assert subs[people["shop"]] == (False, SIGNUP, SIGNOFF, "bounced")
        assert after[email]["tags"] == ["Kunde", "Łódź"]
    [restored] = [e for e in staff_events(app, acme) if e.action == "contacts.restored"]
    assert restored.actor_label == STAFF_EMAIL
    assert restored.details == {"count": 2, "source": "support"}


def test_restore_all_at_once(app, acme, people, staff_client):
    _delete(app, acme, people["ids"])
    open_account(staff_client, "acme")
    response = staff_client.post(
        "/support/accounts/acme/deleted/restore", data={"scope": "all"}, follow_redirects=True
    )
    assert "3 contacts restored" in response.get_data(as_text=True)
    with app.app_context():
        statuses = {c.status for c in db.session.scalars(db.select(Contact))}
    assert statuses == {ContactStatus.ACTIVE.value}


def test_restore_all_of_many_runs_as_a_job_with_the_staff_user_as_actor(
    app, acme, people, staff_client, monkeypatch
):
    """Above the inline limit a mass-action job restores exactly the contacts that were
    "to be deleted" at the click (queues run inline in the test app)."""
    monkeypatch.setattr(console, "INLINE_RESTORE_LIMIT", 2)
    _delete(app, acme, people["ids"])
    open_account(staff_client, "acme")
    response = staff_client.post(
        "/support/accounts/acme/deleted/restore", data={"scope": "all"}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert "3 contacts are being restored by a background job." in page
    with app.app_context():
        job = db.session.scalar(db.select(LifecycleJob))
        staff = db.session.scalar(db.select(User).where(User.email == STAFF_EMAIL))
        assert (job.status, job.changed, job.source) == ("finished", 3, "support")
        assert job.created_by_id == staff.id
        assert sorted(job.selection["ids"]) == sorted(people["ids"])
        assert {c.status for c in db.session.scalars(db.select(Contact))} == {"active"}
        state = contact_state(acme)
    assert state["person1@beispiel.de"]["subs"][people["shop"]] == (
        False,
        SIGNUP,
        SIGNOFF,
        "bounced",
    )
    page = staff_client.get("/support/accounts/acme/deleted").get_data(as_text=True)
    assert f'data-job="{job.id}"' in page and "3 restored" in page
    [event] = [e for e in staff_events(app, acme) if e.action == "contacts.restored"]
    assert event.details["count"] == 3 and event.details["mass"] is True


def test_nothing_selected_restores_nothing(app, acme, people, staff_client):
    _delete(app, acme, people["ids"])
    open_account(staff_client, "acme")
    response = staff_client.post(
        "/support/accounts/acme/deleted/restore", data={"ids": ["x"]}, follow_redirects=True
    )
    assert "Please select at least one contact." in response.get_data(as_text=True)
    assert not [e for e in staff_events(app, acme) if e.action == "contacts.restored"]


def test_the_deleted_list_pages_through_many_contacts(app, acme, make_data, staff_client):
    data = make_data(acme)
    ids = [data.contact(f"p{i:03d}@example.nl", deleted=True) for i in range(console.PAGE_SIZE + 5)]
    open_account(staff_client, "acme")
    first = staff_client.get("/support/accounts/acme/deleted").get_data(as_text=True)
    shown = [int(i) for i in re.findall(r'data-contact-id="(\d+)"', first)]
    assert shown == sorted(ids, reverse=True)[: console.PAGE_SIZE]
    nxt = re.search(r'href="([^"]+before=\d+)"', first).group(1).replace("&amp;", "&")
    second = staff_client.get(nxt).get_data(as_text=True)
    rest = [int(i) for i in re.findall(r'data-contact-id="(\d+)"', second)]
    assert rest == sorted(ids, reverse=True)[console.PAGE_SIZE :]


# --- backups and imports -----------------------------------------------------------------


@pytest.fixture
def deleted_group_backup(app, acme, people):
    """The customer deleted the group "Newsletter"; its backup was made before."""
    with app.app_context():
        group = db.session.get(Group, people["news"])
        before = group_state(group.id)
        contacts.delete_group(group, actor=None, source="ui")
        db.session.commit()
        backup = db.session.scalar(db.select(Backup))
        return {"backup_id": backup.id, "before": before}


def _confirmed(client, path: str, mode: str | None = None):
    """GET the console's confirmation page, then POST its form as the button would."""
    page = client.get(path).get_data(as_text=True)
    data = dict(re.findall(r'<input type="hidden" name="(expected_[^"]+)" value="(\d+)">', page))
    if mode:
        data["mode"] = mode
    return page, client.post(path, data=data, follow_redirects=True)


def test_staff_restore_a_backup_of_a_deleted_group(
    app, acme, people, deleted_group_backup, staff_client
):
    open_account(staff_client, "acme")
    page = staff_client.get("/support/accounts/acme/backups").get_data(as_text=True)
    backup_id = deleted_group_backup["backup_id"]
    assert f'data-backup-id="{backup_id}"' in page and "Newsletter" in page
    path = f"/support/accounts/acme/backups/{backup_id}/restore"
    assert f'href="{path}"' in page  # a link to the confirmation, no longer a button
    confirm, response = _confirmed(staff_client, path, "exact")
    # the customer's dry run, in the console's frame (issue 17, point 1: every restore)
    assert 'id="staff-banner"' in confirm and 'id="restore-plan"' in confirm
    assert "The group no longer exists: the restore creates it again under its name." in confirm
    assert 'data-count="added">' in confirm
    page = response.get_data(as_text=True)
    assert "The backup has been restored." in page
    assert 'id="backups"' in page  # back on the console's backups tab
    with app.app_context():
        group = db.session.scalar(db.select(Group).where(Group.name == "Newsletter"))
        assert group_state(group.id) == deleted_group_backup["before"]
    actions = [e.action for e in staff_events(app, acme)]
    assert "support.backup_restore_requested" in actions and "backup.restored" in actions
    events = staff_events(app, acme)
    restored = next(e for e in events if e.action == "backup.restored")
    assert restored.actor_label == STAFF_EMAIL


def test_the_staff_restore_page_changes_nothing(
    app, acme, people, deleted_group_backup, staff_client
):
    open_account(staff_client, "acme")
    path = f"/support/accounts/acme/backups/{deleted_group_backup['backup_id']}/restore"
    assert staff_client.get(path).status_code == 200
    with app.app_context():
        assert db.session.scalar(db.select(Group).where(Group.name == "Newsletter")) is None
    refused = staff_client.post(path, data={}, follow_redirects=True)  # no mode chosen
    assert "Please choose how the backup should be restored." in refused.get_data(as_text=True)


def test_an_expired_backup_is_not_restored(app, acme, deleted_group_backup, staff_client, now):
    open_account(staff_client, "acme")
    backup_id = deleted_group_backup["backup_id"]
    with app.app_context():  # it was made 30 days ago (a session does not last that long)
        db.session.execute(
            db.update(Backup).where(Backup.id == backup_id).values(expires_at=clock.now())
        )
        db.session.commit()
    for method in (staff_client.get, staff_client.post):
        response = method(
            f"/support/accounts/acme/backups/{backup_id}/restore", follow_redirects=True
        )
        assert "This backup has expired" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(ImportJob)) is None
        assert db.session.scalar(db.select(Group).where(Group.name == "Newsletter")) is None


@pytest.fixture
def portal_import(app, acme, people, tmp_path):
    """An import from the portal into "Newsletter" that renamed a contact (so a backup
    was made before it)."""
    with app.app_context():
        path = write_csv(
            tmp_path / "list.csv",
            [
                ["email", "first_name"],
                ["person0@beispiel.de", "Falsch"],
                ["neu@beispiel.de", "Neu"],
            ],
        )
        group = db.session.get(Group, people["news"])
        job = imports.create_import(
            _account(acme),
            actor=None,
            group=group,
            source_path=path,
            filename="list.csv",
            source="ui",
        )
        imports.configure(
            job, mapping=job.mapping, mode="update_add", import_consent=True, restore_deleted=False
        )
        db.session.commit()
        imports.run(job)
        assert job.backup_id is not None
        return job.id


def test_staff_undo_an_import(app, acme, people, portal_import, staff_client):
    open_account(staff_client, "acme", "Ticket #5: wrong file imported")
    page = staff_client.get("/support/accounts/acme/imports").get_data(as_text=True)
    assert f'id="undo-{portal_import}"' in page
    confirm, response = _confirmed(
        staff_client, f"/support/accounts/acme/imports/{portal_import}/undo"
    )
    assert 'id="staff-banner"' in confirm and 'id="undo-plan"' in confirm
    assert re.search(r'data-count="set_back">1<', confirm)  # Jürgen, renamed by the import
    assert re.search(r'data-count="deleted">1<', confirm)  # neu@, created by it
    assert "The import has been undone." in response.get_data(as_text=True)
    with app.app_context():
        state = contact_state(acme)
        assert state["person0@beispiel.de"]["first"] == "Jürgen"
        assert "neu@beispiel.de" not in state  # created by the import, in no other group
        undo = db.session.scalar(db.select(ImportUndo))
        assert undo.status == "finished" and undo.created_by_id is not None
    actions = [e.action for e in staff_events(app, acme)]
    assert "support.import_undo_requested" in actions and "import.undone" in actions
    # a second undo is refused with the reason
    page = staff_client.get("/support/accounts/acme/imports").get_data(as_text=True)
    assert f'id="undo-{portal_import}"' not in page
    assert "This import has already been undone." in page
    again = staff_client.post(
        f"/support/accounts/acme/imports/{portal_import}/undo", follow_redirects=True
    )
    assert "This import has already been undone." in again.get_data(as_text=True)
    assert actions == [e.action for e in staff_events(app, acme)][: len(actions)]


# --- every staff step is visible to the owner --------------------------------------------


def _view(page):
    def act(client, ctx):
        assert client.get(f"/support/accounts/acme/{page}").status_code == 200

    return act


def _restore_selected(client, ctx):
    client.post("/support/accounts/acme/deleted/restore", data={"ids": [str(ctx["ids"][0])]})


def _restore_all(client, ctx):
    client.post("/support/accounts/acme/deleted/restore", data={"scope": "all"})


def _restore_backup(client, ctx):
    _confirmed(client, f"/support/accounts/acme/backups/{ctx['backup_id']}/restore", "exact")


def _undo(client, ctx):
    _confirmed(client, f"/support/accounts/acme/imports/{ctx['import_id']}/undo")


def _lookup(client, ctx):
    client.post("/support/lookup", data={"email": "person1@beispiel.de", "reason": "T-3"})


def _close(client, ctx):
    client.post("/support/accounts/acme/close")


STAFF_STEPS = {
    "overview": (_view(""), {"support.viewed"}),
    "deleted list": (_view("deleted"), {"support.viewed"}),
    "backups list": (_view("backups"), {"support.viewed"}),
    "import history": (_view("imports"), {"support.viewed"}),
    "audit log": (_view("audit"), {"support.viewed"}),
    "lookup": (_lookup, {"support.contact_looked_up"}),
    "restore selected": (_restore_selected, {"contacts.restored"}),
    "restore all": (_restore_all, {"contacts.restored"}),
    "restore backup": (
        _restore_backup,
        {"support.viewed", "support.backup_restore_requested", "backup.restored"},
    ),
    "undo import": (_undo, {"support.viewed", "support.import_undo_requested", "import.undone"}),
    "close": (_close, {"support.access_closed"}),
}


@pytest.mark.parametrize("step", STAFF_STEPS)
def test_every_staff_step_is_an_audit_event_the_owner_sees(
    app, acme, people, portal_import, staff_client, owner_client, step
):
    with app.app_context():
        backup = snapshot(db.session.get(Group, people["shop"]), reason="manual")
        db.session.commit()
        backup_id = backup.id
    _delete(app, acme, people["ids"])
    open_account(staff_client, "acme", "Ticket #42")
    seen = len(staff_events(app, acme))
    act, expected = STAFF_STEPS[step]
    act(staff_client, {"ids": people["ids"], "backup_id": backup_id, "import_id": portal_import})
    new = staff_events(app, acme)[seen:]
    assert expected <= {e.action for e in new}, [e.action for e in new]
    settings = owner_client.get("/a/acme/settings").get_data(as_text=True)
    section = settings.split('id="support-activity"')[1]
    items = re.findall(r'<li class="mb-2" data-action="([^"]+)">(.*?)</li>', section, re.S)
    for event in new:
        matching = [text for action, text in items if action == event.action]
        assert matching, f"{event.action} is not on the owner's settings page"
        assert STAFF_EMAIL in matching[0]
        if event.action.startswith("support."):
            assert event.action in app.extensions[TEXTS_KEY]  # a sentence, not a code
            assert "Support " in matching[0]
    # the access itself, with its reason, is there too
    assert any(
        action == "support.access_opened" and "Reason: Ticket #42" in text for action, text in items
    )
