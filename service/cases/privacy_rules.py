"""Who may see a real-name rater whole (SPEC §2 "Rater privacy"), and the record of it.

One rule for the web pages and the API: the case's assignee, and supervisors whose
department subtree holds the case. Managers and admins see figures, not people, so they
get the masked copy only. Every reveal appends a ``reveal`` entry to the case history.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from models import Case, CaseEvent, Department, User
from models.types import utcnow
from service.cases.workflow import ActionError
from service.privacy import decrypt


def may_reveal(session: Session, case: Case, user: User) -> bool:
    """True when ``user`` may see the rater of ``case`` unmasked."""
    if case.assignee_id is not None and case.assignee_id == user.id:
        return True
    if user.role != "supervisor":
        return False
    case_path = session.get(Department, case.department_id).path
    own_path = session.get(Department, user.department_id).path
    return case_path.startswith(own_path)


def reveal_rater(session: Session, case: Case, user: User, now: datetime | None = None) -> dict:
    """The rater's name and phone in clear, recorded in the case history; the caller commits.

    The caller has checked that the case is in the user's scope (404 otherwise). Raises
    ActionError 403 for anyone but the assignee or a supervisor of the case's department
    subtree, and 409 for an anonymous rating, which has nothing to reveal.
    """
    if not may_reveal(session, case, user):
        raise ActionError("role", "only the case's assignee or a supervisor of its department may see the rater")
    rating = case.rating
    if not rating.real_name or not (rating.rater_phone_enc or rating.rater_name_enc):
        raise ActionError("anonymous", "the rating is anonymous; there is no rater data to reveal")
    # The event does not touch the case row: a reveal must not bump the case's version
    # and make a colleague's concurrent action fail.
    session.add(CaseEvent(case_id=case.id, at=now or utcnow(), actor_id=user.id, action="reveal",
                          from_status=case.status, to_status=case.status, note=None,
                          data={"fields": ["name", "phone"]}))
    return {"name": decrypt(rating.rater_name_enc), "phone": decrypt(rating.rater_phone_enc)}
