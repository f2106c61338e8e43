"""Helpers for import tests: write a CSV, run an import through the service."""

from __future__ import annotations

import csv
import io
import os

import pytest

from portal.accounts.models import Account
from portal.contacts.models import Contact, Group, Subscription, Tag, contact_tags
from portal.extensions import db
from portal.imports import service


def write_csv(path, rows, delimiter=",", encoding="utf-8"):
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    path.write_bytes(out.getvalue().encode(encoding))
    return path


def postgresql_only(reason: str) -> pytest.MarkDecorator:
    """Skip on SQLite, saying why the test means PostgreSQL only."""
    return pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"), reason=reason
    )


def configured_import(
    account, group, path, *, mode="update_add", consent=False, restore=False, source="ui"
):
    """An uploaded file with the suggested mapping, configured and committed: ready to
    be checked, run or queued."""
    job = service.create_import(
        account, actor=None, group=group, source_path=path, filename=path.name, source=source
    )
    service.configure(
        job, mapping=job.mapping, mode=mode, import_consent=consent, restore_deleted=restore
    )
    db.session.commit()
    return job


@pytest.fixture
def account(ctx, make_account):
    account_id = make_account("acme", timezone="Europe/Berlin")
    return db.session.get(Account, account_id)


@pytest.fixture
def group(account):
    group = Group(account_id=account.id, name="Newsletter")
    db.session.add(group)
    db.session.commit()
    return group


@pytest.fixture
def group_id(app, owner):
    """The group "Newsletter" of the signed-in owner's account "acme" (the pages)."""
    with app.app_context():
        group = Group(account_id=owner, name="Newsletter")
        db.session.add(group)
        db.session.commit()
        return group.id


@pytest.fixture
def run_import(tmp_path, account, group):
    """Import rows into the group: upload, map automatically, optionally check, run."""

    def run(
        rows,
        *,
        mode="update_add",
        consent=False,
        restore=False,
        source="ui",
        dry_run=False,
        target_group=None,
        mapping=None,
    ):
        path = write_csv(tmp_path / f"list-{len(list(tmp_path.iterdir()))}.csv", rows)
        job = service.create_import(
            account,
            actor=None,
            group=target_group or group,
            source_path=path,
            filename="list.csv",
            source=source,
        )
        service.configure(
            job,
            mapping=mapping or job.mapping,
            mode=mode,
            import_consent=consent,
            restore_deleted=restore,
        )
        db.session.commit()
        if dry_run:
            service.check(job)
            return job
        service.run(job)
        return job

    return run


def contact_state(account_id):
    """Every contact of the account with its names, fields, tags and subscriptions."""
    state = {}
    for c in db.session.scalars(db.select(Contact).where(Contact.account_id == account_id)):
        tags = sorted(
            db.session.scalars(
                db.select(Tag.name)
                .join(contact_tags, contact_tags.c.tag_id == Tag.id)
                .where(contact_tags.c.contact_id == c.id)
            )
        )
        subs = {
            s.group_id: (s.active, s.activated_at, s.deactivated_at, s.optout_reason)
            for s in db.session.scalars(
                db.select(Subscription).where(Subscription.contact_id == c.id)
            )
        }
        state[c.email] = {
            "first": c.first_name,
            "last": c.last_name,
            "fields": c.fields,
            "status": c.status,
            "tags": tags,
            "subs": subs,
            "search": c.search_name,
        }
    return state
