"""Counting the terms of ratings into ``insight_terms``: as batches are stored, and from scratch.

The intake stores a batch and sends the ids of its ratings with text (``to_count``) to the
worker's ``process_stored`` task (service/ratings/after_commit.py), which calls ``count``. ``count`` first
claims the ratings in ``insight_counted`` (``INSERT … ON CONFLICT DO NOTHING
RETURNING``), so a task delivered twice, or racing a rebuild, counts each rating once.
``rebuild`` and ``differences`` recount from the raw rows (``hcp insights rebuild`` /
``check``). A rating's terms are those of its comment, its tags and its reasons' labels,
each counted once per rating.
"""
from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from models import InsightCounted, InsightTerm, InsightTermMonthly, Rating, rowsets
from service.insights.segment import terms
from service.reasons.table import labels
from service.stats.rollup import month_sql


HAS_TEXT = "(r.comment IS NOT NULL OR r.tags IS NOT NULL OR r.reasons IS NOT NULL)"
_R = Rating.__table__.c
# Core columns, not text: JSON (tags, reasons) comes back as lists on both databases.
_COLUMNS = (_R.id, _R.rated_date, _R.department_id, func.coalesce(_R.item_id, 0).label("item_id"),
            _R.negative, _R.comment, _R.tags, _R.reasons)
_CHUNK = 5000  # ratings read and counted per round of a rebuild

Key = tuple  # (rated_date, department_id, item_id, term)


def has_text(body: dict) -> bool:
    """Whether a submitted rating carries anything to count."""
    return bool(body.get("comment") or body.get("tags") or body.get("reasons"))


def to_count(outcomes, bodies) -> list[int]:
    """The created ratings of one stored batch whose terms the worker counts: those carrying
    text, none when ``HCP_TERM_COUNTING`` is off (the catch-up sweep counts them then)."""
    if not current_app.config["HCP_SETTINGS"].term_counting:
        return []
    return [o.rating["id"] for o, b in zip(outcomes, bodies)
            if o.status == "created" and isinstance(b, dict) and has_text(b)]


def rating_terms(row, label_of: dict) -> set[str]:
    """The terms of one rating row (comment, tags, reason labels)."""
    out = terms(row.comment)
    for tag in row.tags or ():
        if isinstance(tag, str):
            out |= terms(tag)
    for code in row.reasons or ():
        option = label_of.get(code)
        if option is not None:
            out |= terms(option.label)
    return out


def tally(session: Session, rows) -> Counter:
    """``{key: [ratings, bad]}`` counted over ``rows`` (rows of ``_COLUMNS``)."""
    rows = list(rows)
    codes = {c for r in rows for c in (r.reasons or ()) if isinstance(c, str)}
    label_of = labels(session.connection(), codes) if codes else {}
    counts: dict[Key, list[int]] = {}
    for r in rows:
        for term in rating_terms(r, label_of):
            c = counts.setdefault((r.rated_date, r.department_id, r.item_id, term), [0, 0])
            c[0] += 1
            c[1] += 1 if r.negative else 0
    return counts


_DAILY_KEYS = ("rated_date", "department_id", "item_id", "term")
_MONTHLY_KEYS = ("month", "department_id", "term")


def _pg_on_conflict(table, keys: tuple[str, ...]) -> str:
    return (f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET ratings = {table.name}.ratings + excluded.ratings, "
            f"bad = {table.name}.bad + excluded.bad")


def _pg_upsert(table, keys: tuple[str, ...]) -> str:
    """PostgreSQL's upsert of many counts as one statement of one JSON parameter (models/rowsets.py)."""
    names = ", ".join((*keys, "ratings", "bad"))
    return (f"INSERT INTO {table.name} ({names}) SELECT {names} FROM "
            f"{rowsets.recordset(table, (*keys, 'ratings', 'bad'))} {_pg_on_conflict(table, keys)}")


