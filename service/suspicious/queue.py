"""The supervisors' queue of suspicious-rating flags: the flags in a user's scope, with their counts."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case as sql_case, func, select
from sqlalchemy.orm import Session

from models import Case, Department, Rating, SuspiciousFlag, SuspiciousFlagRating, User
from service.auth.access import in_scope, scope_filter


@dataclass
class Query:
    """Which flags: a state (None: every state), a rule, a department subtree (by path)."""

    state: str | None = "open"
    rule: str | None = None
    department_path: str | None = None
    page: int = 1
    per_page: int = 50


def find(session: Session, user: User, flag_id: int, lock: bool = False) -> SuspiciousFlag | None:
    """The flag if it lies in the user's scope (None otherwise, so existence is not revealed)."""
    stmt = select(SuspiciousFlag).where(SuspiciousFlag.id == flag_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=SuspiciousFlag)
    flag = session.scalar(stmt)
    if flag is None or not in_scope(user, flag.department):
        return None
    return flag


def counts(session: Session, flag_ids: list[int]) -> dict[int, dict]:
    """Per flag: ratings, good, bad, excluded, first and last rated_at."""
    if not flag_ids:
        return {}
    fr, r = SuspiciousFlagRating, Rating
    rows = session.execute(
        select(fr.flag_id, func.count(), func.sum(sql_case((r.negative, 1), else_=0)),
               func.sum(sql_case((r.excluded_at.is_not(None), 1), else_=0)), func.min(r.rated_at), func.max(r.rated_at))
        .join(r, r.id == fr.rating_id).where(fr.flag_id.in_(flag_ids)).group_by(fr.flag_id))
    out = {}
    for flag_id, n, bad, excluded, first, last in rows:
        out[flag_id] = {"ratings": n, "bad": int(bad or 0), "good": n - int(bad or 0),
                        "excluded": int(excluded or 0), "first_rated_at": first, "last_rated_at": last}
    return out


def listing(session: Session, user: User, q: Query) -> tuple[list[SuspiciousFlag], int]:
    """The flags ``q`` selects in the user's scope (newest first), each with ``.counts`` set; and their number."""
    f = SuspiciousFlag
    stmt = select(f).join(Department, Department.id == f.department_id).where(scope_filter(user, f.department_id))
    if q.state is not None:
        stmt = stmt.where(f.state == q.state)
    if q.rule is not None:
        stmt = stmt.where(f.rule == q.rule)
    if q.department_path is not None:
        stmt = stmt.where(Department.path.startswith(q.department_path))
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    flags = list(session.scalars(stmt.order_by(f.opened_at.desc(), f.id.desc())
                                 .limit(q.per_page).offset((q.page - 1) * q.per_page)))
    got = counts(session, [x.id for x in flags])
    for x in flags:
        x.counts = got.get(x.id, {"ratings": 0, "good": 0, "bad": 0, "excluded": 0,
                                  "first_rated_at": None, "last_rated_at": None})
    return flags, total


def ratings(session: Session, flag: SuspiciousFlag, limit: int = 500) -> list[dict]:
    """The flag's ratings (at most ``limit``, oldest first) with their case, for the detail view."""
    r = Rating
    rows = session.execute(
        select(r.id, r.level, r.negative, r.rated_at, r.channel, r.comment, r.rater_phone_masked, r.excluded_at,
               Case.id, Case.status)
        .join(SuspiciousFlagRating, SuspiciousFlagRating.rating_id == r.id)
        .outerjoin(Case, Case.rating_id == r.id)
        .where(SuspiciousFlagRating.flag_id == flag.id).order_by(r.rated_at, r.id).limit(limit))
    return [{"id": i, "level": level, "negative": neg, "rated_at": at, "channel": ch, "comment": comment,
             "rater_phone": phone, "excluded": excluded is not None, "case_id": case_id, "case_status": status}
            for i, level, neg, at, ch, comment, phone, excluded, case_id, status in rows]
