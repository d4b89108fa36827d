"""route_resends: the routing sweep's backoff per unrouted bad rating

Revision ID: 0007
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

import models.types


revision = '0007'
down_revision = '0005'  # chained after main's latest when merged; was 0001
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('route_resends',
    sa.Column('rating_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['rating_id'], ['ratings.id'], name=op.f('fk_route_resends_rating_id_ratings')),
    sa.PrimaryKeyConstraint('rating_id', name=op.f('pk_route_resends'))
    )


def downgrade():
    op.drop_table('route_resends')