def _pg_add() -> str:
    """Both grains' upserts as one statement over the daily counts: the monthly rows are their
    sums by month, in key order. Every writer of the counts outside a rebuild (which locks the
    tables) goes through this one statement, so all take their row locks in the same order and
    two workers never deadlock."""
    daily, monthly = InsightTerm.__table__, InsightTermMonthly.__table__
    names = ", ".join((*_DAILY_KEYS, "ratings", "bad"))
    return (f"WITH t AS (SELECT {names} FROM {rowsets.recordset(daily, (*_DAILY_KEYS, 'ratings', 'bad'))}), "
            f"d AS (INSERT INTO {daily.name} ({names}) SELECT {names} FROM t {_pg_on_conflict(daily, _DAILY_KEYS)}) "
            f"INSERT INTO {monthly.name} ({', '.join((*_MONTHLY_KEYS, 'ratings', 'bad'))}) "
            f"SELECT {month_sql('postgresql', 'rated_date')}, department_id, term, sum(ratings), sum(bad) FROM t "
            f"GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 {_pg_on_conflict(monthly, _MONTHLY_KEYS)}")


_PG_UPSERTS = {t.name: _pg_upsert(t, keys) for t, keys in ((InsightTerm.__table__, _DAILY_KEYS),
                                                            (InsightTermMonthly.__table__, _MONTHLY_KEYS))}
_PG_ADD = _pg_add()
_PG_ROWS = 2000  # counts per statement


def _pg_params(keys: tuple[str, ...], items: list) -> dict[str, str]:
    columns = (*keys, "ratings", "bad")
    return {"rows": rowsets.dumps([dict(zip(columns, (*k, *v))) for k, v in items])}


def _upsert(session: Session, table, keys: tuple[str, ...], counts: dict) -> None:
    """Add ``counts`` (``{key: [ratings, bad]}``) to ``table``, in key order."""
    items = sorted(counts.items())
    if session.get_bind().dialect.name == "postgresql":
        sql = _PG_UPSERTS[table.name]
        for start in range(0, len(items), _PG_ROWS):
            session.connection().exec_driver_sql(sql, _pg_params(keys, items[start:start + _PG_ROWS]))
        return
    insert = sqlite.insert
    values = [{**dict(zip(keys, k)), "ratings": v[0], "bad": v[1]} for k, v in items]
    for start in range(0, len(values), 2000):
        stmt = insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={"ratings": table.c.ratings + stmt.excluded.ratings, "bad": table.c.bad + stmt.excluded.bad})
        session.execute(stmt, values[start:start + 2000])


def _add(session: Session, counts: dict) -> None:
    """Add ``counts`` to both grains (upserts), in key order so two workers never deadlock
    (PostgreSQL: one statement per 2,000 counts, ``_pg_add``)."""
    if not counts:
        return
    if session.get_bind().dialect.name == "postgresql":
        items = sorted(counts.items())
        for start in range(0, len(items), _PG_ROWS):
            session.connection().exec_driver_sql(_PG_ADD, _pg_params(_DAILY_KEYS, items[start:start + _PG_ROWS]))
        return
    monthly: dict[tuple, list[int]] = {}
    for (rated, dept, _item, term), (ratings, bad) in counts.items():
        c = monthly.setdefault((rated.replace(day=1), dept, term), [0, 0])
        c[0] += ratings
        c[1] += bad
    _upsert(session, InsightTerm.__table__, _DAILY_KEYS, counts)
    _upsert(session, InsightTermMonthly.__table__, _MONTHLY_KEYS, monthly)


# PostgreSQL: the claim and the read of the claimed rows as one statement of fixed text.
_PG_CLAIM = (
    "WITH claimed AS (INSERT INTO insight_counted (rating_id) SELECT r.id FROM ratings r "
    f"WHERE r.id = ANY(%(ids)s::bigint[]) AND {HAS_TEXT} AND r.excluded_at IS NULL ORDER BY r.id "
    "ON CONFLICT (rating_id) DO NOTHING RETURNING rating_id) "
    "SELECT r.id, r.rated_date, r.department_id, coalesce(r.item_id, 0) AS item_id, r.negative, r.comment, "
    "r.tags, r.reasons FROM claimed c JOIN ratings r ON r.id = c.rating_id")


