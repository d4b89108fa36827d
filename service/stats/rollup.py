"""Rebuilding and checking the rollups (``stats_daily``, ``stats_monthly``, ``stats_daily_detail``,
``stats_monthly_item``).

Triggers (migrations 0005, 0013, 0024) keep the rollups exact as ratings arrive and cases change.
These functions recount them from the raw rows: ``rebuild`` after a bulk load that ran
with triggers off (scripts/load_ratings.py), ``differences`` to prove the rollups equal
the raw rows (``hcp stats check``). The counter conditions here are the live copy of the
frozen ones in the migration; the tests compare the two paths.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.stats import COUNTERS, LEVEL_COUNTERS

RATING_CONDITIONS = {
    "level_1": "{r}.level = 1",
    "level_2": "{r}.level = 2",
    "level_3": "{r}.level = 3",
    "level_4": "{r}.level = 4",
    "level_5": "{r}.level = 5",
    # callback_rate's denominator: bad ratings whose rater left a name and phone
    "bad_real_name": "{r}.negative AND {r}.real_name",
}
CASE_CONDITIONS = {
    "closed": "{x}.status = 'closed'",
    "closed_rectified": "{x}.status = 'closed' AND {x}.outcome = 'rectified'",
    "closed_explained": "{x}.status = 'closed' AND {x}.outcome = 'explained'",
    "closed_invalid": "{x}.status = 'closed' AND {x}.outcome = 'invalid'",
    # closed on or before the closure deadline's day (the deadline is the end of that day)
    "closed_on_time": "{x}.status = 'closed' AND {closed_day} <= {x}.close_due",
    # only real-name raters can be called back, so the rate stays within 0–100 %
    "called_back": "{x}.contacted AND {r}.real_name",
    "satisfied_yes": "{x}.satisfied",
    "satisfied_known": "{x}.satisfied IS NOT NULL",
    # cases whose 延期 was approved (one per case)
    "extended": "{x}.extended_at IS NOT NULL",
}
assert tuple(RATING_CONDITIONS) + tuple(CASE_CONDITIONS) == COUNTERS

DETAIL_KEYS = ("rated_date", "department_id", "channel", "item_id", "window", "staff_no")
KEY_EXPR = {
    "rated_date": "r.rated_date", "department_id": "r.department_id", "channel": "r.channel",
    "item_id": "COALESCE(r.item_id, 0)", "window": "COALESCE(r.\"window\", '')",
    "staff_no": "COALESCE(r.staff_no, '')",
}
# Every grain counted from the detail keys: its key columns and its counters.
GRAINS = {
    "stats_daily_detail": (DETAIL_KEYS, COUNTERS),
    "stats_daily": (DETAIL_KEYS[:3], COUNTERS),
    "stats_monthly": (("month",) + DETAIL_KEYS[1:3], COUNTERS),
    "stats_monthly_item": (("month", "department_id", "item_id"), LEVEL_COUNTERS),
}


# An open case's next deadline, as service.cases.warnings.next_deadline says.
_WAITING = "c.status IN ('unassigned', 'assigned') AND c.callback_due IS NOT NULL"
OPEN_COLUMNS = 'rated_date, department_id, channel, item_id, "window", staff_no, close_due, deadline, due, open_cases'
OPEN_SELECT = (f"SELECT {', '.join(KEY_EXPR[k] for k in DETAIL_KEYS)}, c.close_due, "
               f"CASE WHEN {_WAITING} THEN 'callback' ELSE 'close' END, "
               f"CASE WHEN {_WAITING} THEN c.callback_due ELSE c.close_due END, "
               f"count(*) FROM cases c JOIN ratings r ON r.id = c.rating_id WHERE c.status <> 'closed' "
               f"GROUP BY {', '.join(str(i + 1) for i in range(len(DETAIL_KEYS) + 3))}")


def _q(name: str) -> str:
    return '"window"' if name == "window" else name


def closed_day_sql(dialect: str, column: str) -> str:
    """SQL for the Asia/Shanghai date of a UTC timestamp column (UTC+8 all year)."""
    if dialect == "postgresql":
        return f"({column} AT TIME ZONE 'Asia/Shanghai')::date"
    return f"date({column}, '+8 hours')"


def month_sql(dialect: str, column: str) -> str:
    """SQL for the first day of the month of a date column."""
    if dialect == "postgresql":
        return f"date_trunc('month', {column})::date"
    return f"date({column}, 'start of month')"


def _counts_select(dialect: str, where: str = "r.excluded_at IS NULL") -> str:
    """One row per detail key with every counter, counted from ratings ⟕ cases.

    By default over the ratings not excluded (a confirmed suspicious flag's): those count in
    no figure. ``where`` selects other ratings (``adjust``).
    """
    flags = [f"SUM(CASE WHEN {c.format(r='r')} THEN 1 ELSE 0 END)" for c in RATING_CONDITIONS.values()]
    flags += [f"SUM(CASE WHEN {c.format(x='c', r='r', closed_day=closed_day_sql(dialect, 'c.closed_at'))} "
              f"THEN 1 ELSE 0 END)" for c in CASE_CONDITIONS.values()]
    keys = ", ".join(f"{KEY_EXPR[k]} AS {_q(k)}" for k in DETAIL_KEYS)
    group = ", ".join(str(i + 1) for i in range(len(DETAIL_KEYS)))
    return (f"SELECT {keys}, {', '.join(f'{f} AS {c}' for f, c in zip(flags, COUNTERS))} "
            f"FROM ratings r LEFT JOIN cases c ON c.rating_id = r.id WHERE {where} GROUP BY {group}")


def adjust(session: Session, rating_ids: list[int], sign: int) -> None:
    """Subtract (``sign`` -1) or add back (+1) the counters of ``rating_ids`` in every grain.

    For a suspicious flag's exclusion and its restore, in the caller's transaction: the
    ratings' contributions are counted from the raw rows (ratings ⟕ cases) exactly as
    ``rebuild`` counts them, and upserted in key order. Excluded ratings are good ones
    without a case (service/suspicious/decisions.py), so ``stats_open`` is not touched.
    """
    dialect = session.get_bind().dialect.name
    ids = sorted({int(i) for i in rating_ids})
    for start in range(0, len(ids), 1000):
        chunk = ", ".join(str(i) for i in ids[start:start + 1000])  # ints: no quoting to get wrong
        counted = _counts_select(dialect, f"r.id IN ({chunk})")
        for table, (keys, counters) in GRAINS.items():
            key_cols = ", ".join(_q(k) for k in keys)
            raw_keys = key_cols.replace("month", f"{month_sql(dialect, 'rated_date')} AS month")
            group = ", ".join(str(i + 1) for i in range(len(keys)))
            sets = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
            session.execute(text(
                f"INSERT INTO {table} ({key_cols}, {', '.join(counters)}) "
                f"SELECT {raw_keys}, {', '.join(f'{int(sign)} * SUM({c})' for c in counters)} "
                f"FROM ({counted}) x WHERE 1 = 1 GROUP BY {group} ORDER BY {group} "
                f"ON CONFLICT ({key_cols}) DO UPDATE SET {sets}"))


def rebuild(session: Session) -> None:
    """Recount both rollups from the raw rows; the caller commits.

    Takes an exclusive lock on the rollups on PostgreSQL, so intake waits (rather than
    being lost) while it runs.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("LOCK TABLE stats_daily, stats_monthly, stats_daily_detail, stats_monthly_item, "
                             "stats_open IN EXCLUSIVE MODE"))
    session.execute(text("DELETE FROM stats_daily_detail"))
    session.execute(text("DELETE FROM stats_monthly_item"))
    session.execute(text("DELETE FROM stats_daily"))
    session.execute(text("DELETE FROM stats_monthly"))
    session.execute(text("DELETE FROM stats_open"))
    cols = ", ".join(_q(c) for c in DETAIL_KEYS + COUNTERS)
    session.execute(text(f"INSERT INTO stats_daily_detail ({cols}) {_counts_select(dialect)}"))
    session.execute(text(
        f"INSERT INTO stats_daily (rated_date, department_id, channel, {', '.join(COUNTERS)}) "
        f"SELECT rated_date, department_id, channel, {', '.join(f'SUM({c})' for c in COUNTERS)} "
        f"FROM stats_daily_detail GROUP BY rated_date, department_id, channel"))
    session.execute(text(
        f"INSERT INTO stats_monthly (month, department_id, channel, {', '.join(COUNTERS)}) "
        f"SELECT {month_sql(dialect, 'rated_date')}, department_id, channel, "
        f"{', '.join(f'SUM({c})' for c in COUNTERS)} FROM stats_daily GROUP BY 1, department_id, channel"))
    session.execute(text(
        f"INSERT INTO stats_monthly_item (month, department_id, item_id, {', '.join(LEVEL_COUNTERS)}) "
        f"SELECT {month_sql(dialect, 'rated_date')}, department_id, item_id, "
        f"{', '.join(f'SUM({c})' for c in LEVEL_COUNTERS)} FROM stats_daily_detail GROUP BY 1, department_id, item_id"))
    session.execute(text(f"INSERT INTO stats_open ({OPEN_COLUMNS}) {OPEN_SELECT}"))


