"""exchange_outbox (上报 records owed upstream or to a source), exchange_sources (where an
inbound rating came from) and departments.credit_code

Revision ID: 0020
Revises: 0021
"""
from alembic import op
import sqlalchemy as sa

import models.types

revision = '0020'
down_revision = '0021'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('exchange_outbox',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('rating_id', BIG_ID, nullable=False),
    sa.Column('case_id', BIG_ID, nullable=True),
    sa.Column('client_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=10), server_default='pending', nullable=False),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('sent_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exchange_outbox')),
    sa.UniqueConstraint('record_id', name=op.f('uq_exchange_outbox_record_id')),
    sqlite_autoincrement=True,
    )
    op.create_index('ix_exchange_outbox_pending', 'exchange_outbox', ['due_at', 'id'],
                    postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
    op.create_index('ix_exchange_outbox_refused', 'exchange_outbox', ['status'],
                    postgresql_where=sa.text("status IN ('rejected', 'held')"),
                    sqlite_where=sa.text("status IN ('rejected', 'held')"))
    op.create_table('exchange_sources',
    sa.Column('rating_id', BIG_ID, autoincrement=False, nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('rating_id', name=op.f('pk_exchange_sources')),
    )
    op.add_column('departments', sa.Column('credit_code', sa.String(length=18), nullable=True))


def downgrade():
    with op.batch_alter_table('departments') as batch:
        batch.drop_column('credit_code')
    op.drop_table('exchange_sources')
    op.drop_index('ix_exchange_outbox_refused', table_name='exchange_outbox')
    op.drop_index('ix_exchange_outbox_pending', table_name='exchange_outbox')
    op.drop_table('exchange_outbox')
