"""``/api/v1/cases``: staff list, read and act on the cases of their department subtree.

Views are thin: scope (404), then service.cases.workflow decides (409, 403, 422) and
the view commits. An action locks the case row (``SELECT … FOR UPDATE`` on PostgreSQL)
so two concurrent actions are taken one after the other, each against the state the
other left; the ``version`` column is the second guard (409).
"""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from models import STATUS_LABELS, Case, Department, User
from service.auth.access import in_scope, scope_filter, staff_required
from service.cases import workflow
from service.cases.privacy_rules import reveal_rater
from service.cases.schemas import ActionIn, CaseDetail, CasePage, CaseQuery, RaterRevealed
from service.extensions import db
from service.ratings.api import rating_view

blp = Blueprint("cases", __name__, url_prefix="/api/v1/cases", description="Rectification cases")


def case_view(case: Case) -> dict:
    """A case as listed: codes, labels and deadlines."""
    return {
        "id": case.id, "rating_id": case.rating_id, "department": case.department.code,
        "department_name": case.department.name,
        "assignee": case.assignee.username if case.assignee else None,
        "status": case.status, "status_label": STATUS_LABELS[case.status], "outcome": case.outcome,
        "callback_due": case.callback_due, "close_due": case.close_due, "warning": case.warning,
        "created_at": case.created_at, "closed_at": case.closed_at, "version": case.version,
    }


def case_detail(case: Case, user: User | None = None) -> dict:
    """A case with its rating (rater masked), full history and, for ``user``, what they may do."""
    out = case_view(case)
    out["actions"] = workflow.actions_for(case, user) if user is not None else []
    out["rating"] = rating_view(case.rating, case.id)
    out["history"] = [
        {"at": e.at, "actor": e.actor.username if e.actor else None, "action": e.action,
         "from": e.from_status, "to": e.to_status, "note": e.note}
        for e in case.history
    ]
    return out


def scoped_case(case_id: int, lock: bool = False) -> Case:
    """The case if it lies in the caller's scope; 404 (not 403) so existence is not revealed.

    ``lock`` takes the row lock until the request's transaction ends (PostgreSQL; SQLite
    has one writer at a time anyway and leans on the version check).
    """
    stmt = select(Case).where(Case.id == case_id)
    if lock:
        stmt = stmt.with_for_update(of=Case).execution_options(populate_existing=True)
    case = db.session.scalar(stmt)
    if case is None or not in_scope(g.user, case.department):
        abort(404, message="case not found")
    return case


def refuse(err: workflow.ActionError):
    """An ActionError as the API's JSON error; a 422 names its field as the schemas do."""
    db.session.rollback()
    if err.status == 422:
        abort(422, message=err.message, errors={"json": {err.field or "_schema": [err.message]}})
    abort(err.status, message=err.message)


@blp.route("")
class Cases(MethodView):
    @staff_required()
    @blp.arguments(CaseQuery, location="query")
    @blp.response(200, CasePage)
    def get(self, query):
        """Cases in your department subtree, nearest closure deadline first."""
        stmt = select(Case).where(scope_filter(g.user, Case.department_id))
        if "status" in query:
            stmt = stmt.where(Case.status == query["status"])
        if "department" in query:
            dept = db.session.scalar(select(Department).where(Department.code == query["department"]))
            if dept is None:
                abort(422, errors={"query": {"department": ["unknown department"]}})
            stmt = stmt.where(Case.department_id.in_(
                select(Department.id).where(Department.path.startswith(dept.path))))
        if query.get("assignee") == "me":
            stmt = stmt.where(Case.assignee_id == g.user.id)
        if query.get("warning") == "any":
            stmt = stmt.where(Case.warning.is_not(None))
        elif "warning" in query:
            stmt = stmt.where(Case.warning == query["warning"])
        total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
        page = db.session.scalars(stmt.order_by(Case.close_due, Case.id)
                                  .offset((query["page"] - 1) * query["per_page"]).limit(query["per_page"]))
        return {"items": [case_view(c) for c in page], "total": total}


@blp.route("/<int:case_id>")
class CaseById(MethodView):
    @staff_required()
    @blp.response(200, CaseDetail)
    @blp.alt_response(404, description="no such case in your departments")
    def get(self, case_id):
        """One case with its rating, masked rater, deadlines, warning and history."""
        return case_detail(scoped_case(case_id), g.user)


@blp.route("/<int:case_id>/actions")
class CaseActions(MethodView):
    @staff_required()
    @blp.arguments(ActionIn)
    @blp.response(200, CaseDetail, description="the action was taken; the case as it is now")
    @blp.alt_response(403, description="your role may not take this action here, or four-eyes")
    @blp.alt_response(404, description="no such case in your departments")
    @blp.alt_response(409, description="not allowed in the case's state (the message names "
                                       "the allowed actions), or the case changed meanwhile")
    @blp.alt_response(422, description="missing or bad field for this action (named)")
    def post(self, body, case_id):
        """Take an action on a case: assign, verify, claim_invalid, propose_explain, approve,
        reject, rectify, feedback or reopen (SPEC §2)."""
        case = scoped_case(case_id, lock=True)
        action = body.pop("action")
        version = body.pop("version", None)
        try:
            workflow.apply(db.session, case, g.user, action, body, expected_version=version)
            db.session.commit()
        except workflow.ActionError as err:
            refuse(err)
        except StaleDataError:
            db.session.rollback()
            abort(409, message="the case was changed by another action meanwhile; reload and try again")
        return case_detail(case, g.user)


@blp.route("/<int:case_id>/reveal")
class CaseRater(MethodView):
    @staff_required()
    @blp.response(200, RaterRevealed, description="name and phone in clear; the reveal is recorded")
    @blp.alt_response(403, description="only the assignee or a supervisor may see the rater")
    @blp.alt_response(404, description="no such case in your departments")
    @blp.alt_response(409, description="the rater is anonymous")
    def post(self, case_id):
        """Show a real-name rater's name and phone in clear, recorded in the case history."""
        case = scoped_case(case_id)
        try:
            shown = reveal_rater(db.session, case, g.user)
        except workflow.ActionError as err:
            refuse(err)
        db.session.commit()
        return shown, 200, {"Cache-Control": "no-store"}
