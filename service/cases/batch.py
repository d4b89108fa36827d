"""Batch actions (SPEC §9): one action — assign, approve or reject — on many cases at once.

Called by ``POST /api/v1/cases/actions`` and by the supervisors' batch form on 我的工单.
Each case is its own transaction: it is locked, checked and changed by
``workflow.apply`` exactly as a single action would be, and committed (or rolled back)
before the next, so a refusal undoes only its own case and no row lock is held across
cases — two batches over the same cases in different orders cannot deadlock.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from models import Case, User
from service.auth.access import in_scope
from service.cases import workflow

ACTIONS = workflow.BATCH_ACTIONS


@dataclass
class Outcome:
    """What became of one case: done (``error`` None), refused, or not found (``case`` None)."""

    id: int
    case: Case | None
    error: workflow.ActionError | None = None

    @property
    def done(self) -> bool:
        return self.case is not None and self.error is None

    @property
    def code(self) -> str | None:
        """``not_found`` or the refusal's typed reason; None when the action was taken."""
        if self.case is None:
            return "not_found"
        return self.error.reason if self.error else None


def find_case(session: Session, user: User, case_id: int, lock: bool = False) -> Case | None:
    """The case if it lies in ``user``'s scope, else None (the caller answers 404).

    ``lock`` takes the row lock until the transaction ends (PostgreSQL; SQLite has one
    writer at a time anyway and leans on the version check).
    """
    stmt = select(Case).where(Case.id == case_id)
    if lock:
        stmt = stmt.with_for_update(of=Case).execution_options(populate_existing=True)
    case = session.scalar(stmt)
    return case if case is not None and in_scope(user, case.department) else None


def apply_one(session: Session, case: Case, user: User, action: str, data: dict,
              version: int | None = None) -> None:
    """Apply one action and commit; a refusal or a concurrent change is raised as ActionError
    (the session rolled back)."""
    try:
        workflow.apply(session, case, user, action, data, expected_version=version)
        session.commit()
    except workflow.ActionError:
        session.rollback()
        raise
    except StaleDataError as err:
        session.rollback()
        raise workflow.ActionError("stale", "the case was changed by another action meanwhile; "
                                            "reload and try again") from err


def apply_each(session: Session, user: User, ids: list[int], action: str, data: dict) -> list[Outcome]:
    """Take ``action`` with ``data`` on each case of ``ids`` on its own; one Outcome per id, in order."""
    out = []
    for case_id in ids:
        case = find_case(session, user, case_id, lock=True)
        if case is None:
            session.rollback()
            out.append(Outcome(case_id, None))
            continue
        try:
            apply_one(session, case, user, action, dict(data))
        except workflow.ActionError as err:
            out.append(Outcome(case_id, case, err))
            continue
        out.append(Outcome(case_id, case))
    return out
