"""The default sweep's indexes: unsettled invitations in its order; one rating per
(invitation, assessment number)

Revision ID: 0022b
Revises: 0022

- ``ix_invitations_unsettled`` on (expires_at, id), the sweep's order, so a batch reads its
  rows off the index instead of sorting every due invitation;
- ``ux_ratings_invitation_assess``: one rating per (invitation, assess_number), unique,
  replacing the plain index on ``invitation_id``; the sweep's ON CONFLICT relies on it.
"""
from alembic import op
import sqlalchemy as sa

revision = '0022b'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index('ix_invitations_unsettled', table_name='invitations')
    op.create_index('ix_invitations_unsettled', 'invitations', ['expires_at', 'id'],
                    postgresql_where=sa.text('settled_at IS NULL'), sqlite_where=sa.text('settled_at IS NULL'))
    op.drop_index('ix_ratings_invitation_id', table_name='ratings')
    op.create_index('ux_ratings_invitation_assess', 'ratings', ['invitation_id', 'assess_number'], unique=True,
                    postgresql_where=sa.text('invitation_id IS NOT NULL'),
                    sqlite_where=sa.text('invitation_id IS NOT NULL'))


def downgrade():
    op.drop_index('ux_ratings_invitation_assess', table_name='ratings')
    op.create_index('ix_ratings_invitation_id', 'ratings', ['invitation_id'],
                    postgresql_where=sa.text('invitation_id IS NOT NULL'),
                    sqlite_where=sa.text('invitation_id IS NOT NULL'))
    op.drop_index('ix_invitations_unsettled', table_name='invitations')
    op.create_index('ix_invitations_unsettled', 'invitations', ['expires_at'],
                    postgresql_where=sa.text('settled_at IS NULL'), sqlite_where=sa.text('settled_at IS NULL'))
