"""Mass management: all contacts matching a filter, or a pasted or uploaded list of
addresses — counted and checked first, confirmed, then done by a job in batches with
progress, resumable after a failure without doing anything twice."""

from __future__ import annotations

import re

import pytest

from portal.accounts.models import Account
from portal.contacts import queries
from portal.contacts import service as contacts
from portal.contacts.models import Contact, ContactStatus
from portal.core.audit import AuditEvent
from portal.core.privacy import Suppression
from portal.extensions import db
from portal.lifecycle import mass, service
from portal.lifecycle.models import LifecycleAction, LifecycleJob


def _statuses(app) -> dict[str, str]:
    with app.app_context():
        return {c.email: c.status for c in db.session.scalars(db.select(Contact))}


def test_a_pasted_list_reports_every_unusable_line_by_number(client, data, app):
    for email in ("anna@example.com", "bert@example.com", "cleo@example.com"):
        data.contact(email)
    pasted = "\n".join(
        [
            "E-Mail",  # a header line is skipped
            "anna@example.com",
            "not an address",
            "Bert@Example.com; nobody@example.com",
            "",
            "broken@@example.com",
            "anna@example.com",  # a duplicate is used once
        ]
    )
    response = client.post(
        "/a/acme/contacts/manage/list", data={"action": "delete", "emails": pasted}
    )
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert "A list of 3 addresses." in page and "2 of them are contacts of this account." in page
    problems = re.search(r'id="list-problems">(.*?)</div>', page, re.S).group(1)
    assert "2 lines could not be used" in problems
    assert "Line 3" in problems and "No email address in this line." in problems
    assert "Line 6" in problems and "not a valid email address" in problems
    # the reasons are kept as codes: a German reader reads them in German
    german = client.get(f"{response.location}?lang=de").get_data(as_text=True)
    assert "Keine E-Mail-Adresse in dieser Zeile." in german
    assert "No email address in this line." not in german
    client.get("/a/acme/?lang=en")
    assert "1 address appeared twice" in page
    assert "2 contacts will be marked “to be deleted”" in page
    assert set(_statuses(app).values()) == {"active"}  # nothing before the confirmation

    job_url = response.location
    job_id = int(job_url.rsplit("/", 1)[1])
    done = client.post(f"{job_url}/confirm", follow_redirects=True).get_data(as_text=True)
    assert "2 contacts were marked “to be deleted”." in done
    assert "1 address of the list is not a contact of this account." in done
    assert _statuses(app) == {
        "anna@example.com": "deleted",
        "bert@example.com": "deleted",
        "cleo@example.com": "active",
    }
    with app.app_context():
        job = db.session.get(LifecycleJob, job_id)
        assert job.selection == {"scope": "emails", "emails": [], "count": 3}  # list wiped
        event = db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "contacts.deleted")
        )
        assert event.details == {"count": 2, "source": "ui", "mass": True}


def test_an_uploaded_excel_csv_in_windows_1252_restores_its_addresses(client, data, app, tmp_path):
    data.contact("jörg@example.com", deleted=True)
    data.contact("zoe@example.com", deleted=True)
    content = "Name;E-Mail\r\nJörg;jörg@example.com\r\nZoë;ZOE@example.com\r\n".encode("cp1252")
    path = tmp_path / "liste.csv"
    path.write_bytes(content)
    with path.open("rb") as fh:
        response = client.post(
            "/a/acme/contacts/manage/list",
            data={"action": "restore", "file": (fh, "liste.csv")},
            content_type="multipart/form-data",
        )
    assert response.status_code == 302
    client.post(f"{response.location}/confirm")
    assert set(_statuses(app).values()) == {"active"}


