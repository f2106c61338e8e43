"""Opening an account: a stated reason, a time limit, an audit event the owners see; an
expired or closed access is refused; an access to one account gives nothing of another."""

from __future__ import annotations

from datetime import timedelta

from portal.backups.snapshot import snapshot
from portal.contacts.models import Contact, ContactStatus, Group
from portal.core.audit import StaffAccess
from portal.extensions import db
from portal.imports.models import ImportJob
from tests.support.conftest import STAFF_EMAIL, open_account, staff_events

ACCOUNT_PAGES = ["", "deleted", "backups", "imports", "audit"]


def test_an_account_page_without_access_asks_for_the_reason(app, acme, staff_client):
    response = staff_client.get("/support/accounts/acme/deleted")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/support/accounts/acme/open")
    page = staff_client.get("/support/accounts/acme/open").get_data(as_text=True)
    assert "Please state why you open this account." in page
    assert "Your access lasts 60 minutes." in page
    assert staff_events(app, acme) == []  # nothing was read


def test_the_reason_is_required(app, acme, staff_client):
    for reason in ("", "   "):
        response = staff_client.post("/support/accounts/acme/open", data={"reason": reason})
        assert response.status_code == 200
        assert "Please state the reason (a ticket number or a few words)." in response.get_data(
            as_text=True
        )
    too_long = staff_client.post("/support/accounts/acme/open", data={"reason": "x" * 501})
    assert "At most 500 characters." in too_long.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(StaffAccess)) is None
    assert staff_client.get("/support/accounts/acme/").status_code == 302


def test_an_unknown_account_is_a_404_for_staff_too(staff_client):
    assert staff_client.get("/support/accounts/nope/open").status_code == 404
    assert staff_client.get("/support/accounts/nope/").status_code == 404


def test_opening_is_audited_and_the_owner_sees_time_person_and_reason(
    app, acme, staff_client, owner_client, time_machine
):
    open_account(staff_client, "acme", "Ticket #4711: contacts deleted by mistake")
    with app.app_context():
        access = db.session.scalar(db.select(StaffAccess))
        assert access.reason == "Ticket #4711: contacts deleted by mistake"
        assert access.expires_at - access.started_at == timedelta(minutes=60)
        assert access.staff_label == STAFF_EMAIL
    overview = staff_client.get("/support/accounts/acme/").get_data(as_text=True)
    assert "You are looking at the account “Acme GmbH” (acme) as support staff." in overview
    assert "Reason: Ticket #4711: contacts deleted by mistake" in overview
    events = staff_events(app, acme)
    assert [e.action for e in events] == ["support.access_opened", "support.viewed"]
    assert events[0].actor_label == STAFF_EMAIL and events[0].actor_type == "staff"

    settings = owner_client.get("/a/acme/settings").get_data(as_text=True)
    section = settings.split('id="support-activity"')[1]
    # time (in the owner's timezone, Berlin), person and reason
    assert (
        f"02/03/2026, 10:00</span> · {STAFF_EMAIL}<br>Support accessed your account. "
        "Reason: Ticket #4711: contacts deleted by mistake (access until 02/03/2026, 11:00)"
    ) in section
    # the general "recent changes" list has it too
    recent = settings.split('id="recent-changes"')[1].split('id="support-activity"')[0]
    assert "Support accessed your account" in recent


def test_an_expired_access_is_refused_and_changes_nothing(
    app, acme, staff_client, make_data, time_machine
):
    data = make_data(acme)
    group_id = data.group("Newsletter")
    contact_id = data.contact("jurgen@example.de", groups=(group_id,), deleted=True)
    open_account(staff_client, "acme")
    assert staff_client.get("/support/accounts/acme/deleted").status_code == 200
    time_machine.move_to("2026-03-02T10:00:01+00:00", tick=False)  # 60 minutes and 1 second
    for page in ACCOUNT_PAGES:
        response = staff_client.get(f"/support/accounts/acme/{page}")
        assert response.status_code == 302, page
        assert response.headers["Location"].endswith("/support/accounts/acme/open")
    restore = staff_client.post(
        "/support/accounts/acme/deleted/restore", data={"ids": [str(contact_id)]}
    )
    assert restore.status_code == 302
    assert restore.headers["Location"].endswith("/support/accounts/acme/open")
    with app.app_context():
        assert db.session.get(Contact, contact_id).status == ContactStatus.DELETED.value
    page = staff_client.get("/support/accounts/acme/open").get_data(as_text=True)
    assert "Your access to this account has ended. Please state the reason again" in page
    # no read and no action was recorded after the expiry
    assert [e.action for e in staff_events(app, acme)] == [
        "support.access_opened",
        "support.viewed",
    ]
    # a new reason opens it again
    open_account(staff_client, "acme", "Ticket #4712")
    assert staff_client.get("/support/accounts/acme/deleted").status_code == 200


