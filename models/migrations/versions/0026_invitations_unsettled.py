"""invitations_unsettled: the default-rating sweep's queue, in place of invitations.settled_at

Revision ID: 0026
Revises: 0025

An invitation without a first rating has a row here (its expiry, id and project), deleted
when the first rating is made; the sweep reads the due ones off the primary key in its
order. Marking ``invitations.settled_at`` instead wrote a new version of each invitation
into all of its indexes (non-HOT: the column was in the partial index's predicate), half
the sweep's time at 1,000,000 invitations. The unsettled invitations move over; the
column and its partial index go.
"""
from alembic import op
import sqlalchemy as sa

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'invitations_unsettled',
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('invitation_id', BigId, nullable=False),
        sa.Column('project_id', BigId, nullable=False),
        sa.ForeignKeyConstraint(['invitation_id'], ['invitations.id'],
                                name=op.f('fk_invitations_unsettled_invitation_id_invitations')),
        sa.PrimaryKeyConstraint('expires_at', 'invitation_id', name=op.f('pk_invitations_unsettled')),
    )
    op.execute("INSERT INTO invitations_unsettled (expires_at, invitation_id, project_id) "
               "SELECT expires_at, id, project_id FROM invitations WHERE settled_at IS NULL")
    op.drop_index('ix_invitations_unsettled', table_name='invitations')
    op.drop_column('invitations', 'settled_at')


def downgrade():
    op.add_column('invitations', sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE invitations SET settled_at = created_at WHERE id NOT IN "
               "(SELECT invitation_id FROM invitations_unsettled)")
    op.create_index('ix_invitations_unsettled', 'invitations', ['expires_at', 'id'],
                    postgresql_where=sa.text('settled_at IS NULL'), sqlite_where=sa.text('settled_at IS NULL'))
    op.drop_table('invitations_unsettled')
