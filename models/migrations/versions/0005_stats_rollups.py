"""stats rollups: daily counters of ratings and cases, kept by triggers

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-27

Three tables of the same counters at three grains (see models/stats.py) and the triggers
that keep them equal to the raw rows in the same transaction as every rating insert
and case change. PostgreSQL uses statement-level triggers with transition tables (one
sorted upsert per statement, so a 500-rating batch takes each rollup row's lock once
and in key order); SQLite uses row triggers (it has one writer at a time anyway).

The counter conditions below are a frozen copy of those in service/stats/rollup.py,
which rebuilds the tables from raw rows; the tests check the two agree.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0003'
branch_labels = None
depends_on = None

RATING_CONDITIONS = {
    "level_1": "{n}.level = 1",
    "level_2": "{n}.level = 2",
    "level_3": "{n}.level = 3",
    "level_4": "{n}.level = 4",
    "level_5": "{n}.level = 5",
    "bad_real_name": "{n}.negative AND {n}.real_name",
}
CASE_CONDITIONS = {
    "closed": "{x}.status = 'closed'",
    "closed_rectified": "{x}.status = 'closed' AND {x}.outcome = 'rectified'",
    "closed_explained": "{x}.status = 'closed' AND {x}.outcome = 'explained'",
    "closed_invalid": "{x}.status = 'closed' AND {x}.outcome = 'invalid'",
    "closed_on_time": "{x}.status = 'closed' AND {closed_day} <= {x}.close_due",
    "called_back": "{x}.contacted AND {r}.real_name",
    "satisfied_yes": "{x}.satisfied",
    "satisfied_known": "{x}.satisfied IS NOT NULL",
}
COUNTERS = list(RATING_CONDITIONS) + list(CASE_CONDITIONS)
GRAINS = {
    "stats_daily": ("rated_date", "department_id", "channel"),
    "stats_monthly": ("month", "department_id", "channel"),
    "stats_daily_detail": ("rated_date", "department_id", "channel", "item_id", "window", "staff_no"),
}
# The rollup key from a ratings row: NULL item/window/staff become 0/'' so the key is unique.
KEY_EXPR = {
    "rated_date": "{r}.rated_date", "department_id": "{r}.department_id", "channel": "{r}.channel",
    "item_id": "COALESCE({r}.item_id, 0)", "window": "COALESCE({r}.\"window\", '')",
    "staff_no": "COALESCE({r}.staff_no, '')",
    "month": {"postgresql": "date_trunc('month', {r}.rated_date)::date",
              "sqlite": "date({r}.rated_date, 'start of month')"},
}


def _key(k: str, r: str, dialect: str) -> str:
    expr = KEY_EXPR[k]
    return (expr[dialect] if isinstance(expr, dict) else expr).format(r=r)


def _q(name: str) -> str:
    return '"window"' if name == "window" else name


def _flag(cond: str) -> str:
    return f"CASE WHEN {cond} THEN 1 ELSE 0 END"


def _closed_day(dialect: str, x: str) -> str:
    # closed_at's Asia/Shanghai date; SQLite keeps naive UTC text, and Shanghai is UTC+8 all year.
    if dialect == "postgresql":
        return f"({x}.closed_at AT TIME ZONE 'Asia/Shanghai')::date"
    return f"date({x}.closed_at, '+8 hours')"


def _upsert(table: str, counters: list[str], select_sql: str, target: str = "") -> str:
    keys = GRAINS[table]
    cols = ", ".join(_q(c) for c in keys + tuple(counters))
    sets = ", ".join(f"{c} = {target}{c} + excluded.{c}" for c in counters)
    return (f"INSERT INTO {table} {'AS s ' if target else ''}({cols}) {select_sql} "
            f"ON CONFLICT ({', '.join(_q(k) for k in keys)}) DO UPDATE SET {sets}")


def _pg_statements() -> list[str]:
    rating_fn, case_ins_fn, case_upd_fn = [], [], []
    for table, keys in GRAINS.items():
        key_sel = ", ".join(_key(k, "n", "postgresql") for k in keys)
        group = ", ".join(str(i + 1) for i in range(len(keys)))
        sums = ", ".join(f"count(*) FILTER (WHERE {c.format(n='n')})" for c in RATING_CONDITIONS.values())
        rating_fn.append(_upsert(table, list(RATING_CONDITIONS),
                                 f"SELECT {key_sel}, {sums} FROM new_rows n GROUP BY {group} ORDER BY {group}",
                                 target="s."))
        for fn, sources in ((case_ins_fn, [("new_rows", 1)]), (case_upd_fn, [("new_rows", 1), ("old_rows", -1)])):
            parts = " UNION ALL ".join(
                f"SELECT {sign} AS sign, rating_id, status, outcome, closed_at, close_due, contacted, satisfied FROM {src}"
                for src, sign in sources)
            key_sel_r = ", ".join(_key(k, "r", "postgresql") for k in keys)
            deltas = [f"sum(d.sign * {_flag(c.format(x='d', r='r', closed_day=_closed_day('postgresql', 'd')))})"
                      for c in CASE_CONDITIONS.values()]
            having = " OR ".join(f"{d} <> 0" for d in deltas)
            fn.append(_upsert(table, list(CASE_CONDITIONS),
                              f"SELECT {key_sel_r}, {', '.join(deltas)} FROM ({parts}) d "
                              f"JOIN ratings r ON r.id = d.rating_id GROUP BY {group} HAVING {having} "
                              f"ORDER BY {group}", target="s."))

    open_keys = GRAINS["stats_daily_detail"]
    open_cols = ", ".join(_q(k) for k in open_keys + ("close_due", "warning", "open_cases"))
    open_conflict = ", ".join(_q(k) for k in open_keys + ("close_due", "warning"))
    open_key_sel = ", ".join(_key(k, "r", "postgresql") for k in open_keys) + ", d.close_due, COALESCE(d.warning, '')"
    open_group = ", ".join(str(i + 1) for i in range(len(open_keys) + 2))
    for fn, sources in ((case_ins_fn, [("new_rows", 1)]), (case_upd_fn, [("new_rows", 1), ("old_rows", -1)])):
        parts = " UNION ALL ".join(f"SELECT {sign} AS sign, rating_id, close_due, warning FROM {src} "
                                   f"WHERE status <> 'closed'" for src, sign in sources)
        fn.append(f"INSERT INTO stats_open AS s ({open_cols}) SELECT {open_key_sel}, sum(d.sign) "
                  f"FROM ({parts}) d JOIN ratings r ON r.id = d.rating_id GROUP BY {open_group} "
                  f"HAVING sum(d.sign) <> 0 ORDER BY {open_group} "
                  f"ON CONFLICT ({open_conflict}) DO UPDATE SET open_cases = s.open_cases + excluded.open_cases")

    def function(name: str, body: list[str]) -> str:
        return (f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
                + "".join(f"  {stmt};\n" for stmt in body) + "  RETURN NULL;\nEND $$")

    return [
        function("hcp_stats_ratings_insert", rating_fn),
        function("hcp_stats_cases_insert", case_ins_fn),
        function("hcp_stats_cases_update", case_upd_fn),
        "CREATE TRIGGER hcp_stats_ratings_insert AFTER INSERT ON ratings REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION hcp_stats_ratings_insert()",
        "CREATE TRIGGER hcp_stats_cases_insert AFTER INSERT ON cases REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION hcp_stats_cases_insert()",
        "CREATE TRIGGER hcp_stats_cases_update AFTER UPDATE ON cases "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION hcp_stats_cases_update()",
    ]


def _sqlite_statements() -> list[str]:
    rating_body, case_ins_body, case_upd_body = [], [], []
    watched = ("status", "outcome", "closed_at", "close_due", "contacted", "satisfied")
    for table, keys in GRAINS.items():
        values = ", ".join([_key(k, "NEW", "sqlite") for k in keys]
                           + [_flag(c.format(n="NEW")) for c in RATING_CONDITIONS.values()])
        rating_body.append(_upsert(table, list(RATING_CONDITIONS), f"VALUES ({values})"))
        key_sel_r = ", ".join(_key(k, "r", "sqlite") for k in keys)

        def contribution(x: str) -> list[str]:
            return [_flag(c.format(x=x, r="r", closed_day=_closed_day("sqlite", x))) for c in CASE_CONDITIONS.values()]
        new, old = contribution("NEW"), contribution("OLD")
        case_ins_body.append(_upsert(table, list(CASE_CONDITIONS),
                                     f"SELECT {key_sel_r}, {', '.join(new)} FROM ratings r WHERE r.id = NEW.rating_id"))
        case_upd_body.append(_upsert(table, list(CASE_CONDITIONS),
                                     f"SELECT {key_sel_r}, {', '.join(f'({a}) - ({b})' for a, b in zip(new, old))} "
                                     f"FROM ratings r WHERE r.id = NEW.rating_id"))
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in watched)
    open_keys = GRAINS["stats_daily_detail"]
    open_cols = ", ".join(_q(k) for k in open_keys + ("close_due", "warning", "open_cases"))
    open_conflict = ", ".join(_q(k) for k in open_keys + ("close_due", "warning"))

    def open_upsert(x: str, sign: int) -> str:
        keys = ", ".join(_key(k, "r", "sqlite") for k in open_keys)
        return (f"INSERT INTO stats_open ({open_cols}) SELECT {keys}, {x}.close_due, COALESCE({x}.warning, ''), "
                f"{sign} FROM ratings r WHERE r.id = {x}.rating_id AND {x}.status <> 'closed' "
                f"ON CONFLICT ({open_conflict}) DO UPDATE SET open_cases = open_cases + excluded.open_cases")
    case_ins_body.append(open_upsert("NEW", 1))
    open_changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in ("status", "warning", "close_due"))

    def trigger(name: str, event: str, body: list[str], when: str = "") -> str:
        return (f"CREATE TRIGGER {name} AFTER {event} {'FOR EACH ROW WHEN ' + when if when else ''} BEGIN\n"
                + "".join(f"  {stmt};\n" for stmt in body) + "END")

    return [
        trigger("hcp_stats_ratings_insert", "INSERT ON ratings", rating_body),
        trigger("hcp_stats_cases_insert", "INSERT ON cases", case_ins_body),
        trigger("hcp_stats_cases_update", "UPDATE ON cases", case_upd_body, when=changed),
        trigger("hcp_stats_open_update", "UPDATE ON cases", [open_upsert("OLD", -1), open_upsert("NEW", 1)],
                when=open_changed),
    ]


def _counter_columns():
    return [sa.Column(c, sa.Integer(), server_default="0", nullable=False) for c in COUNTERS]


def upgrade():
    op.create_table(
        'stats_daily',
        sa.Column('rated_date', sa.Date(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        *_counter_columns(),
        sa.PrimaryKeyConstraint('rated_date', 'department_id', 'channel', name=op.f('pk_stats_daily')),
    )
    op.create_table(
        'stats_monthly',
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        *_counter_columns(),
        sa.PrimaryKeyConstraint('month', 'department_id', 'channel', name=op.f('pk_stats_monthly')),
    )
    op.create_table(
        'stats_daily_detail',
        sa.Column('rated_date', sa.Date(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('window', sa.String(length=64), nullable=False),
        sa.Column('staff_no', sa.String(length=64), nullable=False),
        *_counter_columns(),
        sa.PrimaryKeyConstraint('rated_date', 'department_id', 'channel', 'item_id', 'window', 'staff_no',
                                name=op.f('pk_stats_daily_detail')),
    )
    op.create_table(
        'stats_open',
        sa.Column('rated_date', sa.Date(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('window', sa.String(length=64), nullable=False),
        sa.Column('staff_no', sa.String(length=64), nullable=False),
        sa.Column('close_due', sa.Date(), nullable=False),
        sa.Column('warning', sa.String(length=8), nullable=False),
        sa.Column('open_cases', sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint('rated_date', 'department_id', 'channel', 'item_id', 'window', 'staff_no',
                                'close_due', 'warning', name=op.f('pk_stats_open')),
    )
    with op.batch_alter_table('stats_open', schema=None) as batch_op:
        batch_op.create_index('ix_stats_open_rated_date', ['rated_date'], unique=False,
                              postgresql_where=sa.text('open_cases <> 0'), sqlite_where=sa.text('open_cases <> 0'))
    dialect = op.get_bind().dialect.name
    for stmt in (_pg_statements() if dialect == "postgresql" else _sqlite_statements()):
        op.execute(stmt)
    # Ratings that exist before this migration are counted once, here.
    op.execute(_rebuild_sql(dialect))
    op.execute("INSERT INTO stats_daily (rated_date, department_id, channel, "
               + ", ".join(COUNTERS) + ") SELECT rated_date, department_id, channel, "
               + ", ".join(f"SUM({c})" for c in COUNTERS)
               + " FROM stats_daily_detail GROUP BY rated_date, department_id, channel")
    op.execute("INSERT INTO stats_monthly (month, department_id, channel, "
               + ", ".join(COUNTERS) + ") SELECT " + _key("month", "stats_daily", dialect)
               + ", department_id, channel, " + ", ".join(f"SUM({c})" for c in COUNTERS)
               + " FROM stats_daily GROUP BY 1, department_id, channel")
    keys = ", ".join(_key(k, "r", dialect) for k in GRAINS["stats_daily_detail"])
    op.execute("INSERT INTO stats_open (rated_date, department_id, channel, item_id, \"window\", staff_no, "
               "close_due, warning, open_cases) SELECT " + keys + ", c.close_due, COALESCE(c.warning, ''), "
               "count(*) FROM cases c JOIN ratings r ON r.id = c.rating_id WHERE c.status <> 'closed' "
               "GROUP BY " + ", ".join(str(i + 1) for i in range(8)))


def _rebuild_sql(dialect: str) -> str:
    keys = GRAINS["stats_daily_detail"]
    sums = [f"SUM({_flag(c.format(n='r'))})" for c in RATING_CONDITIONS.values()]
    sums += [f"SUM({_flag(c.format(x='c', r='r', closed_day=_closed_day(dialect, 'c')))})"
             for c in CASE_CONDITIONS.values()]
    cols = ", ".join(_q(c) for c in keys + tuple(COUNTERS))
    key_sel = ", ".join(KEY_EXPR[k].format(r="r") for k in keys)
    group = ", ".join(str(i + 1) for i in range(len(keys)))
    return (f"INSERT INTO stats_daily_detail ({cols}) SELECT {key_sel}, {', '.join(sums)} "
            f"FROM ratings r LEFT JOIN cases c ON c.rating_id = r.id GROUP BY {group}")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS hcp_stats_cases_update ON cases")
        op.execute("DROP TRIGGER IF EXISTS hcp_stats_cases_insert ON cases")
        op.execute("DROP TRIGGER IF EXISTS hcp_stats_ratings_insert ON ratings")
        for fn in ("hcp_stats_cases_update", "hcp_stats_cases_insert", "hcp_stats_ratings_insert"):
            op.execute(f"DROP FUNCTION IF EXISTS {fn}()")
    else:
        for trg in ("hcp_stats_open_update", "hcp_stats_cases_update", "hcp_stats_cases_insert",
                    "hcp_stats_ratings_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {trg}")
    with op.batch_alter_table('stats_open', schema=None) as batch_op:
        batch_op.drop_index('ix_stats_open_rated_date', postgresql_where=sa.text('open_cases <> 0'),
                            sqlite_where=sa.text('open_cases <> 0'))
    op.drop_table('stats_open')
    op.drop_table('stats_daily_detail')
    op.drop_table('stats_monthly')
    op.drop_table('stats_daily')
