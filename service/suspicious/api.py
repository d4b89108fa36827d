"""``/api/v1/insights/suspicious``: the supervisors' queue of suspicious-rating flags (SPEC §10).

Listed for managers, supervisors and admins in their department subtree; confirmed,
dismissed and restored by supervisors and managers in scope. A flag outside the caller's
scope is 404, a department filter outside it too, so neither reveals what exists elsewhere.
"""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import select

from models import Department
from service.auth.access import in_scope, staff_required
from service.edge import Blueprint
from service.extensions import db
from service.stats.api import VIEWERS
from service.suspicious import decisions, queue
from service.suspicious.schemas import DecisionIn, DecisionOut, FlagDetail, FlagList, FlagQuery

blp = Blueprint("suspicious", __name__, url_prefix="/api/v1/insights/suspicious",
                description="Suspicious ratings (疑似刷评 / 恶意差评)")


def _department_path(code: str | None) -> str | None:
    if code is None:
        return None
    dept = db.session.scalar(select(Department).where(Department.code == code))
    if dept is None or not in_scope(g.user, dept):
        abort(404, message="department not found in your scope")
    return dept.path


def scoped_flag(flag_id: int, lock: bool = False):
    flag = queue.find(db.session, g.user, flag_id, lock)
    if flag is None:
        abort(404, message="flag not found")
    flag.counts = queue.counts(db.session, [flag.id]).get(flag.id) or {
        "ratings": 0, "good": 0, "bad": 0, "excluded": 0, "first_rated_at": None, "last_rated_at": None}
    return flag


@blp.route("")
class Flags(MethodView):
    @staff_required(*VIEWERS)
    @blp.arguments(FlagQuery, location="query")
    @blp.response(200, FlagList)
    @blp.alt_response(404, description="department unknown or outside your scope")
    def get(self, query):
        """Flags in your scope, newest first (open ones unless ``state`` says otherwise)."""
        q = queue.Query(state=None if query["state"] == "all" else query["state"], rule=query.get("rule"),
                        department_path=_department_path(query.get("department")),
                        page=query["page"], per_page=query["per_page"])
        items, total = queue.listing(db.session, g.user, q)
        return {"items": items, "total": total}


@blp.route("/<int:flag_id>")
class FlagById(MethodView):
    @staff_required(*VIEWERS)
    @blp.response(200, FlagDetail)
    @blp.alt_response(404, description="no such flag in your scope")
    def get(self, flag_id):
        """A flag with its ratings (rater masked), history and the bad ratings needing invalid review."""
        flag = scoped_flag(flag_id)
        flag.rating_list = queue.ratings(db.session, flag)
        flag.needs_invalid_review = decisions.needs_invalid_review(db.session, flag)
        return flag


def _decide(flag_id: int, body: dict, action) -> dict:
    flag = scoped_flag(flag_id, lock=True)
    try:
        done = action(db.session, flag, g.user, body.get("note"))
    except decisions.DecisionError as err:
        db.session.rollback()
        if err.status == 422:
            abort(422, message=err.message, reason=err.reason, errors={"json": {err.field: [err.message]}})
        abort(err.status, message=err.message, reason=err.reason)
    db.session.commit()
    flag.counts = queue.counts(db.session, [flag.id]).get(flag.id)
    return {"flag": flag, "excluded": done.excluded, "restored": done.restored,
            "needs_invalid_review": done.needs_invalid_review}


_RESPONSES = {403: "not a supervisor or manager (or, for restore, the user who confirmed)",
              404: "no such flag in your scope", 409: "not allowed in the flag's state"}


def _document(view):
    for code, text in _RESPONSES.items():
        view = blp.alt_response(code, description=text)(view)
    return view


@blp.route("/<int:flag_id>/confirm")
class Confirm(MethodView):
    @staff_required(*decisions.DECIDERS)
    @blp.arguments(DecisionIn)
    @blp.response(200, DecisionOut)
    @_document
    def post(self, body, flag_id):
        """Confirm: the flag's good ratings are excluded from every figure (reversibly); its bad
        ratings keep their cases and are listed under ``needs_invalid_review``."""
        return _decide(flag_id, body, decisions.confirm)


@blp.route("/<int:flag_id>/dismiss")
class Dismiss(MethodView):
    @staff_required(*decisions.DECIDERS)
    @blp.arguments(DecisionIn)
    @blp.response(200, DecisionOut)
    @_document
    def post(self, body, flag_id):
        """Dismiss: the ratings are fine and stay counted."""
        return _decide(flag_id, body, decisions.dismiss)


@blp.route("/<int:flag_id>/restore")
class Restore(MethodView):
    @staff_required(*decisions.DECIDERS)
    @blp.arguments(DecisionIn)
    @blp.response(200, DecisionOut)
    @_document
    def post(self, body, flag_id):
        """Revert a confirm (another user than the one who confirmed): the ratings count again
        and the flag is open again; kept in its history."""
        return _decide(flag_id, body, decisions.restore)
