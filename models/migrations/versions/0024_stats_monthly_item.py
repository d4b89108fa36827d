"""stats_monthly_item: ratings per level per (month, department, item), kept by an insert trigger

Revision ID: 0024
Revises: 0022b

The hot spots' anomaly test reads a year per item from a dozen months of this table instead
of every day of stats_daily_detail (docs/insights.md). Its own trigger on ratings (statement
level with a transition table on PostgreSQL, one sorted upsert per statement; a row trigger
on SQLite), so the triggers of 0005/0013 are not touched. Filled from the ratings that are
not excluded; service/stats/rollup.py rebuilds, checks and adjusts it like the other grains.
"""
from alembic import op
import sqlalchemy as sa


revision = '0024'
down_revision = '0022b'
branch_labels = None
depends_on = None

LEVELS = ("level_1", "level_2", "level_3", "level_4", "level_5")
KEYS = "month, department_id, item_id"
MONTH = {"postgresql": "date_trunc('month', {r}.rated_date)::date", "sqlite": "date({r}.rated_date, 'start of month')"}


def _upsert(select_sql: str, target: str) -> str:
    sets = ", ".join(f"{c} = {target}{c} + excluded.{c}" for c in LEVELS)
    return (f"INSERT INTO stats_monthly_item {'AS s ' if target else ''}({KEYS}, {', '.join(LEVELS)}) {select_sql} "
            f"ON CONFLICT ({KEYS}) DO UPDATE SET {sets}")


def upgrade():
    dialect = op.get_bind().dialect.name
    op.create_table(
        'stats_monthly_item',
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        *[sa.Column(c, sa.Integer(), server_default="0", nullable=False) for c in LEVELS],
        sa.PrimaryKeyConstraint('month', 'department_id', 'item_id', name=op.f('pk_stats_monthly_item')),
    )
    month = MONTH[dialect]
    if dialect == "postgresql":
        sums = ", ".join(f"count(*) FILTER (WHERE n.level = {i + 1})" for i in range(5))
        body = _upsert(f"SELECT {month.format(r='n')}, n.department_id, COALESCE(n.item_id, 0), {sums} "
                       f"FROM new_rows n GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", target="s.")
        op.execute("CREATE OR REPLACE FUNCTION hcp_stats_item_monthly_insert() RETURNS trigger LANGUAGE plpgsql "
                   f"AS $$\nBEGIN\n  {body};\n  RETURN NULL;\nEND $$")
        op.execute("CREATE TRIGGER hcp_stats_item_monthly_insert AFTER INSERT ON ratings "
                   "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hcp_stats_item_monthly_insert()")
    else:
        flags = ", ".join(f"CASE WHEN NEW.level = {i + 1} THEN 1 ELSE 0 END" for i in range(5))
        body = _upsert(f"VALUES ({month.format(r='NEW')}, NEW.department_id, COALESCE(NEW.item_id, 0), {flags})",
                       target="")
        op.execute(f"CREATE TRIGGER hcp_stats_item_monthly_insert AFTER INSERT ON ratings BEGIN\n  {body};\nEND")
    sums = ", ".join(f"SUM(CASE WHEN r.level = {i + 1} THEN 1 ELSE 0 END)" for i in range(5))
    op.execute(f"INSERT INTO stats_monthly_item ({KEYS}, {', '.join(LEVELS)}) "
               f"SELECT {month.format(r='r')}, r.department_id, COALESCE(r.item_id, 0), {sums} "
               f"FROM ratings r WHERE r.excluded_at IS NULL GROUP BY 1, 2, 3")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS hcp_stats_item_monthly_insert ON ratings")
        op.execute("DROP FUNCTION IF EXISTS hcp_stats_item_monthly_insert()")
    else:
        op.execute("DROP TRIGGER IF EXISTS hcp_stats_item_monthly_insert")
    op.drop_table('stats_monthly_item')
