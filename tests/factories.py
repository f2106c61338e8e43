"""Small factories for contacts, groups, tags and activities (through the service);
the `data` and `make_data` fixtures in tests/conftest.py hand them out."""

from __future__ import annotations

from datetime import UTC, datetime

from portal.accounts.models import Account
from portal.contacts import fields as contact_fields
from portal.contacts import service
from portal.contacts.models import Contact, ContactStatus, Group, Tag
from portal.extensions import db


class Data:
    """Builds rows for one account; every method commits and returns ids."""

    def __init__(self, app, account_id: int):
        self.app = app
        self.account_id = account_id

    def _account(self) -> Account:
        return db.session.get(Account, self.account_id)

    def group(self, name: str, **kwargs) -> int:
        with self.app.app_context():
            group = service.create_group(
                self._account(), name, actor=None, **{"source": "ui", **kwargs}
            )
            db.session.commit()
            return group.id

    def field(self, key: str, label: str, type: str = "text", choices=None) -> int:
        with self.app.app_context():
            definition = contact_fields.create_custom_field(
                self._account(), key, label, type, choices=choices, source="ui"
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
        unsubscribed: tuple[tuple[int, str], ...] = (),
        signup_at: datetime | None = None,
        signoff_at: datetime | None = None,
        tags: tuple[str, ...] = (),
        fields: dict | None = None,
        deleted: bool = False,
    ) -> int:
        with self.app.app_context():
            account = self._account()
            contact = service.create_contact(
                account,
                email,
                first_name=first_name,
                last_name=last_name,
                fields=fields,
                source="ui",
            )
            for group_id in groups:
                service.subscribe(
                    contact, db.session.get(Group, group_id), at=signup_at, source="ui"
                )
            for group_id, reason in unsubscribed:
                group = db.session.get(Group, group_id)
                service.subscribe(contact, group, at=signup_at, source="ui")
                service.unsubscribe(contact, group, reason=reason, at=signoff_at, source="ui")
            for tag in tags:
                service.add_tag(contact, tag, actor=None, source="ui")
            if deleted:
                contact.status = ContactStatus.DELETED.value
                contact.deleted_at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
            db.session.commit()
            return contact.id

    def activity(self, contact_id: int, kind: str, *, group_id=None, at=None, detail="") -> None:
        with self.app.app_context():
            contact = db.session.get(Contact, contact_id)
            group = db.session.get(Group, group_id) if group_id else None
            service.record_activity(contact, kind, group=group, at=at, detail=detail)
            db.session.commit()

    def tag_id(self, name: str) -> int:
        with self.app.app_context():
            return db.session.scalar(
                db.select(Tag.id).where(Tag.account_id == self.account_id, Tag.name == name)
            )

    def get(self, model, object_id: int):
        """A detached copy of a row's current state (expunged so it outlives the context)."""
        with self.app.app_context():
            obj = db.session.get(model, object_id)
            if obj is not None:
                db.session.refresh(obj)
                db.session.expunge(obj)
            return obj
