"""办件评价率 (``rated_projects_rate``, SPEC §7): applications counted by their invitations.

``projects`` are the applications that reached a rated stage in the period (by the local
date of the stage, Asia/Shanghai), ``rated_projects`` those of them whose invitation got a
rating that is not default. Department and item filters apply; channel and window do not
(an application has neither). The rating figures of §7 (``default``, ``good_rate_rated``,
``active_rating_rate``) come from the rollups (service/stats/figures.py).

Grouped for the breakdowns by the application's department, item, staff number, or the
day or month its stage was reached; an application is counted once per group (an
application with two rated stages on two days is in both days, and once in the total).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.orm import Session

from models import Invitation, Project, Rating
from models.clock import SHANGHAI
from service.stats.rollup import closed_day_sql, month_sql

# The breakdowns that have a grouping of applications; the others show no 办件评价率.
GROUPED = ("department", "item", "staff", "month", "day")


def _group_column(dialect: str, by: str | None):
    day = closed_day_sql(dialect, "invitations.stage_at")
    return {
        None: None, "department": Project.department_id, "item": Project.item_id,
        "staff": func.coalesce(Project.staff_no, ""),
        "day": literal_column(day), "month": literal_column(month_sql(dialect, day)),
    }[by]


def _as_date(value):
    # SQLite's date() answers text; PostgreSQL's ::date a date.
    return date.fromisoformat(value) if isinstance(value, str) else value


def counts(session: Session, f, departments: list[int] | None, by: str | None = None) -> dict[tuple, dict]:
    """``{group key: {"projects": n, "rated_projects": m}}`` (key ``()`` when ``by`` is None)."""
    if by is not None and by not in GROUPED:
        return {}
    start = datetime.combine(f.date_from, time(), SHANGHAI)
    end = datetime.combine(f.date_to + timedelta(days=1), time(), SHANGHAI)
    group = _group_column(session.get_bind().dialect.name, by)
    # (a rating a confirmed suspicious flag excluded does not make its application rated)
    rated = (select(Rating.id).where(Rating.invitation_id == Invitation.id, Rating.is_default.is_(False),
                                     Rating.excluded_at.is_(None)).exists())
    keys = [group.label("g")] if group is not None else []
    stmt = (select(*keys, func.count(func.distinct(Invitation.project_id)).label("projects"),
                   # the project's id when rated, else NULL (which count() skips)
                   func.count(func.distinct(case((rated, Invitation.project_id), else_=None)))
                   .label("rated_projects"))
            .join(Project, Project.id == Invitation.project_id)
            .where(Invitation.stage_at >= start, Invitation.stage_at < end))
    if departments is not None:
        stmt = stmt.where(Project.department_id.in_(departments))
    if f.item_id is not None:
        stmt = stmt.where(Project.item_id == f.item_id)
    if keys:
        stmt = stmt.group_by(group)
    out = {}
    for row in session.execute(stmt):
        key = () if not keys else ((_as_date(row.g),) if by in ("day", "month") else (row.g,))
        out[key] = {"projects": int(row.projects), "rated_projects": int(row.rated_projects)}
    return out

