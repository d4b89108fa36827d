"""The case state machine (SPEC §2): one table of transitions, used by the API, the web
pages and the workers alike.

``TRANSITIONS[(state, action)]`` says which roles may take the action in that state, the
state it leads to and the outcome it sets. ``apply`` checks the table, the action's
data and the four-eyes rule, changes the case and appends to its history (and, when it
closes, the outbox record of its result); the caller commits. Nothing here knows about HTTP.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import STATUS_LABELS, Case, CaseEvent, Department, User
from models.types import utcnow
from service.cases.deadlines import WorkCalendar
from service.exchange import outbox

HANDLING = frozenset({"handler", "supervisor"})  # supervisors may also work a case themselves
SUPERVISING = frozenset({"supervisor"})
ASSIGNING = frozenset({"supervisor", "manager"})  # a manager may assign within their scope
REOPENING = frozenset({"supervisor", "manager"})
EXTENSION_DAYS = (1, 15)  # working days a 延期 may add


@dataclass(frozen=True)
class Transition:
    roles: frozenset[str]
    to: str | None  # None: the state stays as it is (re-assignment)
    outcome: str | None = None


TRANSITIONS: dict[tuple[str, str], Transition] = {
    ("unassigned", "assign"): Transition(ASSIGNING, "assigned"),
    ("assigned", "assign"): Transition(ASSIGNING, None),
    ("assigned", "verify"): Transition(HANDLING, "rectifying"),
    ("assigned", "claim_invalid"): Transition(HANDLING, "invalid_review"),
    ("assigned", "propose_explain"): Transition(HANDLING, "explain_review"),
    ("rectifying", "assign"): Transition(ASSIGNING, None),
    ("rectifying", "rectify"): Transition(HANDLING, "feedback", "rectified"),
    ("rectifying", "request_extension"): Transition(HANDLING, "extension_review"),
    ("extension_review", "approve"): Transition(SUPERVISING, "rectifying"),
    ("extension_review", "reject"): Transition(SUPERVISING, "rectifying"),
    ("rectifying", "claim_invalid"): Transition(HANDLING, "invalid_review"),
    ("rectifying", "propose_explain"): Transition(HANDLING, "explain_review"),
    ("invalid_review", "approve"): Transition(SUPERVISING, "closed", "invalid"),
    ("invalid_review", "reject"): Transition(SUPERVISING, "rectifying"),
    ("explain_review", "approve"): Transition(SUPERVISING, "feedback", "explained"),
    ("explain_review", "reject"): Transition(SUPERVISING, "rectifying"),
    ("feedback", "assign"): Transition(ASSIGNING, None),
    ("feedback", "feedback"): Transition(HANDLING, "closed"),
    ("closed", "reopen"): Transition(REOPENING, "rectifying"),
}
ACTIONS = ("assign", "verify", "claim_invalid", "propose_explain", "request_extension", "approve",
           "reject", "rectify", "feedback", "reopen")
BATCH_ACTIONS = ("assign", "approve", "reject")
ACTION_LABELS = {
    "route": "生成工单", "assign": "分派", "verify": "回访核实", "claim_invalid": "申请无效差评",
    "propose_explain": "申请解释说明", "request_extension": "申请延期", "approve": "审核通过", "reject": "审核驳回",
    "rectify": "整改", "feedback": "反馈办结", "reopen": "重新打开", "reveal": "查看评价人电话",
    "warning": "红黄牌预警", "unassign": "退回待分派", "reschedule": "期限随工作日历调整",
}


# Why an action was refused, and the HTTP status the API answers for each.
REASONS = {
    "state": 409,         # not allowed in the case's state (or the one extension is used)
    "stale": 409,         # the case changed since the caller loaded it
    "anonymous": 409,     # needs a real-name rater (revealing one)
    "role": 403,          # the caller's role may not take this action
    "not_assignee": 403,  # only the case's assignee may
    "four_eyes": 403,     # a supervisor may not approve their own request
    "field": 422,         # a missing or bad field of the action (``field`` names it)
}


class ActionError(Exception):
    """An action refused, with a typed ``reason`` (a key of REASONS) and its HTTP ``status``.

    ``field`` names the offending body field of a ``field`` refusal; ``allowed`` lists the
    actions the table allows in the case's state, for a ``state`` refusal. The API maps
    ``status``; the web pages map ``reason`` to a Chinese message.
    """

    def __init__(self, reason: str, message: str, field: str | None = None,
                 allowed: list[str] | None = None):
        super().__init__(message)
        self.reason, self.status = reason, REASONS[reason]
        self.message, self.field, self.allowed = message, field, allowed


def allowed_actions(status: str, role: str | None = None) -> list[str]:
    """Actions the table allows in ``status`` (for ``role``, when given), in ACTIONS order."""
    return [a for a in ACTIONS
            if (status, a) in TRANSITIONS and (role is None or role in TRANSITIONS[(status, a)].roles)]


def check(case: Case, user: User, action: str) -> Transition:
    """The transition ``user`` may take with ``action`` now, or ActionError.

    The order is the contract: an unknown action is ``field`` (422), an action the state
    does not allow is ``state`` (409) whoever asks, then the role, the assignee rule and
    the four-eyes rule (403). The caller has checked that the case is in the user's scope.
    """
    if action not in ACTIONS:
        raise ActionError("field", f"unknown action {action}; one of {', '.join(ACTIONS)}", "action")
    rule = TRANSITIONS.get((case.status, action))
    if rule is None:
        allowed = allowed_actions(case.status)
        raise ActionError("state", f"{action} is not allowed in state {case.status} "
                                   f"({STATUS_LABELS[case.status]}); allowed actions: "
                                   f"{', '.join(allowed) or 'none'}", allowed=allowed)
    if action == "request_extension" and case.extended_at is not None:
        raise ActionError("state", "this case has had its one extension already", allowed=[])
    if user.role not in rule.roles:
        raise ActionError("role", f"a {user.role} may not {action}; "
                                  f"{' or '.join(sorted(rule.roles))} only")
    if (user.role == "handler" or action == "request_extension") and case.assignee_id != user.id:
        raise ActionError("not_assignee", "only the assigned handler may act on this case")
    if action == "approve" and case.claimed_by_id == user.id:
        raise ActionError("four_eyes", "a supervisor may not approve their own request")
    return rule


def actions_for(case: Case, user: User) -> list[str]:
    """What ``user`` may do to ``case`` now: the table, plus the assignee and four-eyes rules."""
    out = []
    for action in allowed_actions(case.status, user.role):
        try:
            check(case, user, action)
        except ActionError:
            continue
        out.append(action)
    return out


def _text(data: dict, field: str, name: str | None = None) -> str:
    value = data.get(field)
    value = value.strip() if isinstance(value, str) else ""
    if not value:
        raise ActionError("field", f"{name or field} must not be empty", name or field)
    return value


def _flag(data: dict, field: str, nullable: bool = False) -> bool | None:
    value = data.get(field)
    if value is None and nullable:
        return None
    if not isinstance(value, bool):
        raise ActionError("field", f"{field} must be true or false" + (" or null" if nullable else ""), field)
    return value


def _measures(data: dict) -> dict:
    """Rectification measures: both the cause found and the action taken, non-empty."""
    measures = data.get("measures")
    if not isinstance(measures, dict):
        raise ActionError("field", "measures must give the cause and the action taken", "measures")
    return {"cause": _text(measures, "cause", "measures.cause"),
            "action": _text(measures, "action", "measures.action")}


def _assignee(session: Session, case: Case, user: User, data: dict) -> User:
    """The handler (or supervisor) named by ``data['assignee']``.

    Active, and the case must lie in their scope — their department is the case's or one
    above it, so they can see the case they are given — while they lie in the assigning
    user's scope, so a supervisor hands work only to their own people.
    """
    username = _text(data, "assignee")
    target = session.scalar(select(User).where(User.username == username))
    if target is None or not target.active or target.role not in HANDLING:
        raise ActionError("field", f"{username} is not an active handler", "assignee")
    case_path = session.get(Department, case.department_id).path
    target_path = session.get(Department, target.department_id).path
    actor_path = session.get(Department, user.department_id).path
    if not case_path.startswith(target_path) or not target_path.startswith(actor_path):
        raise ActionError("field", f"{username} works outside this case's department", "assignee")
    return target


def apply(session: Session, case: Case, user: User, action: str, data: dict | None = None,
          now: datetime | None = None, expected_version: int | None = None) -> CaseEvent:
    """Take ``action`` on ``case`` as ``user``; return the history entry. The caller commits.

    The caller has checked that the case is in the user's scope (404 otherwise) and,
    against concurrent actions, has loaded it ``FOR UPDATE``; ``expected_version`` (the
    version the client saw) refuses an action decided on a stale view with 409. The
    mapper's ``version_id_col`` is the last guard: a flush over a changed row raises
    StaleDataError.
    """
    data = data or {}
    now = now or utcnow()
    if expected_version is not None and expected_version != case.version:
        raise ActionError("stale", f"the case has changed since you loaded it (version "
                                   f"{expected_version}, now {case.version}); reload and try again")
    rule = check(case, user, action)

    before = case.status
    note = data.get("note")
    note = (note.strip() or None) if isinstance(note, str) else None
    detail: dict = {}
    if action == "assign":
        assignee = _assignee(session, case, user, data)
        case.assignee_id = assignee.id
        detail["assignee"] = assignee.username
    elif action == "verify":
        # An anonymous rater cannot be called back: nothing to record (SPEC §9).
        if case.rating.real_name:
            contacted = _flag(data, "contacted")
            case.contacted = bool(case.contacted) or contacted
            detail["contacted"] = contacted
        else:
            detail["anonymous"] = True
        case.verified_at = now
    elif action == "request_extension":
        days = data.get("working_days")
        lo, hi = EXTENSION_DAYS
        if not isinstance(days, int) or isinstance(days, bool) or not lo <= days <= hi:
            raise ActionError("field", f"working_days must be a whole number from {lo} to {hi}", "working_days")
        detail.update(working_days=days, reason=_text(data, "reason"))
        case.extension_days = days
        case.claimed_by_id = user.id
    elif action == "approve" and before == "extension_review":
        old_due = case.close_due
        case.close_due = WorkCalendar.load(session).add_working_days(old_due, case.extension_days)
        case.extended_at = now
        detail.update(working_days=case.extension_days, close_due_before=old_due.isoformat(),
                      close_due=case.close_due.isoformat())
    elif action == "reject" and before == "extension_review":
        detail["working_days"] = case.extension_days
        case.extension_days = None
    elif action in ("claim_invalid", "propose_explain", "reopen"):
        detail["reason"] = _text(data, "reason")
        if action != "reopen":
            case.claimed_by_id = user.id
    elif action == "rectify":
        detail["measures"] = _measures(data)
    elif action == "feedback":
        contacted = _flag(data, "contacted") if case.rating.real_name else bool(data.get("contacted"))
        satisfied = _flag(data, "satisfied", nullable=True)
        case.contacted = bool(case.contacted) or contacted
        case.satisfied = satisfied
        detail.update(contacted=contacted, satisfied=satisfied)

    if action in ("approve", "reject"):
        detail["claimed_by_id"] = case.claimed_by_id
        case.claimed_by_id = None
    if rule.to is not None:
        case.status = rule.to
    if rule.outcome is not None:
        case.outcome = rule.outcome
    if case.status == "closed":
        case.closed_at = now
        outbox.queue_case_close(session, case, now)  # its result for 上报, in this transaction
    if action == "reopen":
        case.outcome, case.closed_at, case.satisfied = None, None, None
    case.updated_at = now
    event = CaseEvent(case_id=case.id, at=now, actor_id=user.id, action=action, from_status=before,
                      to_status=case.status, note=note or detail.get("reason"), data=detail or None)
    session.add(event)
    return event
