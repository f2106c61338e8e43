"""import_before_images: an index on contact_id

Deleting a contact (an undo removing the contacts an import created, the nightly purge,
"forget me") makes the database find the contact's before-images by contact_id, for the
ON DELETE CASCADE. The primary key (import_id, contact_id) cannot answer that, so every
deleted contact read the whole table: the undo of a 100,000-line import took 119 s
instead of 4 s (docs/BENCHMARKS.md).

Revision ID: b8e4f1a7c3d2
Revises: 9d3f2b7c1e08
Create Date: 2026-12-05 16:45:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b8e4f1a7c3d2'
down_revision = '9d3f2b7c1e08'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('import_before_images', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_import_before_images_contact_id'), ['contact_id'], unique=False
        )


def downgrade():
    with op.batch_alter_table('import_before_images', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_before_images_contact_id'))
