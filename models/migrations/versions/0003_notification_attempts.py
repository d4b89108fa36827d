"""notification delivery attempts

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-26 23:10:00

Each delivery row of ``notifications`` counts its send attempts and keeps the last error,
so an operator can see why something did not go out, and the warning sweep can tell a
delivery that was never tried (its task was lost) from one Celery is still retrying.
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('last_error', sa.String(length=500), nullable=True))
        batch_op.create_index(batch_op.f('ix_notifications_sent_at'), ['sent_at'], unique=False)


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_sent_at'))
        batch_op.drop_column('last_error')
        batch_op.drop_column('attempts')
