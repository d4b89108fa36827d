"""suspicious ratings: the rules' marks, flags, their ratings and history; ratings.excluded_at

Revision ID: 0023
Revises: 0021c
"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0021c'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('suspicious_marks',
    sa.Column('rule', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('window', sa.String(length=32), nullable=False),
    sa.Column('rating_id', BigId, nullable=False),
    sa.Column('group_key', sa.String(length=120), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('rule', 'key', 'window', 'rating_id', name=op.f('pk_suspicious_marks'))
    )
    op.create_index('ix_suspicious_marks_expires_at', 'suspicious_marks', ['expires_at'])
    op.create_table('suspicious_flags',
    sa.Column('id', BigId, nullable=False),
    sa.Column('rule', sa.String(length=16), nullable=False),
    sa.Column('group_key', sa.String(length=120), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('confirmed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_suspicious_flags_department_id_departments')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_suspicious_flags_decided_by_id_users')),
    sa.ForeignKeyConstraint(['confirmed_by_id'], ['users.id'], name=op.f('fk_suspicious_flags_confirmed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suspicious_flags')),
    sa.UniqueConstraint('rule', 'group_key', 'department_id', 'generation',
                        name=op.f('uq_suspicious_flags_rule')),
    sqlite_autoincrement=True,
    )
    op.create_index('ix_suspicious_flags_department_id', 'suspicious_flags', ['department_id'])
    op.create_index('ix_suspicious_flags_state', 'suspicious_flags', ['state'])
    op.create_table('suspicious_flag_ratings',
    sa.Column('flag_id', BigId, nullable=False),
    sa.Column('rating_id', BigId, nullable=False),
    sa.ForeignKeyConstraint(['flag_id'], ['suspicious_flags.id'], name=op.f('fk_suspicious_flag_ratings_flag_id_suspicious_flags')),
    sa.ForeignKeyConstraint(['rating_id'], ['ratings.id'], name=op.f('fk_suspicious_flag_ratings_rating_id_ratings')),
    sa.PrimaryKeyConstraint('flag_id', 'rating_id', name=op.f('pk_suspicious_flag_ratings'))
    )
    op.create_index('ix_suspicious_flag_ratings_rating_id', 'suspicious_flag_ratings', ['rating_id'])
    op.create_table('suspicious_flag_events',
    sa.Column('id', BigId, nullable=False),
    sa.Column('flag_id', BigId, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('from_state', sa.String(length=16), nullable=True),
    sa.Column('to_state', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('ratings', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['flag_id'], ['suspicious_flags.id'], name=op.f('fk_suspicious_flag_events_flag_id_suspicious_flags')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_suspicious_flag_events_actor_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suspicious_flag_events')),
    sqlite_autoincrement=True,
    )
    op.create_index('ix_suspicious_flag_events_flag_id', 'suspicious_flag_events', ['flag_id'])
    # A nullable column without a default: no table rewrite on PostgreSQL.
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('excluded_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_ratings_excluded_rated_date', 'ratings', ['rated_date'],
                    postgresql_where=sa.text('excluded_at IS NOT NULL'), sqlite_where=sa.text('excluded_at IS NOT NULL'))


def downgrade():
    op.drop_index('ix_ratings_excluded_rated_date', table_name='ratings')
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.drop_column('excluded_at')
    op.drop_table('suspicious_flag_events')
    op.drop_table('suspicious_flag_ratings')
    op.drop_table('suspicious_flags')
    op.drop_table('suspicious_marks')
