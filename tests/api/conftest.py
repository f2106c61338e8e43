"""Fixtures for the API: accounts with keys, a client that sends a key, and small
factories that build data through the services (as the portal does)."""

from __future__ import annotations

from datetime import datetime

import pytest

from portal.accounts.models import Account
from portal.api import service as keys
from portal.contacts import fields as contact_fields
from portal.contacts import service as contacts
from portal.contacts.models import Contact, ContactStatus, Group
from portal.extensions import db

PREFIX = "/api/v1"


class Api:
    """The test client with `Authorization: Bearer <key>` on every request."""

    def __init__(self, client, key: str | None, language: str | None = None):
        self.client = client
        self.key = key
        self.language = language

    def _headers(self, extra: dict | None) -> dict:
        headers = {}
        if self.key is not None:
            headers["Authorization"] = f"Bearer {self.key}"
        if self.language:
            headers["Accept-Language"] = self.language
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, *, headers: dict | None = None, **kwargs):
        return self.client.open(
            PREFIX + path, method=method, headers=self._headers(headers), **kwargs
        )

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path, **kwargs):
        return self.request("PUT", path, **kwargs)

    def patch(self, path, **kwargs):
        return self.request("PATCH", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


class Factory:
    """Rows of one account, made through the services; every method commits and
    returns ids."""

    def __init__(self, app, account_id: int):
        self.app = app
        self.account_id = account_id

    def account(self) -> Account:
        return db.session.get(Account, self.account_id)

    def key(self, scope: str = "write", name: str = "Shop") -> str:
        with self.app.app_context():
            _, plain = keys.create_key(
                self.account(), name=name, scope=scope, actor=None, source="ui"
            )
            db.session.commit()
            return plain

    def group(self, name: str, **kwargs) -> int:
        with self.app.app_context():
            group = contacts.create_group(
                self.account(), name, actor=None, **{"source": "ui", **kwargs}
            )
            db.session.commit()
            return group.id

    def field(self, key: str, label: str, type: str = "text", choices=None) -> int:
        with self.app.app_context():
            definition = contact_fields.create_custom_field(
                self.account(), key, label, type, choices=choices, source="ui"
            )
            db.session.commit()
            return definition.id

    def contact(
        self,
        email: str,
        first_name: str = "",
        last_name: str = "",
        *,
        groups: tuple[int, ...] = (),
        tags: tuple[str, ...] = (),
        fields: dict | None = None,
        signup_at: datetime | None = None,
        unsubscribed: tuple[int, ...] = (),
        deleted: bool = False,
    ) -> int:
        with self.app.app_context():
            contact = contacts.create_contact(
                self.account(),
                email,
                first_name=first_name,
                last_name=last_name,
                fields=fields,
                source="ui",
            )
            for group_id in (*groups, *unsubscribed):
                contacts.subscribe(
                    contact, db.session.get(Group, group_id), at=signup_at, source="ui"
                )
            for group_id in unsubscribed:
                contacts.unsubscribe(
                    contact, db.session.get(Group, group_id), reason="bounced", source="ui"
                )
            for name in tags:
                contacts.add_tag(contact, name, actor=None, source="ui")
            if deleted:
                contact.status = ContactStatus.DELETED.value
                from portal import clock

                contact.deleted_at = clock.now()
            db.session.commit()
            return contact.id

    def tag_id(self, name: str) -> int:
        with self.app.app_context():
            return contacts.get_or_create_tag(self.account(), name).id

    def get(self, model, object_id: int):
        with self.app.app_context():
            obj = db.session.get(model, object_id)
            if obj is not None:
                db.session.refresh(obj)
                db.session.expunge(obj)
            return obj

    def contact_by_email(self, email: str) -> Contact | None:
        with self.app.app_context():
            obj = db.session.scalar(
                db.select(Contact).where(
                    Contact.account_id == self.account_id, Contact.email == email
                )
            )
            if obj is not None:
                db.session.expunge(obj)
            return obj


@pytest.fixture
def acme(app, make_account):
    return Factory(app, make_account("acme", timezone="Europe/Berlin"))


@pytest.fixture
def other(app, make_account):
    return Factory(app, make_account("other", timezone="Europe/Amsterdam"))


@pytest.fixture
def api(client, acme):
    """A client with a read-and-write key of account acme."""
    return Api(client, acme.key("write"))


@pytest.fixture
def reader(client, acme):
    """A client with a read-only key of account acme."""
    return Api(client, acme.key("read", name="Reports"))