def test_a_list_without_any_address_is_refused_with_the_line(client, data):
    response = client.post(
        "/a/acme/contacts/manage/list", data={"action": "delete", "emails": "Name\nfoo\nbar"}
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "The list holds no usable email address." in page and "Line 2" in page


def test_by_filter_counts_first_and_forget_needs_the_extra_tick(client, data, app):
    group = data.group("Shop")
    for i in range(4):
        data.contact(f"shop{i}@example.com", groups=(group,))
    data.contact("other@example.com")
    page = client.get(f"/a/acme/contacts/manage?group={group}").get_data(as_text=True)
    assert 'data-count="4"' in page
    response = client.post(
        "/a/acme/contacts/manage/filter", data={"action": "forget", "filter": f"group={group}"}
    )
    confirm_page = client.get(response.location).get_data(as_text=True)
    assert "Group: Shop" in confirm_page and "cannot be undone" in confirm_page
    # without ticking "I understand" nothing is erased
    client.post(f"{response.location}/confirm", data={})
    assert len(_statuses(app)) == 5
    done = client.post(
        f"{response.location}/confirm", data={"understood": "y"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "4 contacts were erased for good." in done
    assert list(_statuses(app)) == ["other@example.com"]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Suppression.id))) == 4
        receipts = list(
            db.session.scalars(
                db.select(AuditEvent).where(AuditEvent.action == "contacts.forgotten")
            )
        )
        assert len(receipts) == 1 and receipts[0].details["contacts"] == 4
        assert receipts[0].details["subscriptions"] == 4
    # a confirmed job cannot be confirmed again
    again = client.post(
        f"{response.location}/confirm", data={"understood": "y"}, follow_redirects=True
    )
    assert "already been started" in again.get_data(as_text=True)


def test_a_draft_can_be_cancelled(client, data, app):
    data.contact("anna@example.com")
    response = client.post(
        "/a/acme/contacts/manage/list", data={"action": "delete", "emails": "anna@example.com"}
    )
    page = client.post(f"{response.location}/cancel", follow_redirects=True).get_data(as_text=True)
    assert "Nothing has been changed." in page
    assert client.get(response.location).status_code == 404
    assert _statuses(app) == {"anna@example.com": "active"}
    # the audit log still says that someone prepared a deletion and dropped it
    with app.app_context():
        event = db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "lifecycle.draft_cancelled")
        )
        assert event is not None and event.actor_id is not None
        assert event.details["action"] == "delete" and event.details["count"] == 1
    log = client.get("/a/acme/settings").get_data(as_text=True)
    assert "A prepared action on 1 contact was cancelled before it started" in log


def test_another_accounts_job_is_a_404(client, data, app, make_account):
    other = make_account("other")
    with app.app_context():
        job = mass.draft_for_emails(
            db.session.get(Account, other),
            LifecycleAction.DELETE,
            mass.parse_pasted("x@example.com"),
            actor=None,
            source="ui",
        )
        db.session.commit()
        job_id = job.id
    assert client.get(f"/a/acme/contacts/manage/{job_id}").status_code == 404
    assert client.get(f"/a/acme/contacts/manage/{job_id}/status").status_code == 404
    assert client.post(f"/a/acme/contacts/manage/{job_id}/confirm").status_code == 404


def test_a_job_that_failed_half_way_continues_without_doing_anything_twice(account, monkeypatch):
    ids = []
    for i in range(2500):
        ids.append(contacts.create_contact(account, f"c{i:04d}@example.com", source="ui").id)
    db.session.commit()
    job = mass.draft_for_filter(
        account,
        LifecycleAction.DELETE,
        queries.ContactFilter(),
        tz=__import__("zoneinfo").ZoneInfo("UTC"),
        actor=None,
        source="ui",
    )
    mass.confirm(job)
    db.session.commit()

    real = service.delete_contacts
    calls = {"n": 0}

    def dies_on_the_second_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "delete_contacts", dies_on_the_second_batch)
    with pytest.raises(RuntimeError):
        mass.run(job)
    mass.fail(job, "RuntimeError: worker lost")
    job = db.session.get(LifecycleJob, job.id)
    assert (job.status, job.processed, job.changed) == ("failed", 1000, 1000)
    assert mass.can_resume(job)

    monkeypatch.setattr(service, "delete_contacts", real)
    mass.run(job)
    job = db.session.get(LifecycleJob, job.id)
    assert (job.status, job.processed, job.changed) == ("finished", 2500, 2500)
    deleted = db.session.scalar(
        db.select(db.func.count(Contact.id)).where(Contact.status == ContactStatus.DELETED.value)
    )
    assert deleted == 2500
