"""accounts: a sender address, used once verified

The sign-up confirmation comes from the account's own address once a mail to that
address was answered (issue 17, point 10).

Revision ID: 5a1e2b3c4d5e
Revises: 8f6635b7d4d7
Create Date: 2026-12-05 10:00:00

"""
from alembic import op
import sqlalchemy as sa

import portal.database


# revision identifiers, used by Alembic.
revision = '5a1e2b3c4d5e'
down_revision = '8f6635b7d4d7'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sender_email', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('sender_email_pending', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('sender_token_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('sender_requested_at', portal.database.UTCDateTime(), nullable=True))
        batch_op.create_unique_constraint('uq_accounts_sender_token_hash', ['sender_token_hash'])


def downgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_constraint('uq_accounts_sender_token_hash', type_='unique')
        batch_op.drop_column('sender_requested_at')
        batch_op.drop_column('sender_token_hash')
        batch_op.drop_column('sender_email_pending')
        batch_op.drop_column('sender_email')