def differences(session: Session, limit: int = 20) -> list[dict]:
    """Rollup keys whose counters differ from a recount of the raw rows (empty = exact).

    Compares both grains; all-zero rollup rows (left by a case change undone) equal no row.
    """
    dialect = session.get_bind().dialect.name
    out = []
    for table, (keys, counters) in GRAINS.items():
        nonzero = " OR ".join(f"{c} <> 0" for c in counters)
        key_cols = ", ".join(_q(k) for k in keys)
        raw_keys = key_cols.replace("month", f"{month_sql(dialect, 'rated_date')} AS month")
        raw = (f"SELECT {raw_keys}, {', '.join(f'SUM({c}) AS {c}' for c in counters)} "
               f"FROM ({_counts_select(dialect)}) x GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}")
        kept = f"SELECT {key_cols}, {', '.join(counters)} FROM {table} WHERE {nonzero}"
        missing = f"SELECT * FROM ({raw}) r1 EXCEPT SELECT * FROM ({kept}) k1"
        extra = f"SELECT * FROM ({kept}) k2 EXCEPT SELECT * FROM ({raw}) r2"
        diff = (f"SELECT 'raw' AS side, '{table}' AS grain, m.* FROM ({missing}) m "
                f"UNION ALL SELECT 'rollup', '{table}', e.* FROM ({extra}) e")
        rows = session.execute(text(f"SELECT * FROM ({diff}) d LIMIT {int(limit)}")).mappings()
        out += [dict(r) for r in rows]
    kept = f"SELECT {OPEN_COLUMNS} FROM stats_open WHERE open_cases <> 0"
    diff = (f"SELECT 'raw' AS side, 'stats_open' AS grain, m.* FROM "
            f"(SELECT * FROM ({OPEN_SELECT}) r1 EXCEPT SELECT * FROM ({kept}) k1) m UNION ALL "
            f"SELECT 'rollup', 'stats_open', e.* FROM (SELECT * FROM ({kept}) k2 EXCEPT "
            f"SELECT * FROM ({OPEN_SELECT}) r2) e")
    out += [dict(r) for r in session.execute(text(f"SELECT * FROM ({diff}) d LIMIT {int(limit)}")).mappings()]
    # The figures count default ratings as the rollups' channel ``default`` (figures.counters):
    # that holds while every default rating, and nothing else, has that channel.
    mixed = session.execute(text(
        "SELECT id, channel, is_default FROM ratings WHERE (channel = 'default') <> is_default "
        f"ORDER BY id LIMIT {int(limit)}")).mappings()
    out += [{"side": "raw", "grain": "ratings.is_default", **dict(r)} for r in mixed]
    return out
