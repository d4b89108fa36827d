"""Hall QR codes (扫码评价): devices.qr_code, qr_voters; an index of invitations by stage time

Revision ID: 0022
Revises: 0023

- ``devices.qr_code``: the short public code of a hall or window's fixed QR (``/q/{code}``),
  unique; filled here for the active qrcode devices already registered;
- ``qr_voters``: when each phone (a keyed hash of client address and cookie) last rated each
  window through its QR, for HCP_QR_MIN_MINUTES;
- ``ix_invitations_stage_at``: the 办件评价率's scan of the applications of a period.
"""
import secrets

from alembic import op
import sqlalchemy as sa

import models.types

revision = '0022'
down_revision = '0023'
branch_labels = None
depends_on = None

# A frozen copy of service.org.new_qr_code's alphabet: no 0/o, 1/l/i.
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"


def upgrade():
    op.add_column('devices', sa.Column('qr_code', sa.String(length=16), nullable=True))
    op.create_index('ix_devices_qr_code', 'devices', ['qr_code'], unique=True)
    bind = op.get_bind()
    devices = sa.table('devices', sa.column('id', sa.Integer), sa.column('qr_code', sa.String),
                       sa.column('channel', sa.String), sa.column('active', sa.Boolean))
    for (device_id,) in bind.execute(sa.select(devices.c.id).where(devices.c.channel == 'qrcode',
                                                                   devices.c.active.is_(True))).all():
        code = "".join(secrets.choice(ALPHABET) for _ in range(8))
        bind.execute(sa.update(devices).where(devices.c.id == device_id).values(qr_code=code))
    op.create_table('qr_voters',
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('voter', sa.String(length=64), nullable=False),
    sa.Column('rated_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_qr_voters_device_id_devices')),
    sa.PrimaryKeyConstraint('device_id', 'voter', name=op.f('pk_qr_voters'))
    )
    op.create_index('ix_invitations_stage_at', 'invitations', ['stage_at'])


def downgrade():
    op.drop_index('ix_invitations_stage_at', table_name='invitations')
    op.drop_table('qr_voters')
    op.drop_index('ix_devices_qr_code', table_name='devices')
    with op.batch_alter_table('devices') as batch:
        batch.drop_column('qr_code')