def count(session: Session, rating_ids: list[int]) -> int:
    """Count the terms of those of ``rating_ids`` not counted yet; the caller commits.

    Returns how many ratings were counted now.
    """
    ids = sorted({int(i) for i in rating_ids})
    if not ids:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        rows = session.connection().exec_driver_sql(_PG_CLAIM, {"ids": ids}).all()
        _add(session, tally(session, rows))
        return len(rows)
    claimed = session.execute(text(
        f"INSERT INTO insight_counted (rating_id) SELECT r.id FROM ratings r "
        f"WHERE r.id IN :ids AND {HAS_TEXT} AND r.excluded_at IS NULL "
        f"ON CONFLICT (rating_id) DO NOTHING RETURNING rating_id"
    ).bindparams(bindparam("ids", expanding=True)), {"ids": ids}).scalars().all()
    if not claimed:
        return 0
    rows = session.execute(select(*_COLUMNS).where(_R.id.in_(sorted(claimed))))
    _add(session, tally(session, rows))
    return len(claimed)


def discount(session: Session, rating_ids: list[int]) -> int:
    """Take the terms of those of ``rating_ids`` that were counted back out; the caller commits.

    For a suspicious flag's exclusion (``count`` adds them again on a restore, once the
    ratings are no longer excluded). Returns how many ratings were taken out.
    """
    ids = sorted({int(i) for i in rating_ids})
    released = []
    for start in range(0, len(ids), _CHUNK):
        released += session.execute(delete(InsightCounted).where(InsightCounted.rating_id.in_(
            ids[start:start + _CHUNK])).returning(InsightCounted.rating_id)).scalars().all()
    if not released:
        return 0
    counts = {}
    for start in range(0, len(released), _CHUNK):
        rows = session.execute(select(*_COLUMNS).where(_R.id.in_(sorted(released)[start:start + _CHUNK])))
        for key, (ratings, bad) in tally(session, rows).items():
            c = counts.setdefault(key, [0, 0])
            c[0] -= ratings
            c[1] -= bad
    _add(session, counts)
    return len(released)


def _in_period(column, date_from: date | None, date_to: date | None) -> list:
    """Core clauses selecting ``column`` (a date) in the period; open ends are unbounded."""
    out = []
    if date_from is not None:
        out.append(column >= date_from)
    if date_to is not None:
        out.append(column <= date_to)
    return out


# Excluded ratings (a confirmed suspicious flag's) count in no figure, terms included.
_HAS_TEXT = and_(or_(_R.comment.is_not(None), _R.tags.is_not(None), _R.reasons.is_not(None)),
                 _R.excluded_at.is_(None))


def recount(session: Session, date_from: date | None = None, date_to: date | None = None):
    """Yield ``(ids, counts)`` per chunk of the raw ratings with text dated in the period."""
    period = _in_period(_R.rated_date, date_from, date_to)
    last = 0
    while True:
        rows = session.execute(select(*_COLUMNS).where(_HAS_TEXT, _R.id > last, *period)
                               .order_by(_R.id).limit(_CHUNK)).all()
        if not rows:
            return
        last = rows[-1].id
        yield [r.id for r in rows], tally(session, rows)


