"""file store for every area: uploads and exports keep a key and a sha256

Uploaded lists (import_jobs) and exports (export_runs) move into the file store
(portal/core/storage.py, issue 18): their rows now hold the file's key in the store
(`<account_id>/<name>`, under instance/imports and instance/exports on the folder store,
where the files already lie) instead of an absolute path, and the sha256 of the stored
bytes, which every read verifies. Rows written before keep "" as checksum (not
verified); their paths are turned into keys here.

Revision ID: 9d3f2b7c1e08
Revises: 65691fd4e155
Create Date: 2026-12-05 13:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9d3f2b7c1e08'
down_revision = '65691fd4e155'
branch_labels = None
depends_on = None


def _key(path: str) -> str:
    """`/srv/portal/instance/imports/3/abc.csv` → `3/abc.csv`."""
    parts = path.replace("\\", "/").rstrip("/").split("/")
    return "/".join(parts[-2:])


def _paths_to_keys(table: str, column: str) -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(f"SELECT id, {column} FROM {table} WHERE {column} LIKE '%/%/%'")
    ).all()
    for row_id, path in rows:
        conn.execute(
            sa.text(f"UPDATE {table} SET {column} = :key WHERE id = :id"),
            {"key": _key(path), "id": row_id},
        )


def upgrade():
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('file_sha256', sa.String(length=64), server_default='', nullable=False)
        )
    with op.batch_alter_table('export_runs', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('sha256', sa.String(length=64), server_default='', nullable=False)
        )
    _paths_to_keys('import_jobs', 'stored_path')
    _paths_to_keys('export_runs', 'path')


def downgrade():
    with op.batch_alter_table('export_runs', schema=None) as batch_op:
        batch_op.drop_column('sha256')
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.drop_column('file_sha256')
