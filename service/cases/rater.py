"""Showing a real-name rater's name and phone in clear, to those who must call them back.

SPEC §2: rater data is encrypted at rest and masked everywhere else; only the case's
assignee and the supervisors over the case see it whole, and every reveal is kept in
the case history. The caller has checked the case is in the user's scope (404 otherwise)
and commits.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from models import Case, CaseEvent, User
from models.types import utcnow
from service.cases.workflow import ActionError
from service.privacy import decrypt


def may_reveal(case: Case, user: User) -> bool:
    """The assignee, or a supervisor (whose scope covers the case: the caller checked)."""
    return user.role == "supervisor" or (case.assignee_id is not None and case.assignee_id == user.id)


def reveal(session: Session, case: Case, user: User, now: datetime | None = None) -> dict:
    """``{name, phone}`` of the case's rater in clear; appends a ``reveal`` history entry.

    403 for anyone else in scope; 409 when the rater is anonymous (there is nothing to show,
    and nothing is recorded).
    """
    if not may_reveal(case, user):
        raise ActionError(403, "only the case's assignee or a supervisor may see the rater's phone")
    rating = case.rating
    if not rating.real_name or not (rating.rater_name_enc or rating.rater_phone_enc):
        raise ActionError(409, "the rater is anonymous; there is nothing to reveal")
    shown = {"name": decrypt(rating.rater_name_enc), "phone": decrypt(rating.rater_phone_enc)}
    session.add(CaseEvent(
        case_id=case.id, at=now or utcnow(), actor_id=user.id, action="reveal",
        from_status=case.status, to_status=case.status, note="查看评价人联系方式",
        data={"fields": [k for k, v in shown.items() if v]}))
    return shown
