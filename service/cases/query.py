"""One case query (scope, filters, search, order) for every list of cases.

The API list (``GET /api/v1/cases``), the web worklist, the case export and the
dashboard drill-down all build their statement here, so a filter means the same thing
everywhere:

    filters = CaseFilters(status="open", warning="red", q="13812345678")
    stmt = case_select(session, user, filters)          # scoped and filtered, unordered
    rows, total = page(session, ordered(stmt), page=1, per_page=50)

``q`` finds a case by its id, the exact 办件编号, the rater's full phone (through the
keyed blind index ``ratings.rater_phone_index``; rows are never decrypted) or, when none
of those matches, a word of the comment. Warning and overdue filters use
``service.cases.warnings.Cards`` for today, the computation the badges show.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, func, select, union
from sqlalchemy.orm import Session, selectinload

from models import OPEN_STATUSES, STATUS_LABELS, Case, Department, Rating, ServiceItem, User
from service.auth.access import scope_filter
from service.cases.warnings import Cards, next_due_sql
from service.privacy import blind_index, normalise_phone

WARNING_FILTERS = ("yellow", "red", "any")
# A query that can be a phone number: digits with the usual separators, 7 digits or more.
PHONE_LIKE = re.compile(r"^\+?[\d\s\-()]{7,}$")


class QueryError(ValueError):
    """A filter naming something that does not exist (the API answers 422 naming ``field``)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


@dataclass
class CaseFilters:
    """What a case list shows; every field optional. ``status`` is a state code or ``open``."""

    status: str | None = None
    department: str | None = None  # a department code; its subtree is included
    assignee_me: bool = False
    warning: str | None = None  # yellow | red | any
    overdue: bool = False  # open cases past their next deadline
    q: str | None = None
    rated_from: date | None = None  # the rating's rated_at, Asia/Shanghai date
    rated_to: date | None = None
    item: str | None = None  # a service item code
    channel: str | None = None

    @classmethod
    def from_args(cls, args: dict) -> CaseFilters:
        """From loaded query arguments (the API's CaseQuery, the web list's form)."""
        known = {k: args[k] for k in ("status", "department", "warning", "q", "rated_from", "rated_to",
                                      "item", "channel") if args.get(k) not in (None, "")}
        return cls(**known, assignee_me=args.get("assignee") == "me", overdue=bool(args.get("overdue")))


def search_ids(session: Session, q: str) -> list[int] | None:
    """Case ids matching ``q`` exactly (case id, 办件编号, rater phone); None if ``q`` is empty.

    Each branch is an index lookup (the case's primary key, ``ix_ratings_project_no``,
    ``ix_ratings_rater_phone_index``), so a search stays fast on tens of millions of ratings.
    """
    q = q.strip()
    if not q:
        return None
    branches = [select(Case.id).join(Rating, Rating.id == Case.rating_id).where(Rating.project_no == q)]
    if q.isdigit() and len(q) <= 18:
        branches.append(select(Case.id).where(Case.id == int(q)))
    if PHONE_LIKE.match(q) and normalise_phone(q):
        branches.append(select(Case.id).join(Rating, Rating.id == Case.rating_id)
                        .where(Rating.rater_phone_index == blind_index(q)))
    return list(session.scalars(union(*branches)))


def case_select(session: Session, user: User, filters: CaseFilters, cards: Cards | None = None,
                join_rating: bool = False) -> Select:
    """``select(Case)`` within ``user``'s department subtree, narrowed by ``filters`` (unordered).

    The rating is joined when a filter needs it, or always with ``join_rating`` (for
    callers that select its columns too). Raises QueryError for an unknown department
    or item code.
    """
    f = filters
    stmt = select(Case).where(scope_filter(user, Case.department_id))
    if f.status == "open":
        stmt = stmt.where(Case.status.in_(OPEN_STATUSES))
    elif f.status:
        if f.status not in STATUS_LABELS:
            raise QueryError("status", f"unknown status {f.status}")
        stmt = stmt.where(Case.status == f.status)
    if f.department:
        path = session.scalar(select(Department.path).where(Department.code == f.department))
        if path is None:
            raise QueryError("department", "unknown department")
        stmt = stmt.where(Case.department_id.in_(select(Department.id).where(Department.path.startswith(path))))
    if f.assignee_me:
        stmt = stmt.where(Case.assignee_id == user.id)
    if f.warning or f.overdue:
        cards = cards or Cards.now(session)
        if f.warning:
            stmt = stmt.where(cards.where(f.warning))
        if f.overdue:
            stmt = stmt.where(cards.overdue())
    rating_conditions = []
    if f.rated_from:
        rating_conditions.append(Rating.rated_date >= f.rated_from)
    if f.rated_to:
        rating_conditions.append(Rating.rated_date <= f.rated_to)
    if f.channel:
        rating_conditions.append(Rating.channel == f.channel)
    if f.item:
        item_id = session.scalar(select(ServiceItem.id).where(ServiceItem.code == f.item))
        if item_id is None:
            raise QueryError("item", "unknown service item")
        rating_conditions.append(Rating.item_id == item_id)
    if f.q and f.q.strip():
        ids = search_ids(session, f.q)
        if ids:
            stmt = stmt.where(Case.id.in_(ids))
        else:  # no identifier matched: a word of the comment
            rating_conditions.append(Rating.comment.contains(f.q.strip(), autoescape=True))
    if rating_conditions or join_rating:
        stmt = stmt.join(Rating, Rating.id == Case.rating_id).where(*rating_conditions)
    return stmt


def ordered(stmt: Select) -> Select:
    """Open cases first, each by its next deadline (nearest first), then by id."""
    return stmt.order_by(Case.status == "closed", next_due_sql(), Case.id)


LIST_OPTIONS = (selectinload(Case.rating).selectinload(Rating.item), selectinload(Case.department),
                selectinload(Case.assignee))


def page(session: Session, stmt: Select, page: int, per_page: int) -> tuple[list[Case], int]:
    """One page of ``stmt``'s cases (rating, department and assignee loaded) and the total."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = session.scalars(stmt.options(*LIST_OPTIONS).offset((page - 1) * per_page).limit(per_page)).all()
    return list(rows), total
