"""The managers' figures (SPEC §3) as plain functions over a session.

Everything comes from the rollups (models/stats.py), kept exact by triggers in the
transaction of every rating insert and case change. The counts that change with the
clock (``open``, ``overdue_open``, ``red``, ``yellow`` and the overdue part of
``on_time_rate``) come from ``stats_open``, which keeps each open case's closure
deadline and next deadline; the cards are ``service.cases.warnings.Cards`` for the day
asked, the same computation as the badges and the case filters. Every definition is written out in
docs/figures.md; a rate with a zero denominator is ``None``.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import case as sql_case, func, select
from sqlalchemy.orm import Session

from models import CHANNEL_LABELS, Department, Rating, ServiceItem
from models.stats import COUNTERS, StatsDaily, StatsDailyDetail, StatsMonthly, StatsOpen
from models.types import utcnow
from models.clock import local_date
from service.cases.warnings import Cards

DEFAULT_CHANNEL = "default"  # the channel of default ratings (默认评价), SPEC §7
BREAKDOWNS = ("department", "channel", "item", "window", "staff", "month", "day", "reason")
LIVE_COUNTERS = ("open", "overdue_open", "red", "yellow")
RATES = ("good_rate", "disposal_rate", "rectification_rate", "callback_rate", "on_time_rate",
         "feedback_satisfaction_rate")


@dataclass(frozen=True)
class Filters:
    """Which ratings the figures cover: ``rated_date`` in [date_from, date_to], and
    optionally a department subtree (by its path), a channel, a service item, a window."""

    date_from: date
    date_to: date
    department_path: str | None = None  # None: every department
    channel: str | None = None
    item_id: int | None = None
    window: str | None = None


def ratio(numerator: int, denominator: int) -> float | None:
    """numerator / denominator, or None when there is nothing to divide by."""
    return numerator / denominator if denominator else None


def figures_from(c: dict) -> dict:
    """The §3 figures (and the counts behind each rate) from summed counters."""
    levels = {str(k): int(c.get(f"level_{k}", 0)) for k in range(1, 6)}
    bad = levels["1"] + levels["2"]
    good = levels["3"] + levels["4"] + levels["5"]
    total = bad + good
    n = {k: int(c.get(k, 0)) for k in COUNTERS + LIVE_COUNTERS}
    rectifiable = bad - n["closed_invalid"] - n["closed_explained"]
    on_time_base = n["closed"] + n["overdue_open"]
    default, default_good = int(c.get("default_total", 0)), int(c.get("default_good", 0))
    projects, rated_projects = c.get("projects"), c.get("rated_projects")
    return {
        "total": total, "good": good, "bad": bad, "by_level": levels,
        "good_rate": ratio(good, total),
        "disposal_rate": ratio(n["closed"], bad),
        "rectification_rate": ratio(n["closed_rectified"], rectifiable),
        "callback_rate": ratio(n["called_back"], n["bad_real_name"]),
        "on_time_rate": ratio(n["closed_on_time"], on_time_base),
        "feedback_satisfaction_rate": ratio(n["satisfied_yes"], n["satisfied_known"]),
        "open": n["open"], "overdue_open": n["overdue_open"], "red": n["red"], "yellow": n["yellow"],
        # the numerators and denominators, so every rate can be checked by hand
        "closed": n["closed"], "closed_rectified": n["closed_rectified"],
        "closed_explained": n["closed_explained"], "closed_invalid": n["closed_invalid"],
        "rectifiable": rectifiable, "closed_on_time": n["closed_on_time"],
        "on_time_base": on_time_base, "called_back": n["called_back"],
        "real_name_bad": n["bad_real_name"], "satisfied_yes": n["satisfied_yes"],
        "satisfied_known": n["satisfied_known"],
        "extended": n["extended"],
        # §7: default ratings (默认评价) and the rates without them
        "default": default, "rated_total": total - default, "rated_good": good - default_good,
        "good_rate_rated": ratio(good - default_good, total - default),
        "active_rating_rate": ratio(total - default, total),
        # 办件评价率: None where the grouping has no applications (channel, window, reason)
        "projects": projects, "rated_projects": rated_projects,
        "rated_projects_rate": ratio(rated_projects, projects) if projects is not None else None,
    }


def subtree_ids(session: Session, path: str) -> list[int]:
    """Ids of the department at ``path`` and every department under it."""
    return list(session.scalars(select(Department.id).where(Department.path.startswith(path))))


def _uses_detail(f: Filters, by: str | None) -> bool:
    return f.item_id is not None or f.window is not None or by in ("item", "window", "staff")


def _day_column(table):
    return table.month if table is StatsMonthly else table.rated_date


def _rollup_keys(table, by: str | None) -> list:
    return {
        None: [], "department": [table.department_id], "channel": [table.channel],
        "item": [getattr(table, "item_id", None)], "window": [table.department_id, getattr(table, "window", None)],
        "staff": [getattr(table, "staff_no", None)], "month": [_day_column(table)], "day": [_day_column(table)],
    }[by]


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def split_period(first: date, last: date) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """The whole months inside [first, last] (as first days) and the odd days around them."""
    full_from = first if first.day == 1 else _next_month(first)
    month_end = _next_month(last) - timedelta(days=1)
    full_to = last if last == month_end else _month_start(last) - timedelta(days=1)
    if full_from > full_to:
        return None, [(first, last)]
    days = []
    if first < full_from:
        days.append((first, full_from - timedelta(days=1)))
    if full_to < last:
        days.append((full_to + timedelta(days=1), last))
    return (full_from, _month_start(full_to)), days


def _where(stmt, cols, f: Filters, departments: list[int] | None, period: tuple[date, date] | None = None):
    lo, hi = period or (f.date_from, f.date_to)
    day = _day_column(cols)
    stmt = stmt.where(day >= lo, day <= hi)
    if departments is not None:
        stmt = stmt.where(cols.department_id.in_(departments))
    if f.channel is not None:
        stmt = stmt.where(cols.channel == f.channel)
    if f.item_id is not None:
        stmt = stmt.where(cols.item_id == f.item_id)
    if f.window is not None:
        stmt = stmt.where(cols.window == f.window)
    return stmt


def scope_ids(session: Session, f: Filters) -> list[int] | None:
    """The department ids ``f`` covers, or None for every department."""
    if f.department_path is None:
        return None
    departments = subtree_ids(session, f.department_path)
    if len(departments) == session.scalar(select(func.count(Department.id))):
        return None  # the whole tree: no filter to apply
    return departments


def counters(session: Session, f: Filters, by: str | None = None, today: date | None = None) -> dict[tuple, dict]:
    """Summed counters per raw group key (``()`` when ``by`` is None), rollup and live.

    Beside the rollups' counters, ``default_total`` and ``default_good``: the ratings of
    channel ``default``, which only the default-rating sweep makes (a device of that
    channel cannot be added), so the rollups count default ratings exactly.
    """
    today = today or local_date(utcnow())
    departments = scope_ids(session, f)
    if _uses_detail(f, by):
        parts = [(StatsDailyDetail, (f.date_from, f.date_to))]
    elif by == "day":
        parts = [(StatsDaily, (f.date_from, f.date_to))]
    else:
        months, days = split_period(f.date_from, f.date_to)
        parts = [(StatsDaily, d) for d in days] + ([(StatsMonthly, months)] if months else [])
    out: dict[tuple, dict] = defaultdict(dict)

    for table, period in parts:
        keys = _rollup_keys(table, by)
        is_default = (table.channel == DEFAULT_CHANNEL).label("is_default")
        stmt = select(*keys, is_default, *[func.sum(getattr(table, c)).label(c) for c in COUNTERS])
        stmt = _where(stmt, table, f, departments, period).group_by(*keys, is_default)
        for row in session.execute(stmt):
            values = row._mapping
            got = {c: int(values[c] or 0) for c in COUNTERS}
            if values["is_default"]:
                got["default_good"] = got["level_3"] + got["level_4"] + got["level_5"]
                got["default_total"] = got["default_good"] + got["level_1"] + got["level_2"]
            _add(out[tuple(row[:len(keys)])], got)

    # The clock-dependent counts, from the open-case rollup (the open cases are few, but
    # joining each to its rating among millions costs more than this).
    keys = _rollup_keys(StatsOpen, by)
    flag = lambda cond: func.sum(sql_case((cond, StatsOpen.open_cases), else_=0))  # noqa: E731
    cards = Cards.on(session, today)
    live = select(*keys, func.sum(StatsOpen.open_cases).label("open"),
                  flag(StatsOpen.close_due < today).label("overdue_open"),
                  flag(cards.where("red", StatsOpen.deadline, StatsOpen.due)).label("red"),
                  flag(cards.where("yellow", StatsOpen.deadline, StatsOpen.due)).label("yellow"))
    live = _where(live.where(StatsOpen.open_cases != 0), StatsOpen, f, departments)
    if keys:
        live = live.group_by(*keys)
    for row in session.execute(live):
        values = row._mapping
        out[tuple(row[:len(keys)])].update({c: int(values[c] or 0) for c in LIVE_COUNTERS})
    return out


def _add(into: dict, more: dict) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def summary(session: Session, f: Filters, today: date | None = None) -> dict:
    """Every §3 figure over the ratings ``f`` selects, and the 一事一评 figures (§7)."""
    from service.stats import applications

    departments = scope_ids(session, f)
    c = counters(session, f, None, today).get((), {})
    c.update(applications.counts(session, f, departments).get((), {"projects": 0, "rated_projects": 0}))
    return {**figures_from(c), "excluded": excluded(session, f, departments)}


def excluded(session: Session, f: Filters, departments: list[int] | None) -> int:
    """Ratings ``f`` selects that a confirmed suspicious flag excluded (from the raw rows: they are
    in no rollup; few, and under a partial index)."""
    stmt = select(func.count()).select_from(Rating).where(
        Rating.excluded_at.is_not(None), Rating.rated_date >= f.date_from, Rating.rated_date <= f.date_to)
    if departments is not None:
        stmt = stmt.where(Rating.department_id.in_(departments))
    for column, value in ((Rating.channel, f.channel), (Rating.item_id, f.item_id), (Rating.window, f.window)):
        if value is not None:
            stmt = stmt.where(column == value)
    return int(session.scalar(stmt) or 0)


def _department_grouping(session: Session, f: Filters) -> tuple[dict[int, int], dict[int, Department], int | None]:
    """Maps each department id to the group it is counted in, for ``by=department``.

    The groups are the children of the scope's root department, each with its subtree,
    plus the root itself for ratings that belong to it directly (labelled 本级). With
    several top-level departments and no scope, each top-level subtree is a group.
    """
    if f.department_path is not None:
        depts = list(session.scalars(select(Department).where(Department.path.startswith(f.department_path))))
    else:
        depts = list(session.scalars(select(Department)))
    by_id = {d.id: d for d in depts}
    if f.department_path is not None:
        root_path = f.department_path
    else:
        tops = [d for d in depts if d.parent_id is None]
        root_path = tops[0].path if len(tops) == 1 else "/"
    root_id = int(root_path.strip("/").split("/")[-1]) if root_path != "/" else None
    depth = root_path.count("/")  # the next id along a path lies at this index
    mapping = {}
    for d in depts:
        parts = d.path.split("/")
        mapping[d.id] = int(parts[depth - 1]) if d.id == root_id else int(parts[depth])
    return mapping, by_id, root_id


def breakdown(session: Session, f: Filters, by: str, today: date | None = None) -> dict:
    """The figures per group of ``by`` (sorted) and a total row equal to ``summary``.

    Departments, channels, items, windows and staff are sorted by number of ratings
    (most first, then by key); months and days by date.
    """
    if by not in BREAKDOWNS:
        raise ValueError(f"by must be one of {', '.join(BREAKDOWNS)}")
    if by == "reason":  # overlapping groups, counted from the raw rows
        from service.stats import by_reason
        return by_reason.breakdown(session, f, today)
    from service.stats import applications

    raw = counters(session, f, by, today)
    departments = scope_ids(session, f)
    for key, c in applications.counts(session, f, departments, by).items():
        _add(raw.setdefault(key, {}), c)  # a group may have applications and no rating yet
    groups: dict = defaultdict(dict)
    labels: dict = {}
    if by == "department":
        mapping, depts, root_id = _department_grouping(session, f)
        for (dept_id,), c in raw.items():
            gid = mapping.get(dept_id, dept_id)
            _add(groups[gid], c)
        for gid in groups:
            d = depts.get(gid) or session.get(Department, gid)
            labels[gid] = (d.code, d.name + ("（本级）" if gid == root_id else ""))
    elif by in ("month", "day"):
        for (day,), c in raw.items():
            key = day.strftime("%Y-%m") if by == "month" else day.isoformat()
            _add(groups[key], c)
            labels[key] = (key, key)
    elif by == "channel":
        for (ch,), c in raw.items():
            _add(groups[ch], c)
            labels[ch] = (ch, CHANNEL_LABELS.get(ch, ch))
    elif by == "item":
        items = {i.id: i for i in session.scalars(select(ServiceItem).where(
            ServiceItem.id.in_([k[0] for k in raw if k[0]])))}
        for (item_id,), c in raw.items():
            _add(groups[item_id], c)
            labels[item_id] = ((items[item_id].code, items[item_id].name) if item_id in items
                               else ("", "未指定事项"))
    elif by == "window":
        depts = {d.id: d for d in session.scalars(select(Department).where(
            Department.id.in_({k[0] for k in raw})))}
        for (dept_id, window), c in raw.items():
            _add(groups[(dept_id, window)], c)
            name = depts[dept_id].name
            labels[(dept_id, window)] = (f"{depts[dept_id].code}/{window}",
                                         f"{name} {window}号窗口" if window else f"{name} 无窗口")
    else:  # staff
        for (staff_no,), c in raw.items():
            _add(groups[staff_no], c)
            labels[staff_no] = (staff_no, staff_no or "未填工号")

    rows = []
    total: dict = {}
    for gid, c in groups.items():
        _add(total, c)
        key, label = labels[gid]
        if by in applications.GROUPED:
            c = {"projects": 0, "rated_projects": 0, **c}
        rows.append({"key": key, "label": label, **figures_from(c)})
    # An application reaching two rated stages on two days is in both days, once in the total.
    total.update(applications.counts(session, f, departments).get((), {"projects": 0, "rated_projects": 0}))
    if by in ("month", "day"):
        rows.sort(key=lambda r: r["key"])
    else:
        rows.sort(key=lambda r: (-r["total"], r["key"]))
    return {"by": by, "groups": rows, "total": figures_from(total)}


