"""``breakdown?by=reason``: the figures per reason code, counted from the raw rows.

A rating may carry several reasons, so the groups overlap and are not in the rollups; they
are counted here from ratings ⟕ cases with the same conditions the rollups use
(service/stats/rollup.py), so every figure of a group is what the summary would say of
the ratings carrying that reason. The total row is the summary of all selected ratings.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from models import Case
from models.clock import local_date
from models.types import utcnow
from service.cases.warnings import Cards, next_deadline_sql, next_due_sql
from service.reasons.table import labels
from service.stats import figures
from service.stats.rollup import CASE_CONDITIONS, RATING_CONDITIONS, closed_day_sql

LIVE_CONDITIONS = {
    "open": "c.status <> 'closed'",
    "overdue_open": "c.status <> 'closed' AND c.close_due < :today",
    # default ratings as the rollups count them (figures.counters): their channel
    "default_total": f"r.channel = '{figures.DEFAULT_CHANNEL}'",
    "default_good": f"r.channel = '{figures.DEFAULT_CHANNEL}' AND r.level >= 3",
}


def _card_conditions(session: Session, today: date) -> dict[str, str]:
    """``red`` and ``yellow`` over the alias ``c``: the cards' own SQL (warnings.Cards), as text."""
    c = Case.__table__.alias("c")
    cards = Cards.on(session, today)
    name, due = next_deadline_sql(c.c), next_due_sql(c.c)
    dialect = session.get_bind().dialect
    return {level: str(cards.where(level, name, due).compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            for level in ("red", "yellow")}


def _elements(dialect: str) -> tuple[str, str]:
    """A FROM item with one row (``j.value``) per code of ``r.reasons``, and the condition
    that ``r.reasons`` is an array (SQLite keeps a Python None as JSON ``null``)."""
    if dialect == "postgresql":
        return ("CROSS JOIN LATERAL json_array_elements_text(r.reasons) AS j(value)",
                "json_typeof(r.reasons) = 'array'")
    return "CROSS JOIN json_each(r.reasons) AS j", "json_type(r.reasons) = 'array'"


def counters(session: Session, f: figures.Filters, today: date) -> dict[str, dict]:
    dialect = session.get_bind().dialect.name
    conditions = {k: c.format(r="r") for k, c in RATING_CONDITIONS.items()}
    conditions.update({k: c.format(x="c", r="r", closed_day=closed_day_sql(dialect, "c.closed_at"))
                       for k, c in CASE_CONDITIONS.items()})
    conditions.update(LIVE_CONDITIONS)
    conditions.update(_card_conditions(session, today))
    sums = ", ".join(f"SUM(CASE WHEN {cond} THEN 1 ELSE 0 END) AS {name}" for name, cond in conditions.items())
    elements, is_array = _elements(dialect)
    # Excluded ratings (a confirmed suspicious flag's) count in no figure.
    where = ["r.rated_date >= :lo", "r.rated_date <= :hi", is_array, "r.excluded_at IS NULL"]
    params: dict = {"lo": f.date_from, "hi": f.date_to, "today": today}
    binds = []
    if f.department_path is not None:
        where.append("r.department_id IN :departments")
        params["departments"] = figures.subtree_ids(session, f.department_path)
        binds.append(bindparam("departments", expanding=True))
    for column, value in (("channel", f.channel), ("item_id", f.item_id), ("window", f.window)):
        if value is not None:
            where.append(f'r."{column}" = :{column}')
            params[column] = value
    sql = text(f"SELECT j.value AS code, {sums} FROM ratings r {elements} "
               f"LEFT JOIN cases c ON c.rating_id = r.id WHERE {' AND '.join(where)} GROUP BY j.value")
    if binds:
        sql = sql.bindparams(*binds)
    return {row.code: {k: int(v or 0) for k, v in row._mapping.items() if k != "code"}
            for row in session.execute(sql, params)}


def breakdown(session: Session, f: figures.Filters, today: date | None = None) -> dict:
    """Groups per reason (most ratings first) with the reason's label and dimension."""
    today = today or local_date(utcnow())
    raw = counters(session, f, today)
    options = labels(session, raw)
    rows = []
    for code, c in raw.items():
        option = options.get(code)
        label = f"{option.dimension}·{option.label}" if option else code
        rows.append({"key": code, "label": label, **figures.figures_from(c)})
    rows.sort(key=lambda r: (-r["total"], r["key"]))
    return {"by": "reason", "groups": rows, "total": figures.summary(session, f, today)}
