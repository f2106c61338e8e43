"""contacts: search anywhere (pg_trgm) and sorting indexes, PostgreSQL only

Revision ID: c7e1f3a9b2d4
Revises: 5c1e9a7d3b20
Create Date: 2026-12-05 10:20:00

The contact list finds a part of the address or the name anywhere. PostgreSQL serves
`LIKE '%neu%'` from trigram indexes (pg_trgm, GIN) and sorts by address or name from
btree indexes in the database's collation. SQLite gets none of them: its LIKE scans
anyway, and its imports should not pay for indexes it cannot use.

The indexes are built CONCURRENTLY (outside the migration's transaction), so that a
production database with millions of contacts keeps taking writes while they build.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "c7e1f3a9b2d4"
down_revision = "5c1e9a7d3b20"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_contacts_email_trgm", "USING gin (email gin_trgm_ops)"),
    ("ix_contacts_search_name_trgm", "USING gin (search_name gin_trgm_ops)"),
    ("ix_contacts_account_email_sort", "(account_id, email, id)"),
    ("ix_contacts_account_name_sort", "(account_id, search_name, id)"),
)


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with op.get_context().autocommit_block():
        for name, definition in INDEXES:
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON contacts {definition}")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for name, _definition in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
