"""sweep_watermarks: how far the catch-up of term counts and suspicious rules has gone; marks by rating

Revision ID: 0025
Revises: 0024

The catch-up sweep (service/ratings/after_commit.py) walks the ratings in id order from
its watermark and counts the terms and runs the rules of those whose after-commit tasks
never ran (a broker down at intake). It starts at the ratings stored by now: older ones
are ``hcp insights rebuild``'s. The index of suspicious_marks by rating tells it which
ratings the rules have seen.
"""
from alembic import op
import sqlalchemy as sa


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'sweep_watermarks',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('last_id', BigId, nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_sweep_watermarks')),
    )
    op.execute("INSERT INTO sweep_watermarks (name, last_id) SELECT 'after_commit', COALESCE(MAX(id), 0) FROM ratings")
    op.create_index('ix_suspicious_marks_rating_id', 'suspicious_marks', ['rating_id'])


def downgrade():
    op.drop_index('ix_suspicious_marks_rating_id', table_name='suspicious_marks')
    op.drop_table('sweep_watermarks')
