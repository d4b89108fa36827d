"""departments.notify_webhook_secret_enc: a DingTalk robot's signing secret (加签), encrypted

Revision ID: 0009
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('departments') as batch:
        batch.add_column(sa.Column('notify_webhook_secret_enc', sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table('departments') as batch:
        batch.drop_column('notify_webhook_secret_enc')
