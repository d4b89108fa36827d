"""projects (办件, applicant encrypted and blind-indexed), invitations; ratings.invitation_id,
assess_number, followup_of, is_default

Revision ID: 0015b
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa

import models.types

revision = '0015b'
down_revision = '0013'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = models.types.UTCDateTime(timezone=True)


def upgrade():
    op.create_table('projects',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('project_no', sa.String(length=64), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=True),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('accepted_at', WHEN, nullable=True),
    sa.Column('done_at', WHEN, nullable=True),
    sa.Column('promised_at', WHEN, nullable=True),
    sa.Column('staff_no', sa.String(length=64), nullable=True),
    sa.Column('applicant_kind', sa.String(length=8), nullable=False),
    sa.Column('applicant_name_enc', sa.Text(), nullable=True),
    sa.Column('applicant_phone_enc', sa.Text(), nullable=True),
    sa.Column('applicant_name_masked', sa.String(length=64), nullable=True),
    sa.Column('applicant_phone_masked', sa.String(length=32), nullable=True),
    sa.Column('applicant_phone_index', sa.String(length=64), nullable=True),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('updated_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['service_items.id'], name=op.f('fk_projects_item_id_service_items')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_projects_department_id_departments')),
    sa.ForeignKeyConstraint(['client_id'], ['integration_clients.id'],
                            name=op.f('fk_projects_client_id_integration_clients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('project_no', name=op.f('uq_projects_project_no')),
    sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_projects_department_id'), 'projects', ['department_id'])
    op.create_index(op.f('ix_projects_applicant_phone_index'), 'projects', ['applicant_phone_index'])
    op.create_table('invitations',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('project_id', BIG_ID, nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('nonce', sa.String(length=32), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('stage_at', WHEN, nullable=False),
    sa.Column('expires_at', WHEN, nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_invitations_project_id_projects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_invitations_token_hash')),
    sa.UniqueConstraint('project_id', 'stage', name='uq_invitations_project_id_stage'),
    sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_invitations_expires_at'), 'invitations', ['expires_at'])
    # Plain ADD COLUMNs (no table rebuild on SQLite, which would drop the rollup triggers).
    op.add_column('ratings', sa.Column('invitation_id', BIG_ID, nullable=True))
    op.add_column('ratings', sa.Column('assess_number', sa.SmallInteger(), server_default='1', nullable=False))
    op.add_column('ratings', sa.Column('followup_of', BIG_ID, nullable=True))
    op.add_column('ratings', sa.Column('is_default', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index('ix_ratings_invitation_id', 'ratings', ['invitation_id'],
                    postgresql_where=sa.text('invitation_id IS NOT NULL'),
                    sqlite_where=sa.text('invitation_id IS NOT NULL'))


def downgrade():
    op.drop_index('ix_ratings_invitation_id', table_name='ratings')
    with op.batch_alter_table('ratings') as batch:
        for name in ('is_default', 'followup_of', 'assess_number', 'invitation_id'):
            batch.drop_column(name)
    op.drop_index(op.f('ix_invitations_expires_at'), table_name='invitations')
    op.drop_table('invitations')
    op.drop_index(op.f('ix_projects_applicant_phone_index'), table_name='projects')
    op.drop_index(op.f('ix_projects_department_id'), table_name='projects')
    op.drop_table('projects')
