"""backup restores (confirmed restores with their counts); imports into an empty group

Revision ID: 5c1e9a7d3b20
Revises: 5a1e2b3c4d5e
Create Date: 2026-12-05 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import portal.database


# revision identifiers, used by Alembic.
revision = '5c1e9a7d3b20'
down_revision = '5a1e2b3c4d5e'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('backup_restores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('backup_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('group_name', sa.String(length=200), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', portal.database.UTCDateTime(), nullable=False),
    sa.Column('finished_at', portal.database.UTCDateTime(), nullable=True),
    sa.Column('expected', sa.JSON(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('changed_meanwhile', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['backup_id'], ['backups.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    # its id goes into queued jobs: never reused (portal/database.py)
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('backup_restores', schema=None) as batch_op:
        batch_op.create_index('ix_backup_restores_backup', ['backup_id'], unique=False)
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('group_was_empty', sa.Boolean(), server_default='0', nullable=False)
        )


def downgrade():
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.drop_column('group_was_empty')
    with op.batch_alter_table('backup_restores', schema=None) as batch_op:
        batch_op.drop_index('ix_backup_restores_backup')
    op.drop_table('backup_restores')