def rebuild(session: Session, date_from: date | None = None, date_to: date | None = None) -> int:
    """Recount ``insight_terms`` for ratings dated in the period (default: all) from the raw rows.

    The caller commits. On PostgreSQL the two tables are locked, so a batch counted
    meanwhile waits and then finds its ratings claimed. The months the period touches are
    summed again from the daily rows. Returns the ratings counted.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE insight_terms, insight_terms_monthly, insight_counted IN EXCLUSIVE MODE"))
    session.execute(delete(InsightTerm).where(*_in_period(InsightTerm.rated_date, date_from, date_to)))
    session.execute(delete(InsightCounted).where(InsightCounted.rating_id.in_(
        select(_R.id).where(*_in_period(_R.rated_date, date_from, date_to)))))
    total = 0
    for ids, counts in recount(session, date_from, date_to):
        session.execute(insert(InsightCounted), [{"rating_id": i} for i in ids])
        _upsert(session, InsightTerm.__table__, _DAILY_KEYS, counts)
        total += len(ids)
    # The months the period touches, summed again from the (now exact) daily counts.
    first = date_from.replace(day=1) if date_from else None
    last = _month_end(date_to) if date_to else None
    session.execute(delete(InsightTermMonthly).where(*_in_period(InsightTermMonthly.month, first, last)))
    where = " AND ".join(["1 = 1"] + (["rated_date >= :first"] if first else [])
                         + (["rated_date <= :last"] if last else []))
    session.execute(text(
        f"INSERT INTO insight_terms_monthly (month, department_id, term, ratings, bad) "
        f"SELECT {month_sql(session.get_bind().dialect.name, 'rated_date')}, department_id, term, "
        f"SUM(ratings), SUM(bad) FROM insight_terms WHERE {where} GROUP BY 1, department_id, term"),
        {"first": first, "last": last})
    return total


def _month_end(day: date) -> date:
    nxt = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return nxt - timedelta(days=1)


def differences(session: Session, date_from: date | None = None, date_to: date | None = None,
                limit: int = 20) -> list[dict]:
    """Keys whose stored counts differ from a recount of the raw rows (empty = exact)."""
    raw: dict[Key, list[int]] = {}
    for _ids, counts in recount(session, date_from, date_to):
        for k, v in counts.items():
            c = raw.setdefault(k, [0, 0])
            c[0] += v[0]
            c[1] += v[1]
    t = InsightTerm.__table__.c
    stored = {}
    for r in session.execute(select(t.rated_date, t.department_id, t.item_id, t.term, t.ratings, t.bad).where(
            or_(t.ratings != 0, t.bad != 0), *_in_period(t.rated_date, date_from, date_to))):
        stored[(r.rated_date, r.department_id, r.item_id, r.term)] = [r.ratings, r.bad]
    out = _monthly_differences(session, date_from, date_to, limit)
    for key in sorted(set(raw) | set(stored)):
        if raw.get(key) != stored.get(key):
            out.append({"rated_date": key[0].isoformat(), "department_id": key[1], "item_id": key[2],
                        "term": key[3], "stored": stored.get(key), "raw": raw.get(key)})
            if len(out) >= limit:
                break
    return out


def _monthly_differences(session: Session, date_from: date | None, date_to: date | None, limit: int) -> list[dict]:
    """Monthly rows that differ from the sum of the daily rows of their month."""
    first = date_from.replace(day=1) if date_from else None
    last = _month_end(date_to) if date_to else None
    t, m = InsightTerm.__table__.c, InsightTermMonthly.__table__.c
    daily: dict[tuple, list[int]] = {}
    for r in session.execute(select(t.rated_date, t.department_id, t.term, t.ratings, t.bad)
                             .where(*_in_period(t.rated_date, first, last))):
        c = daily.setdefault((r.rated_date.replace(day=1), r.department_id, r.term), [0, 0])
        c[0] += r.ratings
        c[1] += r.bad
    daily = {k: v for k, v in daily.items() if v != [0, 0]}
    monthly = {(r.month, r.department_id, r.term): [r.ratings, r.bad] for r in session.execute(
        select(m.month, m.department_id, m.term, m.ratings, m.bad)
        .where(or_(m.ratings != 0, m.bad != 0), *_in_period(m.month, first, last)))}
    out = []
    for key in sorted(set(daily) | set(monthly)):
        if daily.get(key) != monthly.get(key):
            out.append({"month": key[0].isoformat(), "department_id": key[1], "term": key[2],
                        "stored": monthly.get(key), "daily": daily.get(key)})
            if len(out) >= limit:
                break
    return out
