"""invitations.settled_at with a partial index of the unsettled ones (the default-rating
sweep's scan); a partial index of default ratings by date (the summary's ``default``)

Revision ID: 0015c
Revises: 0015b
"""
from alembic import op
import sqlalchemy as sa

import models.types

revision = '0015c'
down_revision = '0015b'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('invitations', sa.Column('settled_at', models.types.UTCDateTime(timezone=True), nullable=True))
    op.drop_index('ix_invitations_expires_at', table_name='invitations')
    op.create_index('ix_invitations_unsettled', 'invitations', ['expires_at'],
                    postgresql_where=sa.text('settled_at IS NULL'), sqlite_where=sa.text('settled_at IS NULL'))
    op.create_index('ix_ratings_is_default_rated_date', 'ratings', ['rated_date'],
                    postgresql_where=sa.text('is_default'), sqlite_where=sa.text('is_default'))


def downgrade():
    op.drop_index('ix_ratings_is_default_rated_date', table_name='ratings')
    op.drop_index('ix_invitations_unsettled', table_name='invitations')
    op.create_index('ix_invitations_expires_at', 'invitations', ['expires_at'])
    with op.batch_alter_table('invitations') as batch:
        batch.drop_column('settled_at')
