"""The 一事一评 figures of the summary (SPEC §7), counted from the raw rows.

``default`` (default ratings), ``good_rate_rated`` (the good rate of the ratings people
gave), ``active_rating_rate`` 主动评价率 (ratings not default / ratings) and
``rated_projects_rate`` 办件评价率 (applications that reached a rated stage in the period
and got a rating not default / those applications). Default ratings are few beside all
ratings and have a partial index; applications are counted by their invitations.
"""
from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from models import Invitation, Project, Rating
from models.clock import SHANGHAI


def _ratings_where(stmt, f, departments):
    stmt = stmt.where(Rating.rated_date >= f.date_from, Rating.rated_date <= f.date_to)
    if departments is not None:
        stmt = stmt.where(Rating.department_id.in_(departments))
    for column, value in ((Rating.channel, f.channel), (Rating.item_id, f.item_id), (Rating.window, f.window)):
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


def figures(session: Session, f, departments: list[int] | None, total: int, good: int) -> dict:
    """The four figures (and their counts) for Filters ``f``; ``total`` and ``good`` from the summary."""
    from service.stats.figures import ratio

    default, default_good = session.execute(_ratings_where(
        select(func.count(), func.coalesce(func.sum(case((Rating.level >= 3, 1), else_=0)), 0))
        .where(Rating.is_default), f, departments)).one()
    default, default_good = int(default), int(default_good)

    # Applications by the local date their rated stage was reached.
    start, end = _utc_bounds(f)
    reached = (select(Invitation.project_id).join(Project, Project.id == Invitation.project_id)
               .where(Invitation.stage_at >= start, Invitation.stage_at < end))
    if departments is not None:
        reached = reached.where(Project.department_id.in_(departments))
    if f.item_id is not None:
        reached = reached.where(Project.item_id == f.item_id)
    rated = reached.where(select(Rating.id).where(Rating.invitation_id == Invitation.id,
                                                  Rating.is_default.is_(False)).exists())
    projects = session.scalar(select(func.count(func.distinct(reached.subquery().c.project_id))))
    rated_projects = session.scalar(select(func.count(func.distinct(rated.subquery().c.project_id))))
    given = total - default
    return {
        "default": default, "rated_total": given, "rated_good": good - default_good,
        "good_rate_rated": ratio(good - default_good, given),
        "active_rating_rate": ratio(given, total),
        "projects": projects, "rated_projects": rated_projects,
        "rated_projects_rate": ratio(rated_projects, projects),
    }


def _utc_bounds(f):
    from datetime import datetime, time, timedelta

    start = datetime.combine(f.date_from, time(), SHANGHAI)
    end = datetime.combine(f.date_to + timedelta(days=1), time(), SHANGHAI)
    return start, end
