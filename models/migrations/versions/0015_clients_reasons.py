"""integration_clients; reason_versions and reasons; ratings.reasons

Revision ID: 0015
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa

import models.types


revision = '0015'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('integration_clients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('callback_url', sa.String(length=500), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'],
                            name=op.f('fk_integration_clients_department_id_departments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integration_clients')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_integration_clients_key_hash'))
    )
    op.create_index(op.f('ix_integration_clients_department_id'), 'integration_clients', ['department_id'])
    op.create_table('reason_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.Column('imported_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reason_versions'))
    )
    op.create_table('reasons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('dimension', sa.String(length=50), nullable=False),
    sa.Column('scope', sa.String(length=8), nullable=False),
    sa.Column('levels', sa.String(length=5), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['reason_versions.id'], name=op.f('fk_reasons_version_id_reason_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reasons')),
    sa.UniqueConstraint('version_id', 'code', name='uq_reasons_version_id_code')
    )
    op.create_index(op.f('ix_reasons_version_id'), 'reasons', ['version_id'])
    with op.batch_alter_table('ratings') as batch:
        batch.add_column(sa.Column('reasons', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('ratings') as batch:
        batch.drop_column('reasons')
    op.drop_index(op.f('ix_reasons_version_id'), table_name='reasons')
    op.drop_table('reasons')
    op.drop_table('reason_versions')
    op.drop_index(op.f('ix_integration_clients_department_id'), table_name='integration_clients')
    op.drop_table('integration_clients')
