"""Fixtures for deletion, purge, forget me and the sign-up form."""

from __future__ import annotations

import pytest

from portal.accounts.models import Account
from portal.contacts.models import Contact, Group
from portal.extensions import db


@pytest.fixture
def account(ctx, make_account):
    """An account in Berlin, used inside an app context (service-level tests)."""
    return db.session.get(Account, make_account("acme", timezone="Europe/Berlin"))


def contact_by_email(account_id: int, email: str) -> Contact | None:
    return db.session.scalar(
        db.select(Contact).where(Contact.account_id == account_id, Contact.email == email)
    )


def group_named(account_id: int, name: str) -> Group:
    return db.session.scalar(
        db.select(Group).where(Group.account_id == account_id, Group.name == name)
    )
