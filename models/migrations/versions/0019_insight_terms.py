"""insight_terms, insight_terms_monthly and insight_counted: the hot spots' term counts

Revision ID: 0019
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('insight_terms',
    sa.Column('rated_date', sa.Date(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('term', sa.String(length=32), nullable=False),
    sa.Column('ratings', sa.Integer(), server_default='0', nullable=False),
    sa.Column('bad', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('rated_date', 'department_id', 'item_id', 'term', name=op.f('pk_insight_terms'))
    )
    op.create_index('ix_insight_terms_term_date', 'insight_terms', ['term', 'rated_date'])
    op.create_table('insight_terms_monthly',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('term', sa.String(length=32), nullable=False),
    sa.Column('ratings', sa.Integer(), server_default='0', nullable=False),
    sa.Column('bad', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('month', 'department_id', 'term', name=op.f('pk_insight_terms_monthly'))
    )
    op.create_table('insight_counted',
    sa.Column('rating_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('rating_id', name=op.f('pk_insight_counted'))
    )


def downgrade():
    op.drop_table('insight_counted')
    op.drop_table('insight_terms_monthly')
    op.drop_index('ix_insight_terms_term_date', table_name='insight_terms')
    op.drop_table('insight_terms')
