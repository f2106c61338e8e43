"""ids never reused: AUTOINCREMENT on SQLite for every table whose ids leave the database

SQLite without AUTOINCREMENT hands the id of the newest row out again once that row is
deleted: a card URL, an audit entry or a webhook that named a removed contact later
named another person. The tables are rebuilt with AUTOINCREMENT (batch mode: copy,
drop, rename, with foreign keys off, see migrations/env.py), and each table's counter
starts above every id it ever handed out that is still named somewhere (the audit log,
outgoing events), not only above the rows that are left. PostgreSQL: nothing to do, its
sequences never go back.

Revision ID: 0b7e3c9a1f24
Revises: 6ead2e05e5e1
Create Date: 2026-12-05 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0b7e3c9a1f24'
down_revision = '6ead2e05e5e1'
branch_labels = None
depends_on = None

# copied from portal.database.IDS_LEAVE_THE_DATABASE: a migration must not change
# when the code does
TABLES = (
    "accounts",
    "users",
    "memberships",
    "invitations",
    "api_keys",
    "audit_events",
    "staff_accesses",
    "contacts",
    "groups",
    "tags",
    "custom_fields",
    "import_jobs",
    "import_undos",
    "backups",
    "lifecycle_jobs",
    "provider_links",
    "tag_mappings",
    "integration_events",
    "sync_runs",
    "export_runs",
)

# where else an id of a table may still be named after its row is gone
TRACES = {
    "accounts": [("audit_events", "object_id", "object_type = 'account'")],
    "users": [
        ("audit_events", "object_id", "object_type = 'user'"),
        ("audit_events", "actor_id", "actor_type IN ('user', 'staff')"),
    ],
    "api_keys": [
        ("audit_events", "object_id", "object_type = 'api_key'"),
        ("audit_events", "actor_id", "actor_type = 'api_key'"),
    ],
    "backups": [("audit_events", "object_id", "object_type = 'backup'")],
    "contacts": [
        ("audit_events", "object_id", "object_type = 'contact'"),
        ("integration_events", "contact_id", "1 = 1"),
    ],
    "custom_fields": [("audit_events", "object_id", "object_type = 'custom_field'")],
    "export_runs": [("audit_events", "object_id", "object_type = 'export'")],
    "groups": [("audit_events", "object_id", "object_type = 'group'")],
    "import_jobs": [("audit_events", "object_id", "object_type = 'import'")],
    "invitations": [("audit_events", "object_id", "object_type = 'invitation'")],
    "lifecycle_jobs": [("audit_events", "object_id", "object_type = 'lifecycle_job'")],
    "provider_links": [("audit_events", "object_id", "object_type = 'provider_link'")],
    "staff_accesses": [("audit_events", "object_id", "object_type = 'staff_access'")],
}


def _rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "foreign keys are on: rebuilding a table would cascade its DROP into the rows "
            "that point at it (migrations/env.py turns them off for SQLite)"
        )
    for name in TABLES:
        with op.batch_alter_table(
            name, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    _rebuild(True)
    for name in TABLES:
        queries = [f"SELECT MAX(id) FROM {name}"]  # noqa: S608 - names are the constants above
        queries += [
            f"SELECT MAX({column}) FROM {table} WHERE {where}"  # noqa: S608
            for table, column, where in TRACES.get(name, [])
        ]
        highest = max((bind.exec_driver_sql(q).scalar() or 0 for q in queries), default=0)
        bind.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (name,))
        if highest:
            bind.exec_driver_sql(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, highest)
            )


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    _rebuild(False)
