"""Turning a bad rating into its one rectification case.

Plain functions over a session, called by the routing task and the sweep; the caller
commits. ``cases.rating_id`` is unique and the insert is ``ON CONFLICT DO NOTHING``, so a
task delivered twice (a redelivery after a worker died, or the sweep racing the first
send) still makes one case.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from models import OPEN_STATUSES, Case, CaseEvent, Rating, RouteResend, User, conflict
from models.types import utcnow
from service.cases.deadlines import WorkCalendar


def pick_handler(session: Session, department_id: int) -> int | None:
    """The active handler of the department with the fewest open cases (lowest id on a tie)."""
    open_cases = and_(Case.assignee_id == User.id, Case.status.in_(OPEN_STATUSES))
    stmt = (
        select(User.id)
        .outerjoin(Case, open_cases)
        .where(User.department_id == department_id, User.role == "handler", User.active.is_(True))
        .group_by(User.id)
        .order_by(func.count(Case.id), User.id)
        .limit(1)
    )
    return session.scalar(stmt)


def route(session: Session, rating_id: int, calendar: WorkCalendar | None = None) -> int | None:
    """Create the case of bad rating ``rating_id`` if it has none; return the case id.

    Returns None for a rating that is missing or not bad.
    """
    rating = session.get(Rating, rating_id)
    if rating is None or not rating.negative:
        return None
    existing = session.scalar(select(Case.id).where(Case.rating_id == rating_id))
    if existing is not None:
        return existing

    settings = current_app.config["HCP_SETTINGS"]
    calendar = calendar or WorkCalendar.load(session)
    handler = pick_handler(session, rating.department_id)
    status = "assigned" if handler else "unassigned"
    now = utcnow()
    values = {
        "rating_id": rating.id,
        "department_id": rating.department_id,
        "assignee_id": handler,
        "status": status,
        # An anonymous rater cannot be called back, so there is no callback deadline (SPEC §9).
        "callback_due": (calendar.due(rating.received_at, settings.callback_working_days)
                         if rating.real_name else None),
        "close_due": calendar.due(rating.received_at, settings.close_working_days),
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    stmt = (conflict.insert(session, Case).values(values)
            .on_conflict_do_nothing(index_elements=["rating_id"]).returning(Case.id))
    case_id = session.scalar(stmt)
    if case_id is None:  # another worker made it first
        return session.scalar(select(Case.id).where(Case.rating_id == rating_id))
    note = "自动分派" if handler else "部门无可用承办人，待分派"
    session.add(CaseEvent(case_id=case_id, at=now, actor_id=None, action="route",
                          from_status=None, to_status=status, note=note,
                          data={"assignee_id": handler}))
    return case_id


# A rating resent n times waits grace·2^n before the next resend, but never longer than this.
RESEND_BACKOFF_CAP = timedelta(minutes=30)


def unrouted(session: Session, older_than: timedelta, limit: int = 1000) -> list[int]:
    """Bad ratings received before ``now - older_than`` that still have no case and are
    due for a (re)send: never resent yet, or their backoff (see ``note_resent``) is over."""
    now = utcnow()
    cutoff: datetime = now - older_than
    stmt = (
        select(Rating.id)
        .outerjoin(Case, Case.rating_id == Rating.id)
        .outerjoin(RouteResend, RouteResend.rating_id == Rating.id)
        .where(Rating.negative.is_(True), Case.id.is_(None), Rating.received_at < cutoff,
               or_(RouteResend.rating_id.is_(None), RouteResend.next_at <= now))
        .order_by(Rating.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def note_resent(session: Session, rating_ids: list[int], grace: timedelta) -> None:
    """Record that the sweep resent these ratings; the next resend of each waits
    grace·2^attempts (capped), so a backlog is resent a few times, not at every sweep.
    The caller commits."""
    if not rating_ids:
        return
    now = utcnow()
    attempts = dict(session.execute(
        select(RouteResend.rating_id, RouteResend.attempts).where(RouteResend.rating_id.in_(rating_ids))).all())
    rows = []
    for rating_id in rating_ids:
        n = attempts.get(rating_id, 0)
        wait = min(grace * (2 ** min(n, 20)), RESEND_BACKOFF_CAP)
        rows.append({"rating_id": rating_id, "attempts": n + 1, "next_at": now + max(wait, timedelta(seconds=1))})
    stmt = conflict.insert(session, RouteResend).values(rows)
    stmt = stmt.on_conflict_do_update(index_elements=["rating_id"],
                                      set_={"attempts": stmt.excluded.attempts, "next_at": stmt.excluded.next_at})
    session.execute(stmt)
