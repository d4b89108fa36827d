"""devices.last_seen_at and device_pair_codes: device health and tablet pairing

Revision ID: 0021b
Revises: 0020
"""
from alembic import op
import sqlalchemy as sa


revision = '0021b'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('device_pair_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('issued_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_device_pair_codes_device_id_devices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device_pair_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_device_pair_codes_code_hash'))
    )
    with op.batch_alter_table('device_pair_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_pair_codes_device_id'), ['device_id'], unique=False)


def downgrade():
    op.drop_table('device_pair_codes')
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('last_seen_at')
