"""Deciding a suspicious flag: confirm (exclude its good ratings from every figure), dismiss, restore.

A confirm excludes only good ratings: a bad rating keeps its case, and reaches the figures'
``closed_invalid`` only through the workflow's invalid-review path (claim_invalid → approve,
service/cases/workflow.py); the confirm lists those as needing that review. Excluding and
restoring adjust the rollups (service/stats/rollup.adjust) and the hot-spot term counts
(service/insights/counting) in the same transaction, set-based, so the figures stay equal
to the raw rows with the exclusions applied (``hcp stats check``). Four eyes: the user who
confirmed a flag may not restore it. Every decision is kept in the flag's history.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import Session, aliased

from models import Case, Rating, SuspiciousFlag, SuspiciousFlagEvent, SuspiciousFlagRating, User
from models.types import utcnow
from service.insights import counting
from service.stats import rollup

DECIDERS = ("supervisor", "manager")
REASONS = {
    "state": 409,      # not allowed in the flag's state
    "four_eyes": 403,  # the user who confirmed may not restore
    "role": 403,       # only supervisors and managers decide
    "field": 422,      # a bad field (``field`` names it)
}
NOTE_MAX = 500


class DecisionError(Exception):
    """A decision refused, with a typed ``reason`` (a key of REASONS) and its HTTP ``status``."""

    def __init__(self, reason: str, message: str, field: str | None = None):
        super().__init__(message)
        self.reason, self.status, self.message, self.field = reason, REASONS[reason], message, field


@dataclass
class Decision:
    """What a decision did: the flag, the ratings excluded or restored, and the bad ratings
    whose cases must go through the invalid review before they stop counting."""

    flag: SuspiciousFlag
    excluded: list[int] = field(default_factory=list)
    restored: list[int] = field(default_factory=list)
    needs_invalid_review: list[dict] = field(default_factory=list)


def _check(flag: SuspiciousFlag, user: User, want: str, note: str | None) -> str | None:
    if user.role not in DECIDERS:
        raise DecisionError("role", f"role {user.role} may not decide suspicious flags")
    if flag.state != want:
        raise DecisionError("state", f"the flag is {flag.state}, not {want}")
    if note is not None:
        if not isinstance(note, str) or len(note) > NOTE_MAX:
            raise DecisionError("field", f"note must be text of at most {NOTE_MAX} characters", "note")
        note = note.strip() or None
    return note


def _record(session: Session, flag: SuspiciousFlag, user: User, action: str, to: str, note: str | None,
            n: int) -> None:
    now = utcnow()
    session.add(SuspiciousFlagEvent(flag_id=flag.id, at=now, actor_id=user.id, action=action,
                                    from_state=flag.state, to_state=to, note=note, ratings=n))
    flag.state, flag.decided_at, flag.decided_by_id = to, now, user.id


def _members(flag: SuspiciousFlag):
    return select(SuspiciousFlagRating.rating_id).where(SuspiciousFlagRating.flag_id == flag.id)


def _lock(session: Session, stmt):
    """Lock the selected ratings on PostgreSQL: two decisions on overlapping flags take turns."""
    return stmt.with_for_update(of=Rating) if session.get_bind().dialect.name == "postgresql" else stmt


def needs_invalid_review(session: Session, flag: SuspiciousFlag) -> list[dict]:
    """The flag's bad ratings and their cases: they stop counting only through claim_invalid → approve."""
    rows = session.execute(select(Rating.id, Case.id, Case.status, Case.outcome)
                           .outerjoin(Case, Case.rating_id == Rating.id)
                           .where(Rating.id.in_(_members(flag)), Rating.negative).order_by(Rating.id))
    return [{"rating_id": r, "case_id": c, "case_status": s, "case_outcome": o} for r, c, s, o in rows]


def confirm(session: Session, flag: SuspiciousFlag, user: User, note: str | None = None) -> Decision:
    """Confirm the flag: its good ratings not yet excluded are excluded from every figure; the caller commits."""
    note = _check(flag, user, "open", note)
    ids = list(session.scalars(_lock(session, select(Rating.id).where(
        Rating.id.in_(_members(flag)), Rating.negative.is_(False), Rating.excluded_at.is_(None))
        .order_by(Rating.id))))
    if ids:
        rollup.adjust(session, ids, -1)
        counting.discount(session, ids)
        now = utcnow()
        for start in range(0, len(ids), 1000):
            session.execute(update(Rating).where(Rating.id.in_(ids[start:start + 1000]))
                            .values(excluded_at=now).execution_options(synchronize_session=False))
    flag.confirmed_by_id = user.id
    _record(session, flag, user, "confirm", "confirmed", note, len(ids))
    return Decision(flag, excluded=ids, needs_invalid_review=needs_invalid_review(session, flag))


def dismiss(session: Session, flag: SuspiciousFlag, user: User, note: str | None = None) -> Decision:
    """Dismiss the flag: its ratings are fine and stay counted; the caller commits."""
    note = _check(flag, user, "open", note)
    _record(session, flag, user, "dismiss", "dismissed", note, 0)
    return Decision(flag)


def restore(session: Session, flag: SuspiciousFlag, user: User, note: str | None = None) -> Decision:
    """Revert a confirm (by another user than the one who confirmed): the ratings it excluded
    count again, unless another confirmed flag still excludes them; the flag is open again."""
    note = _check(flag, user, "confirmed", note)
    if flag.confirmed_by_id == user.id:
        raise DecisionError("four_eyes", "the user who confirmed a flag may not restore it")
    other = aliased(SuspiciousFlagRating)
    still = exists().where(other.rating_id == Rating.id, other.flag_id != flag.id,
                           other.flag_id.in_(select(SuspiciousFlag.id).where(SuspiciousFlag.state == "confirmed")))
    ids = list(session.scalars(_lock(session, select(Rating.id).where(
        and_(Rating.id.in_(_members(flag)), Rating.excluded_at.is_not(None), ~still)).order_by(Rating.id))))
    if ids:
        for start in range(0, len(ids), 1000):
            session.execute(update(Rating).where(Rating.id.in_(ids[start:start + 1000]))
                            .values(excluded_at=None).execution_options(synchronize_session=False))
        rollup.adjust(session, ids, 1)
        for start in range(0, len(ids), 1000):
            counting.count(session, ids[start:start + 1000])
    flag.confirmed_by_id = None
    _record(session, flag, user, "restore", "open", note, len(ids))
    return Decision(flag, restored=ids)
