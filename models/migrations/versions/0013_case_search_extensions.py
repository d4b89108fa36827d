"""cases: computed red/yellow cards, anonymous ratings without a callback, 延期, search by phone

Revision ID: 0013
Revises: 0015

- ``cases.warning`` is dropped: the card is computed when asked (service/cases/warnings.py),
  so no filter or KPI can read a value the beat wrote minutes ago;
- ``cases.callback_due`` may be NULL: an anonymous rating has nobody to call back (set
  NULL here for the existing anonymous cases);
- ``cases.extension_days`` / ``extended_at``: one extension (延期) per case;
- ``ratings.rater_phone_index``: the keyed blind index of the rater's phone
  (service.privacy.blind_index), filled here for the existing ratings, and an index on
  ``project_no``, for case search without decrypting rows;
- the rollups gain the ``extended`` counter, and ``stats_open`` keeps each open case's next
  deadline (``deadline``, ``due``) instead of a stored card; the triggers are recreated.

The trigger conditions below are a frozen copy of service/stats/rollup.py at this
revision (0005 holds the earlier copy); the tests check the two agree.
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0015'
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
    "extended": "{x}.extended_at IS NOT NULL",
}
COUNTERS = list(RATING_CONDITIONS) + list(CASE_CONDITIONS)
GRAINS = {
    "stats_daily": ("rated_date", "department_id", "channel"),
    "stats_monthly": ("month", "department_id", "channel"),
    "stats_daily_detail": ("rated_date", "department_id", "channel", "item_id", "window", "staff_no"),
}
KEY_EXPR = {
    "rated_date": "{r}.rated_date", "department_id": "{r}.department_id", "channel": "{r}.channel",
    "item_id": "COALESCE({r}.item_id, 0)", "window": "COALESCE({r}.\"window\", '')",
    "staff_no": "COALESCE({r}.staff_no, '')",
    "month": {"postgresql": "date_trunc('month', {r}.rated_date)::date",
              "sqlite": "date({r}.rated_date, 'start of month')"},
}
# The next open deadline of a case row {x}: the callback while waiting for it (real-name
# raters only), else the closure deadline (service.cases.warnings.next_deadline).
WAITING = "{x}.status IN ('unassigned', 'assigned') AND {x}.callback_due IS NOT NULL"
DEADLINE = f"CASE WHEN {WAITING} THEN 'callback' ELSE 'close' END"
DUE = f"CASE WHEN {WAITING} THEN {{x}}.callback_due ELSE {{x}}.close_due END"
OPEN_KEYS = GRAINS["stats_daily_detail"]
OPEN_COLS = ", ".join(('"window"' if k == "window" else k) for k in OPEN_KEYS + ("close_due", "deadline", "due"))
CASE_COLUMNS = ("status", "outcome", "closed_at", "close_due", "callback_due", "contacted", "satisfied",
                "extended_at")


def _key(k, r, dialect):
    expr = KEY_EXPR[k]
    return (expr[dialect] if isinstance(expr, dict) else expr).format(r=r)


def _q(name):
    return '"window"' if name == "window" else name


def _flag(cond):
    return f"CASE WHEN {cond} THEN 1 ELSE 0 END"


def _closed_day(dialect, x):
    if dialect == "postgresql":
        return f"({x}.closed_at AT TIME ZONE 'Asia/Shanghai')::date"
    return f"date({x}.closed_at, '+8 hours')"


def _upsert(table, counters, select_sql, target=""):
    keys = GRAINS[table]
    cols = ", ".join(_q(c) for c in keys + tuple(counters))
    sets = ", ".join(f"{c} = {target}{c} + excluded.{c}" for c in counters)
    return (f"INSERT INTO {table} {'AS s ' if target else ''}({cols}) {select_sql} "
            f"ON CONFLICT ({', '.join(_q(k) for k in keys)}) DO UPDATE SET {sets}")


def _pg_statements():
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
                f"SELECT {sign} AS sign, rating_id, {', '.join(CASE_COLUMNS)} FROM {src}" for src, sign in sources)
            key_sel_r = ", ".join(_key(k, "r", "postgresql") for k in keys)
            deltas = [f"sum(d.sign * {_flag(c.format(x='d', r='r', closed_day=_closed_day('postgresql', 'd')))})"
                      for c in CASE_CONDITIONS.values()]
            having = " OR ".join(f"{d} <> 0" for d in deltas)
            fn.append(_upsert(table, list(CASE_CONDITIONS),
                              f"SELECT {key_sel_r}, {', '.join(deltas)} FROM ({parts}) d "
                              f"JOIN ratings r ON r.id = d.rating_id GROUP BY {group} HAVING {having} "
                              f"ORDER BY {group}", target="s."))

    open_conflict = OPEN_COLS
    open_key_sel = ", ".join(_key(k, "r", "postgresql") for k in OPEN_KEYS) + ", d.close_due, d.deadline, d.due"
    open_group = ", ".join(str(i + 1) for i in range(len(OPEN_KEYS) + 3))
    for fn, sources in ((case_ins_fn, [("new_rows", 1)]), (case_upd_fn, [("new_rows", 1), ("old_rows", -1)])):
        parts = " UNION ALL ".join(
            f"SELECT {sign} AS sign, rating_id, close_due, {DEADLINE.format(x=src)} AS deadline, "
            f"{DUE.format(x=src)} AS due FROM {src} WHERE status <> 'closed'" for src, sign in sources)
        fn.append(f"INSERT INTO stats_open AS s ({OPEN_COLS}, open_cases) SELECT {open_key_sel}, sum(d.sign) "
                  f"FROM ({parts}) d JOIN ratings r ON r.id = d.rating_id GROUP BY {open_group} "
                  f"HAVING sum(d.sign) <> 0 ORDER BY {open_group} "
                  f"ON CONFLICT ({open_conflict}) DO UPDATE SET open_cases = s.open_cases + excluded.open_cases")

    def function(name, body):
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


def _sqlite_statements():
    rating_body, case_ins_body, case_upd_body = [], [], []
    for table, keys in GRAINS.items():
        values = ", ".join([_key(k, "NEW", "sqlite") for k in keys]
                           + [_flag(c.format(n="NEW")) for c in RATING_CONDITIONS.values()])
        rating_body.append(_upsert(table, list(RATING_CONDITIONS), f"VALUES ({values})"))
        key_sel_r = ", ".join(_key(k, "r", "sqlite") for k in keys)

        def contribution(x):
            return [_flag(c.format(x=x, r="r", closed_day=_closed_day("sqlite", x))) for c in CASE_CONDITIONS.values()]
        new, old = contribution("NEW"), contribution("OLD")
        case_ins_body.append(_upsert(table, list(CASE_CONDITIONS),
                                     f"SELECT {key_sel_r}, {', '.join(new)} FROM ratings r WHERE r.id = NEW.rating_id"))
        case_upd_body.append(_upsert(table, list(CASE_CONDITIONS),
                                     f"SELECT {key_sel_r}, {', '.join(f'({a}) - ({b})' for a, b in zip(new, old))} "
                                     f"FROM ratings r WHERE r.id = NEW.rating_id"))
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in CASE_COLUMNS)

    def open_upsert(x, sign):
        keys = ", ".join(_key(k, "r", "sqlite") for k in OPEN_KEYS)
        return (f"INSERT INTO stats_open ({OPEN_COLS}, open_cases) SELECT {keys}, {x}.close_due, "
                f"{DEADLINE.format(x=x)}, {DUE.format(x=x)}, {sign} FROM ratings r "
                f"WHERE r.id = {x}.rating_id AND {x}.status <> 'closed' "
                f"ON CONFLICT ({OPEN_COLS}) DO UPDATE SET open_cases = open_cases + excluded.open_cases")
    case_ins_body.append(open_upsert("NEW", 1))
    open_changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in ("status", "callback_due", "close_due"))

    def trigger(name, event, body, when=""):
        return (f"CREATE TRIGGER {name} AFTER {event} {'FOR EACH ROW WHEN ' + when if when else ''} BEGIN\n"
                + "".join(f"  {stmt};\n" for stmt in body) + "END")

    return [
        trigger("hcp_stats_ratings_insert", "INSERT ON ratings", rating_body),
        trigger("hcp_stats_cases_insert", "INSERT ON cases", case_ins_body),
        trigger("hcp_stats_cases_update", "UPDATE ON cases", case_upd_body, when=changed),
        trigger("hcp_stats_open_update", "UPDATE ON cases", [open_upsert("OLD", -1), open_upsert("NEW", 1)],
                when=open_changed),
    ]


def _drop_triggers(dialect):
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS hcp_stats_cases_update ON cases")
        op.execute("DROP TRIGGER IF EXISTS hcp_stats_cases_insert ON cases")
        op.execute("DROP TRIGGER IF EXISTS hcp_stats_ratings_insert ON ratings")
    else:
        for trg in ("hcp_stats_open_update", "hcp_stats_cases_update", "hcp_stats_cases_insert",
                    "hcp_stats_ratings_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {trg}")


def _callback_due_nullable(dialect, nullable):
    if dialect == "postgresql":
        op.alter_column("cases", "callback_due", existing_type=sa.Date(), nullable=nullable)
        return
    # SQLite cannot alter a column; recreating ``cases`` would DROP a table that
    # case_history and notifications reference (foreign keys are on). A NOT NULL
    # constraint does not change the stored rows, so, as SQLite's ALTER TABLE page
    # describes for such changes, the table's schema text is edited in place.
    bind = op.get_bind()
    sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'cases'").scalar()
    old, new = ("callback_due DATE NOT NULL", "callback_due DATE") if nullable else \
        ("callback_due DATE", "callback_due DATE NOT NULL")
    if old not in sql:
        raise RuntimeError(f"cases schema not as expected: {sql}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'cases'",
                         (sql.replace(old, new, 1),))
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def _fill_phone_index():
    """The blind index of every stored phone, in batches (decrypting each once, here only)."""
    from flask import current_app

    from service.privacy import blind_index, decrypt

    if not current_app:
        return
    bind = op.get_bind()
    ratings = sa.table("ratings", sa.column("id", sa.BigInteger), sa.column("rater_phone_enc", sa.Text),
                       sa.column("rater_phone_index", sa.String))
    after = 0
    while True:
        rows = bind.execute(sa.select(ratings.c.id, ratings.c.rater_phone_enc)
                            .where(ratings.c.id > after, ratings.c.rater_phone_enc.is_not(None))
                            .order_by(ratings.c.id).limit(5000)).all()
        if not rows:
            return
        for row in rows:
            bind.execute(sa.update(ratings).where(ratings.c.id == row.id)
                         .values(rater_phone_index=blind_index(decrypt(row.rater_phone_enc))))
        after = rows[-1].id


def upgrade():
    dialect = op.get_bind().dialect.name
    _drop_triggers(dialect)

    op.add_column("ratings", sa.Column("rater_phone_index", sa.String(length=64), nullable=True))
    _fill_phone_index()
    op.create_index("ix_ratings_rater_phone_index", "ratings", ["rater_phone_index"],
                    postgresql_where=sa.text("rater_phone_index IS NOT NULL"),
                    sqlite_where=sa.text("rater_phone_index IS NOT NULL"))
    op.create_index("ix_ratings_project_no", "ratings", ["project_no"],
                    postgresql_where=sa.text("project_no IS NOT NULL"),
                    sqlite_where=sa.text("project_no IS NOT NULL"))

    op.drop_column("cases", "warning")
    op.add_column("cases", sa.Column("extension_days", sa.Integer(), nullable=True))
    op.add_column("cases", sa.Column("extended_at", sa.DateTime(timezone=True), nullable=True))
    _callback_due_nullable(dialect, True)
    op.execute("UPDATE cases SET callback_due = NULL WHERE rating_id IN "
               "(SELECT id FROM ratings WHERE NOT real_name)")

    for table in GRAINS:
        op.add_column(table, sa.Column("extended", sa.Integer(), server_default="0", nullable=False))

    op.drop_index("ix_stats_open_rated_date", table_name="stats_open")
    op.drop_table("stats_open")
    op.create_table(
        "stats_open",
        sa.Column("rated_date", sa.Date(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("window", sa.String(length=64), nullable=False),
        sa.Column("staff_no", sa.String(length=64), nullable=False),
        sa.Column("close_due", sa.Date(), nullable=False),
        sa.Column("deadline", sa.String(length=8), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("open_cases", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("rated_date", "department_id", "channel", "item_id", "window", "staff_no",
                                "close_due", "deadline", "due", name=op.f("pk_stats_open")),
    )
    op.create_index("ix_stats_open_rated_date", "stats_open", ["rated_date"],
                    postgresql_where=sa.text("open_cases <> 0"), sqlite_where=sa.text("open_cases <> 0"))
    keys = ", ".join(_key(k, "r", dialect) for k in OPEN_KEYS)
    op.execute(f"INSERT INTO stats_open ({OPEN_COLS}, open_cases) SELECT {keys}, c.close_due, "
               f"{DEADLINE.format(x='c')}, {DUE.format(x='c')}, count(*) FROM cases c "
               f"JOIN ratings r ON r.id = c.rating_id WHERE c.status <> 'closed' "
               f"GROUP BY {', '.join(str(i + 1) for i in range(len(OPEN_KEYS) + 3))}")

    for stmt in (_pg_statements() if dialect == "postgresql" else _sqlite_statements()):
        op.execute(stmt)


def downgrade():
    raise NotImplementedError("0013 is not reversible: the stored cards it drops are computed now")
