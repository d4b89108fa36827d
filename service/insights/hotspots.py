"""The hot spots of a period: its top terms against the previous period, and its anomalies.

Everything is read from the counts, never from the raw ratings: terms from
``insight_terms_monthly`` and ``insight_terms``, ratings and bad ratings per department from
``stats_monthly`` and ``stats_daily``, per item from ``stats_monthly_item`` and
``stats_daily_detail`` — a month from the monthly grain, the days from the daily one
(``plan_period``), so a year costs the same whatever the number of ratings. The test behind
an anomaly is stated in docs/insights.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (Department, InsightTerm, InsightTermMonthly, ServiceItem, StatsDaily, StatsDailyDetail,
                    StatsMonthly, StatsMonthlyItem)
from service.stats.figures import subtree_ids

TOP_TERMS = 30
# A term is rising when it holds at least RISING_MIN ratings and at least RISING_FACTOR
# times its count in the previous period of equal length.
RISING_MIN = 5
RISING_FACTOR = 1.5
# An anomaly: the period's bad count is improbable (one-sided exact binomial test, the
# trailing baseline's bad rate as p) at FAMILY_ALPHA shared among everything tested
# (Bonferroni), with at least MIN_TOTAL ratings and MIN_BAD bad ones in the period and
# MIN_BASELINE ratings in the baseline.
BASELINE_DAYS = 56  # the trailing 8 weeks before the period
FAMILY_ALPHA = 0.05
MIN_TOTAL = 20
MIN_BAD = 3
MIN_BASELINE = 50


@dataclass(frozen=True)
class Scope:
    """Which counts a question covers: a period, a department subtree (or all), an item."""

    date_from: date
    date_to: date
    department_path: str | None = None
    item_id: int | None = None

    def previous(self) -> tuple[date, date]:
        """The period of equal length just before this one."""
        days = (self.date_to - self.date_from).days + 1
        return self.date_from - timedelta(days=days), self.date_from - timedelta(days=1)


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p), exactly (summed in log space from k upwards).

    The terms after k only shrink once k is past the mean, so the sum stops when they
    no longer change it; below the mean the complement is summed instead.
    """
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)

    def log_pmf(i: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q

    if k > n * p:
        first = log_pmf(k)
        total = 0.0
        for i in range(k, n + 1):
            term = math.exp(log_pmf(i) - first)
            total += term
            if term < 1e-17 * total:
                break
        return min(1.0, math.exp(first) * total)
    # k at or below the mean: 1 − P(X ≤ k − 1), the lower sum shrinking away from the mean.
    first = log_pmf(k - 1)
    total = 0.0
    for i in range(k - 1, -1, -1):
        term = math.exp(log_pmf(i) - first)
        total += term
        if term < 1e-17 * total:
            break
    return max(0.0, 1.0 - math.exp(first) * total)


def _departments(session: Session, scope: Scope) -> list[int] | None:
    return subtree_ids(session, scope.department_path) if scope.department_path is not None else None


def _month_end(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


@dataclass(frozen=True)
class Plan:
    """How to sum a period from a monthly and a daily grain with the fewest daily rows.

    ``months`` (first days of the first and last month, or None) are added from the monthly
    grain, ``add`` day ranges from the daily grain, and ``take`` day ranges are subtracted
    from it: a month the period covers all but a few days of is read whole, less those days.
    """

    months: tuple[date, date] | None
    add: tuple[tuple[date, date], ...]
    take: tuple[tuple[date, date], ...]


def plan_period(d_from: date, d_to: date) -> Plan:
    """The plan for [d_from, d_to]: each month it touches is read whole (less the days outside
    the period) when fewer days lie outside than inside, else its days inside are read."""
    whole, add, take = [], [], []
    first = d_from.replace(day=1)
    while first <= d_to:
        last = _month_end(first)
        lo, hi = max(d_from, first), min(d_to, last)
        inside, outside = (hi - lo).days + 1, (last - first).days + 1 - ((hi - lo).days + 1)
        if outside < inside:
            whole.append(first)
            take += [r for r in ((first, lo - timedelta(days=1)), (hi + timedelta(days=1), last)) if r[0] <= r[1]]
        else:
            add.append((lo, hi))
        first = last + timedelta(days=1)
    # The months read whole are consecutive: only the first and last can fall outside.
    return Plan((whole[0], whole[-1]) if whole else None, _merge(add), _merge(take))


def _merge(ranges: list[tuple[date, date]]) -> tuple[tuple[date, date], ...]:
    out: list[tuple[date, date]] = []
    for lo, hi in ranges:
        if out and out[-1][1] + timedelta(days=1) == lo:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def _sum_terms(session, table, column, d_from, d_to, depts, item_id=None, only=None) -> dict[str, list[int]]:
    q = (select(table.term, func.sum(table.ratings), func.sum(table.bad))
         .where(column >= d_from, column <= d_to).group_by(table.term))
    if depts is not None:
        q = q.where(table.department_id.in_(depts))
    if item_id is not None:
        q = q.where(table.item_id == item_id)
    if only is not None:
        q = q.where(table.term.in_(only))
    return {term: [int(n), int(b)] for term, n, b in session.execute(q)}


def _combine(parts: list[tuple[int, dict]]) -> dict:
    """Sum ``{key: [numbers…]}`` dicts, each with its sign; keys left all zero are dropped."""
    out: dict = {}
    for sign, part in parts:
        for key, numbers in part.items():
            c = out.setdefault(key, [0] * len(numbers))
            for i, n in enumerate(numbers):
                c[i] += sign * n
    return {k: v for k, v in out.items() if any(v)}


def term_counts(session: Session, scope: Scope, d_from: date, d_to: date, depts, only=None) -> dict[str, list]:
    """``{term: [ratings, bad]}`` over [d_from, d_to]: whole months from the monthly grain
    (unless an item is asked for: only the daily grain has items), the rest from the days."""
    if scope.item_id is not None:
        return _sum_terms(session, InsightTerm, InsightTerm.rated_date, d_from, d_to, depts, scope.item_id, only)
    plan = plan_period(d_from, d_to)
    parts = [(sign, _sum_terms(session, InsightTerm, InsightTerm.rated_date, a, b, depts, None, only))
             for sign, ranges in ((1, plan.add), (-1, plan.take)) for a, b in ranges]
    if plan.months is not None:
        parts.append((1, _sum_terms(session, InsightTermMonthly, InsightTermMonthly.month, *plan.months, depts,
                                    None, only)))
    return _combine(parts)


def is_rising(count: int, previous: int) -> bool:
    """The rising rule (see RISING_MIN, RISING_FACTOR)."""
    return count >= RISING_MIN and count >= RISING_FACTOR * previous and count > previous


def top_terms(session: Session, scope: Scope, limit: int = TOP_TERMS, depts=None) -> list[dict]:
    """The period's most frequent terms, with their bad share and the previous period's count."""
    if depts is None:
        depts = _departments(session, scope)
    counts = term_counts(session, scope, scope.date_from, scope.date_to, depts)
    top = sorted(((t, c) for t, c in counts.items() if c[0]), key=lambda tc: (-tc[1][0], tc[0]))[:limit]
    previous = term_counts(session, scope, *scope.previous(), depts, only=[t for t, _ in top]) if top else {}
    out = []
    for term, (count, bad) in top:
        before = previous.get(term, [0, 0])[0]
        out.append({"term": term, "count": count, "bad": bad, "share_bad": bad / count,
                    "previous": before, "rising": is_rising(count, before)})
    return out


def _levels(session: Session, table, day, key, d_from: date, d_to: date, depts, extra=()) -> dict:
    """``{key: [ratings, bad]}`` of one rollup table over [d_from, d_to]."""
    total = table.level_1 + table.level_2 + table.level_3 + table.level_4 + table.level_5
    q = (select(key, func.sum(total), func.sum(table.level_1 + table.level_2))
         .where(day >= d_from, day <= d_to, *extra).group_by(key))
    if depts is not None:
        q = q.where(table.department_id.in_(depts))
    return {k: [int(n), int(b)] for k, n, b in session.execute(q)}


def _counts(session: Session, d_from: date, d_to: date, depts, item: bool, extra=()) -> dict:
    """``{key: [ratings, bad]}`` per department (its own ratings) or per item over [d_from, d_to],
    read as ``plan_period`` says: departments from ``stats_monthly`` and ``stats_daily``, items
    from ``stats_monthly_item`` and ``stats_daily_detail``."""
    if item:
        daily, monthly = StatsDailyDetail, StatsMonthlyItem
        dkey, mkey = StatsDailyDetail.item_id, StatsMonthlyItem.item_id
    else:
        daily, monthly = StatsDaily, StatsMonthly
        dkey, mkey = StatsDaily.department_id, StatsMonthly.department_id
    plan = plan_period(d_from, d_to)
    dextra = [c(daily) for c in extra]
    parts = [(sign, _levels(session, daily, daily.rated_date, dkey, lo, hi, depts, dextra))
             for sign, ranges in ((1, plan.add), (-1, plan.take)) for lo, hi in ranges]
    if plan.months is not None:
        parts.append((1, _levels(session, monthly, monthly.month, mkey, *plan.months, depts,
                                 [c(monthly) for c in extra])))
    return _combine(parts)


@dataclass(frozen=True)
class _Row:
    key: int
    total: int
    bad: int
    base_total: int
    base_bad: int


def _rates(session: Session, scope: Scope, depts, item: bool, extra=()) -> list[_Row]:
    """(key, period total, period bad, baseline total, baseline bad) per key, in key order."""
    period = _counts(session, scope.date_from, scope.date_to, depts, item, extra)
    base = _counts(session, scope.date_from - timedelta(days=BASELINE_DAYS), scope.date_from - timedelta(days=1),
                   depts, item, extra)
    return [_Row(k, *period.get(k, (0, 0)), *base.get(k, (0, 0))) for k in sorted(set(period) | set(base))]


def _tested(rows, kind: str) -> list[dict]:
    out = []
    for r in rows:
        total, bad, base_total, base_bad = int(r.total), int(r.bad), int(r.base_total), int(r.base_bad)
        if total < MIN_TOTAL or bad < MIN_BAD or base_total < MIN_BASELINE:
            continue
        # A clean baseline (no bad rating) counts as half a bad one, so one bad rating
        # in the period is unusual rather than impossible.
        p0 = max(base_bad, 0.5) / base_total
        if bad / total <= p0:
            continue
        out.append({"kind": kind, "key": r.key, "bad": bad, "total": total, "bad_rate": bad / total,
                    "baseline_rate": base_bad / base_total, "p_value": binomial_tail(bad, total, p0)})
    return out


def anomalies(session: Session, scope: Scope, depts=None) -> list[dict]:
    """Items and departments whose bad rate in the period is significantly above their baseline."""
    if depts is None:
        depts = _departments(session, scope)
    candidates = []
    if scope.item_id is None:
        candidates += _tested(_rates(session, scope, depts, item=False), "department")
        item_rows = _rates(session, scope, depts, item=True, extra=(lambda t: t.item_id != 0,))
    else:
        item_rows = _rates(session, scope, depts, item=True, extra=(lambda t: t.item_id == scope.item_id,))
    candidates += _tested(item_rows, "item")
    # Bonferroni over every key that was eligible for the test.
    alpha = FAMILY_ALPHA / max(1, len(candidates))
    found = [c for c in candidates if c["p_value"] < alpha]
    names = {}
    dept_ids = [c["key"] for c in found if c["kind"] == "department"]
    item_ids = [c["key"] for c in found if c["kind"] == "item"]
    if dept_ids:
        names.update({("department", d.id): (d.code, d.name) for d in session.execute(
            select(Department.id, Department.code, Department.name).where(Department.id.in_(dept_ids)))})
    if item_ids:
        names.update({("item", i.id): (i.code, i.name) for i in session.execute(
            select(ServiceItem.id, ServiceItem.code, ServiceItem.name).where(ServiceItem.id.in_(item_ids)))})
    out = []
    for c in sorted(found, key=lambda c: (c["p_value"], -c["bad"], c["kind"], c["key"])):
        code, name = names.get((c["kind"], c.pop("key")), ("", ""))
        out.append({**c, "code": code, "name": name})
    return out


def hotspots(session: Session, scope: Scope) -> dict:
    """``{terms, anomalies}`` for the scope (SPEC §10)."""
    depts = _departments(session, scope)
    return {"terms": top_terms(session, scope, depts=depts), "anomalies": anomalies(session, scope, depts=depts)}