def test_the_length_of_an_access_is_configurable(app, acme, staff_client, time_machine):
    app.config["STAFF_ACCESS_MINUTES"] = 15
    try:
        open_account(staff_client, "acme")
        time_machine.move_to("2026-03-02T09:14:59+00:00", tick=False)
        assert staff_client.get("/support/accounts/acme/").status_code == 200
        time_machine.move_to("2026-03-02T09:15:00+00:00", tick=False)
        assert staff_client.get("/support/accounts/acme/").status_code == 302
    finally:
        app.config["STAFF_ACCESS_MINUTES"] = 60


def test_closing_the_access_ends_it_and_is_audited(app, acme, staff_client, owner_client):
    open_account(staff_client, "acme", "Ticket #9")
    index = staff_client.get("/support/").get_data(as_text=True)
    assert 'id="open-accesses"' in index and "Acme GmbH" in index
    response = staff_client.post("/support/accounts/acme/close")
    assert response.status_code == 302
    assert staff_client.get("/support/accounts/acme/").status_code == 302
    assert 'id="no-open-accesses"' in staff_client.get("/support/").get_data(as_text=True)
    assert staff_events(app, acme)[-1].action == "support.access_closed"
    settings = owner_client.get("/a/acme/settings").get_data(as_text=True)
    assert "Support closed its access to your account. Reason was: Ticket #9" in settings


def test_a_second_reason_replaces_the_open_access(app, acme, staff_client):
    open_account(staff_client, "acme", "first")
    open_account(staff_client, "acme", "second")
    with app.app_context():
        accesses = list(db.session.scalars(db.select(StaffAccess).order_by(StaffAccess.id)))
        assert [a.reason for a in accesses] == ["first", "second"]
        assert accesses[0].ended_at is not None and accesses[1].ended_at is None
    assert "Reason: second" in staff_client.get("/support/accounts/acme/").get_data(as_text=True)


def test_another_staff_users_access_is_not_mine(app, acme, staff_client, make_user):
    from tests.helpers.auth import login

    open_account(staff_client, "acme")
    make_user("colleague@portal.example", is_staff=True)
    colleague = app.test_client()
    login(colleague, "colleague@portal.example")
    assert colleague.get("/support/accounts/acme/").status_code == 302


# --- tenant isolation --------------------------------------------------------------------


def test_an_access_to_one_account_gives_nothing_of_another(
    app, acme, beta, staff_client, make_data, tmp_path
):
    """Open for acme only: beta's pages ask for a reason, beta's ids under acme's address
    are a 404 or change nothing, and nothing of beta shows on acme's pages."""
    b = make_data(beta)
    b_group = b.group("Clienti")
    b_contact = b.contact("giulia@example.it", "Giulia", "Cantù", groups=(b_group,), deleted=True)
    with app.app_context():
        backup = snapshot(db.session.get(Group, b_group), reason="manual")
        job = ImportJob(account_id=beta, group_id=b_group, group_name="Clienti", status="finished")
        db.session.add(job)
        db.session.commit()
        backup_id, job_id = backup.id, job.id
    open_account(staff_client, "acme")

    for page in ACCOUNT_PAGES:
        response = staff_client.get(f"/support/accounts/beta/{page}")
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/support/accounts/beta/open")
    assert staff_client.post("/support/accounts/beta/deleted/restore").status_code == 302
    assert staff_client.post("/support/accounts/beta/close").status_code == 302

    # beta's ids through acme's open access
    assert staff_client.post(f"/support/accounts/acme/backups/{backup_id}/restore").status_code == (
        404
    )
    assert staff_client.post(f"/support/accounts/acme/imports/{job_id}/undo").status_code == 404
    restore = staff_client.post(
        "/support/accounts/acme/deleted/restore", data={"ids": [str(b_contact)]}
    )
    assert restore.status_code == 302
    with app.app_context():
        assert db.session.get(Contact, b_contact).status == ContactStatus.DELETED.value
        assert db.session.scalar(db.select(ImportJob).where(ImportJob.id != job_id)) is None

    for page in ACCOUNT_PAGES:
        html = staff_client.get(f"/support/accounts/acme/{page}").get_data(as_text=True)
        assert "giulia@example.it" not in html and "Clienti" not in html and "Beta" not in html
    assert staff_events(app, beta) == []  # beta saw no staff read and no staff action
