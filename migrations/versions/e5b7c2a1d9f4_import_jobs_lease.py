"""import jobs: lease (fencing token of the worker that writes the import)

Revision ID: e5b7c2a1d9f4
Revises: 21ac1c2d83f6
Create Date: 2026-12-01 20:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e5b7c2a1d9f4'
down_revision = '21ac1c2d83f6'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.drop_column('lease')
