"""Recovery in a real browser, in all five languages (issue 17, points 1, 2, 4): the owner
restores the backup made before an import through its confirmation page (the dry run
says one contact is set back and three leave the group; "Set the group back to this
backup" does exactly that), then undoes an import into a group that was empty - it made
no backup - from the import history, through its own confirmation page.
Screenshots: test-artifacts/screenshots/test_restore_and_undo_with_confirmation_<lang>-*.png"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portal.accounts.models import Account
from portal.backups.models import Backup
from portal.contacts.models import Contact, Group, Subscription
from portal.extensions import db
from portal.imports import service as imports
from tests.e2e.conftest import OWNER, sign_in
from tests.e2e.test_journeys import _translated
from tests.imports.conftest import write_csv

HEADER = ["email", "first_name", "last_name"]


def _import(app, tmp_path, account_id: int, group_name: str, rows: list[list[str]]) -> int:
    """An import from the portal (source "ui"), run as the worker runs it."""
    with app.app_context():
        account = db.session.get(Account, account_id)
        group = db.session.scalar(db.select(Group).where(Group.name == group_name))
        path = write_csv(tmp_path / f"{group_name}.csv", [HEADER, *rows])
        job = imports.create_import(
            account,
            actor=None,
            group=group,
            source_path=path,
            filename=f"{group_name}.csv",
            source="ui",
        )
        imports.configure(
            job, mapping=job.mapping, mode="update_add", import_consent=True, restore_deleted=False
        )
        db.session.commit()
        imports.run(job)
        return job.id


def _members(app, group_name: str) -> dict[str, str]:
    with app.app_context():
        return dict(
            db.session.execute(
                db.select(Contact.email, Contact.status)
                .join(Subscription, Subscription.contact_id == Contact.id)
                .join(Group, Group.id == Subscription.group_id)
                .where(Group.name == group_name)
            ).all()
        )


@pytest.mark.parametrize("lang", ["en", "de", "it", "nl", "pl"])
def test_restore_and_undo_with_confirmation(
    app, owner, make_data, live_server, page, tmp_path, screenshot, lang
):
    data = make_data(owner)
    group_id = data.group("Newsletter")
    data.group("Aktion")  # empty: an import into it makes no backup
    people = [f"person{i:02d}@example.com" for i in range(8)]
    for i, email in enumerate(people):
        data.contact(email, f"Vorname{i}", "Muster", groups=(group_id,))
    _import(
        app,
        tmp_path,
        owner,
        "Newsletter",
        [
            [people[3], "Geändert", "Muster"],
            *([f"neu{i}@example.com", "Neu", ""] for i in range(3)),
        ],
    )
    empty_job = _import(app, tmp_path, owner, "Aktion", [["aktion@example.com", "Akt", "Ion"]])
    with app.app_context():
        backup_id = db.session.scalar(db.select(Backup.id))
        assert db.session.scalar(db.select(db.func.count(Backup.id))) == 1  # none of "Aktion"

    sign_in(page, live_server, OWNER)
    page.goto(f"{live_server}/a/acme/backups?lang={lang}")
    page.locator(f"#restore-{backup_id}").click()
    expect(page.locator("#restore-plan [data-count=set_back]")).to_have_text("1")
    expect(page.locator("#restore-plan [data-kind=set_back]")).to_contain_text(people[3])
    expect(page.locator("#restore-plan [data-count=removed]")).to_have_text("3")
    expect(page.locator("#restore-plan [data-count=unchanged]")).to_have_text("7")
    expect(page.locator("#restore-exact")).to_have_text(
        _translated(app, "Set the group back to this backup", lang)
    )
    expect(page.locator("#restore-add")).to_have_text(
        _translated(app, "Only add back what is missing", lang)
    )
    screenshot(page, "-1-restore-confirm")
    assert len(_members(app, "Newsletter")) == 11  # the page changed nothing
    page.locator("#restore-exact").click()
    expect(page.locator(".alert-success")).to_contain_text(
        _translated(app, "The backup has been restored.", lang)
    )
    expect(page.locator(f"#backup-{backup_id}-restore")).to_be_visible()
    screenshot(page, "-2-restored")
    members = _members(app, "Newsletter")
    assert set(members) == set(people) and set(members.values()) == {"active"}
    with app.app_context():
        for i in range(3):  # in no other group: "to be deleted", restorable
            status = db.session.scalar(
                db.select(Contact.status).where(Contact.email == f"neu{i}@example.com")
            )
            assert status == "deleted"

    page.goto(f"{live_server}/a/acme/imports")
    screenshot(page, "-3-history")
    page.locator(f"#undo-{empty_job}").click()
    expect(page.locator("#undo-empty-group")).to_be_visible()
    expect(page.locator("#undo-plan [data-count=removed]")).to_have_text("1")
    expect(page.locator("#undo-plan [data-count=deleted]")).to_have_text("1")
    screenshot(page, "-4-undo-confirm")
    page.locator("#undo-confirm").click()
    expect(page.locator(".alert-success")).to_contain_text(
        _translated(app, "The import has been undone.", lang)
    )
    expect(page.locator(f"#undo-{empty_job}")).to_have_count(0)
    screenshot(page, "-5-undone")
    assert _members(app, "Aktion") == {}
    with app.app_context():
        assert (
            db.session.scalar(db.select(Contact.id).where(Contact.email == "aktion@example.com"))
            is None
        )
