"""Fixtures for backups: an account with custom fields, groups, contacts in bulk, and
imports run through the import service as the portal runs them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from portal import clock
from portal.accounts.models import Account
from portal.contacts import fields as contact_fields
from portal.contacts import service as contacts
from portal.contacts.models import (
    Contact,
    ContactStatus,
    Group,
    Subscription,
    Tag,
    contact_row,
    contact_tags,
)
from portal.extensions import db
from portal.imports import service as imports
from tests.imports.conftest import write_csv

FIRST = ["Jürgen", "Łukasz", "Małgorzata", "Zoë", "Sören", "Żaneta", "Niccolò", "Eline", "Ørjan"]
LAST = ["Größ", "Brzęczyszczykiewicz", "Węgrzyn", "Mazzà", "van 't Hoff", "Kowalska", "Ćwik"]
TAGS = ["Kunde", "Händler", "Żółw", "Łódź", "Straßenfest 2024", "caffè", "VIP", "2024"]
CITIES = ["Köln", "Kraków", "Gdańsk", "Zürich", "=SUM(A1:A9)", "-5 Grad", "@home"]
REASONS = ["unsubscribed", "bounced", "complained", "manual"]
FIELDS = (
    ("city", "Stadt", "text", None),
    ("points", "Punkte", "number", None),
    ("birthday", "Geburtstag", "date", None),
    ("level", "Stufe", "choice", ["Gold", "Silber", "Bronze"]),
)


def add_fields(account: Account) -> None:
    for key, label, kind, choices in FIELDS:
        contact_fields.create_custom_field(account, key, label, kind, choices=choices, source="ui")


@pytest.fixture
def account(ctx, make_account):
    account_id = make_account("acme", timezone="Europe/Berlin")
    account = db.session.get(Account, account_id)
    add_fields(account)
    db.session.commit()
    return account


@pytest.fixture
def group(account):
    group = contacts.create_group(account, "Newsletter", actor=None, source="ui")
    db.session.commit()
    return group


def build_contacts(account: Account, group: Group, n: int, *, seed: int = 3, prefix="user"):
    """n contacts in the group with names in five languages, custom fields, tags and
    sign-up/sign-off data (every 7th signed off with a reason), microsecond dates."""
    rnd = random.Random(seed)
    tags = {name: contacts.get_or_create_tag(account, name) for name in TAGS}
    db.session.flush()
    start = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    rows, links, subs = [], [], []
    for i in range(n):
        fields = {"city": rnd.choice(CITIES), "points": rnd.choice([i, i + 0.5, -3])}
        if i % 3 == 0:
            fields["birthday"] = (
                f"19{rnd.randint(50, 99)}-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}"
            )
        if i % 4 == 0:
            fields["level"] = rnd.choice(["Gold", "Silber", "Bronze"])
        rows.append(
            contact_row(
                account.id,
                f"{prefix}{i}@beispiel-{i % 13}.de",
                rnd.choice(FIRST),
                rnd.choice(LAST),
                fields=fields,
            )
        )
    db.session.execute(db.insert(Contact), rows)
    ids = dict(
        db.session.execute(
            db.select(Contact.email, Contact.id).where(Contact.account_id == account.id)
        ).all()
    )
    for i, row in enumerate(rows):
        cid = ids[row["email"]]
        signup = start + timedelta(minutes=i * 7, microseconds=i)
        off = i % 7 == 3
        subs.append(
            {
                "account_id": account.id,
                "contact_id": cid,
                "group_id": group.id,
                "active": not off,
                "activated_at": signup,
                "deactivated_at": signup + timedelta(days=20) if off else None,
                "optout_reason": REASONS[i % 4] if off else None,
                "source": "ui",
            }
        )
        for name in rnd.sample(TAGS, rnd.randint(0, 3)):
            links.append({"contact_id": cid, "tag_id": tags[name].id})
    db.session.execute(db.insert(Subscription), subs)
    if links:
        db.session.execute(contact_tags.insert(), links)
    db.session.commit()
    return [row["email"] for row in rows]


def group_state(group_id: int) -> dict:
    """Master data and sign-up/sign-off data of a group's contacts, by email."""
    state = {}
    rows = db.session.execute(
        db.select(Contact, Subscription)
        .join(Subscription, Subscription.contact_id == Contact.id)
        .where(Subscription.group_id == group_id)
    ).all()
    for contact, sub in rows:
        tags = sorted(
            db.session.scalars(
                db.select(Tag.name)
                .join(contact_tags, contact_tags.c.tag_id == Tag.id)
                .where(contact_tags.c.contact_id == contact.id)
            )
        )
        state[contact.email] = {
            "first": contact.first_name,
            "last": contact.last_name,
            "fields": contact.fields,
            "tags": tags,
            "active": sub.active,
            "activated_at": sub.activated_at,
            "deactivated_at": sub.deactivated_at,
            "optout_reason": sub.optout_reason,
        }
    return state


@pytest.fixture
def run_import(tmp_path, account, group):
    """Import rows into a group the way the portal does (source "ui" unless told)."""

    def run(rows, *, source="ui", mode="update_add", consent=True, restore=False, into=None):
        path = write_csv(tmp_path / f"list-{len(list(tmp_path.iterdir()))}.csv", rows)
        job = imports.create_import(
            account,
            actor=None,
            group=into or group,
            source_path=path,
            filename="list.csv",
            source=source,
        )
        imports.configure(
            job, mapping=job.mapping, mode=mode, import_consent=consent, restore_deleted=restore
        )
        db.session.commit()
        imports.run(job)
        return job

    return run


def mark_deleted(contact_id: int) -> None:
    contact = db.session.get(Contact, contact_id)
    contact.status = ContactStatus.DELETED.value
    contact.deleted_at = clock.now()
    db.session.commit()
