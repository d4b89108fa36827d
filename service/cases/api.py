"""``/api/v1/cases``: staff list and read the cases of their department subtree."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import func, select

from models import STATUS_LABELS, Case, Department
from service.auth.access import in_scope, scope_filter, staff_required
from service.cases.schemas import CaseDetail, CasePage, CaseQuery
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
        "created_at": case.created_at, "closed_at": case.closed_at,
    }


def case_detail(case: Case) -> dict:
    """A case with its rating (rater masked) and full history."""
    out = case_view(case)
    out["rating"] = rating_view(case.rating, case.id)
    out["history"] = [
        {"at": e.at, "actor": e.actor.username if e.actor else None, "action": e.action,
         "from": e.from_status, "to": e.to_status, "note": e.note}
        for e in case.history
    ]
    return out


def scoped_case(case_id: int) -> Case:
    """The case if it lies in the caller's scope; 404 (not 403) so existence is not revealed."""
    case = db.session.get(Case, case_id)
    if case is None or not in_scope(g.user, case.department):
        abort(404, message="case not found")
    return case


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
        return case_detail(scoped_case(case_id))
