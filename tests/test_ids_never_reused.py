"""Ids that leave the database are never handed out twice (issue 16, point 5).

SQLite without AUTOINCREMENT gives the next row max(id) + 1: once the newest contact is
forgotten (or purged), the next contact got its id, and the old card URL, the audit
entry and the webhook event that named the removed person named someone else. Runs on
both databases (PostgreSQL's sequences never went back; the test proves it stays so)."""

from __future__ import annotations

from sqlalchemy import Integer, inspect, text

from portal.accounts.models import Account
from portal.api import service as api_keys
from portal.contacts import service as contacts
from portal.contacts.models import Contact, Group
from portal.core.audit import AuditEvent
from portal.database import IDS_LEAVE_THE_DATABASE, IDS_STAY_INSIDE
from portal.extensions import db
from portal.lifecycle import service as lifecycle


def _surrogate_id_tables() -> set[str]:
    found = set()
    for table in db.metadata.sorted_tables:
        columns = list(table.primary_key.columns)
        if (
            len(columns) == 1
            and columns[0].name == "id"
            and isinstance(columns[0].type.as_generic(), Integer)
        ):
            found.add(table.name)
    return found


def test_every_table_with_an_id_of_its_own_is_decided(app):
    """A new table must say whether its ids leave the database (a URL, the audit log,
    an event, the API) or not, with the reason."""
    decided = set(IDS_LEAVE_THE_DATABASE) | set(IDS_STAY_INSIDE)
    assert _surrogate_id_tables() - decided == set()
    assert not set(IDS_LEAVE_THE_DATABASE) & set(IDS_STAY_INSIDE)


def test_the_tables_count_past_deleted_ids_in_the_database_itself(app):
    with app.app_context():
        dialect = db.engine.dialect.name
        with db.engine.connect() as conn:
            for name in IDS_LEAVE_THE_DATABASE:
                if dialect == "sqlite":
                    sql = conn.execute(
                        text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name}
                    ).scalar()
                    assert "AUTOINCREMENT" in sql, name
                else:  # serial or identity: a sequence, which never goes back
                    column = next(c for c in inspect(conn).get_columns(name) if c["name"] == "id")
                    assert "nextval" in str(column.get("default")) or column.get("identity"), name


def test_a_forgotten_contacts_id_never_names_the_next_contact(app, client, owner):
    with app.app_context():
        account = db.session.get(Account, owner)
        _, key = api_keys.create_key(account, name="Shop", scope="read", actor=None, source="ui")
        gone = contacts.create_contact(account, "gone@example.com", first_name="Gone", source="ui")
        db.session.commit()
        gone_id = gone.id
        lifecycle.delete_contacts(account, [gone_id], actor=None, source="ui")  # audited by id
        db.session.commit()
        lifecycle.forget_contact(gone, actor=None, source="ui")
        db.session.commit()
        assert db.session.get(Contact, gone_id) is None  # erased: the newest row is gone
        new = contacts.create_contact(account, "new@example.com", first_name="New", source="ui")
        db.session.commit()
        new_id = new.id
    assert new_id > gone_id
    assert client.get(f"/a/acme/contacts/{gone_id}").status_code == 404
    api = client.get(f"/api/v1/contacts/{gone_id}", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 404
    with app.app_context():
        audited = db.session.scalar(
            db.select(AuditEvent.object_id).where(AuditEvent.action == "contacts.deleted")
        )
    assert audited == gone_id != new_id, "the audit entry names the removed person only"


def test_a_deleted_groups_id_never_names_the_next_group(app, owner):
    with app.app_context():
        account = db.session.get(Account, owner)
        old = contacts.create_group(account, "Old", actor=None, source="ui")
        db.session.commit()
        old_id = old.id
        contacts.delete_group(old, actor=None, source="ui")
        db.session.commit()
        assert db.session.get(Group, old_id) is None
        new = contacts.create_group(account, "New", actor=None, source="ui")
        db.session.commit()
        assert new.id > old_id


def test_ids_count_on_after_the_newest_rows_of_every_kind_are_gone(app, owner):
    """The raw rule for every listed table: delete the newest row, insert again, and the
    id is new (the account-owned tables through one account row each)."""
    with app.app_context():
        account = db.session.get(Account, owner)
        for _ in range(2):
            first = contacts.create_contact(account, "a@example.com", source="ui")
            db.session.commit()
            first_id = first.id
            db.session.delete(first)
            db.session.commit()
            again = contacts.create_contact(account, "a@example.com", source="ui")
            db.session.commit()
            assert again.id > first_id
            db.session.delete(again)
            db.session.commit()
