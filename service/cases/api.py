"""``/api/v1/cases``: staff list, search, read, act on and export the cases of their
department subtree.

Views are thin: service.cases.query selects, scope is a 404, service.cases.workflow
decides (its typed refusals map to 409, 403, 422) and the view commits; the schemas dump
the ORM rows. An action locks the case row (``SELECT … FOR UPDATE`` on PostgreSQL)
so two concurrent actions are taken one after the other, each against the state the
other left; the ``version`` column is the second guard (409).
"""
from __future__ import annotations

from flask import Response, g, stream_with_context
from flask.views import MethodView
from flask_smorest import abort

from models import Case
from service.auth.access import staff_required
from service.cases import batch, export, query as case_query, workflow
from service.cases.privacy_rules import reveal_rater
from service.cases.schemas import (ActionIn, BatchActionIn, BatchActionOut, CaseDetail, CasePage, CaseQuery,
                                   ExportQuery, RaterRevealed, cards_now)
from service.edge import Blueprint
from service.extensions import db

blp = Blueprint("cases", __name__, url_prefix="/api/v1/cases", description="Rectification cases")


def scoped_case(case_id: int, lock: bool = False) -> Case:
    """The case in the caller's scope; 404 (not 403) so existence is not revealed."""
    case = batch.find_case(db.session, g.user, case_id, lock)
    if case is None:
        abort(404, message="case not found")
    return case


def refuse(err: workflow.ActionError):
    """An ActionError as the API's JSON error: its reason's status, the reason as ``reason``;
    a 422 names its field as the schemas do."""
    db.session.rollback()
    if err.status == 422:
        abort(422, message=err.message, reason=err.reason, errors={"json": {err.field or "_schema": [err.message]}})
    abort(err.status, message=err.message, reason=err.reason)


def filters_from(args: dict) -> case_query.CaseFilters:
    return case_query.CaseFilters.from_args(args)


def selected(args: dict, join_rating: bool = False):
    """The scoped, filtered case statement for list arguments; 422 naming an unknown code."""
    try:
        return case_query.case_select(db.session, g.user, filters_from(args), cards_now(), join_rating)
    except case_query.QueryError as err:
        abort(422, message=err.message, errors={"query": {err.field: [err.message]}})


@blp.route("")
class Cases(MethodView):
    @staff_required()
    @blp.arguments(CaseQuery, location="query")
    @blp.response(200, CasePage)
    def get(self, args):
        """Cases in your department subtree, open ones first by next deadline; search with ``q``,
        narrow with the filters (SPEC §9)."""
        rows, total = case_query.page(db.session, case_query.ordered(selected(args)),
                                      args["page"], args["per_page"])
        return {"items": rows, "total": total}


EXPORTERS = ("supervisor", "manager", "admin")  # as for the figures' exports
MIMETYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             "csv": "text/csv"}


@blp.route("/export")
class CasesExport(MethodView):
    @staff_required(*EXPORTERS)
    @blp.arguments(ExportQuery, location="query")
    @blp.response(200, description="the cases as xlsx or CSV, one row per case, streamed",
                  content_type="application/octet-stream")
    @blp.alt_response(403, description="handlers do not export")
    def get(self, args):
        """The cases the list filters select (your scope), one row per case with the rater
        masked: xlsx or CSV (UTF-8 with BOM), streamed (SPEC §9)."""
        fmt = args.pop("format")
        stmt = selected(args, join_rating=True)
        stream = export.csv_stream if fmt == "csv" else export.xlsx_stream
        body = stream_with_context(stream(db.session, stmt, cards_now().today))
        day = cards_now().today.isoformat()
        return Response(body, mimetype=MIMETYPES[fmt], headers={
            "Content-Disposition": f'attachment; filename="hcp-cases-{day}.{fmt}"', "Cache-Control": "no-store"})


@blp.route("/actions")
class CasesBatch(MethodView):
    @staff_required()
    @blp.arguments(BatchActionIn)
    @blp.response(200, BatchActionOut, description="one result per id, in order")
    def post(self, body):
        """One action (assign, approve, reject) on many cases; each is taken, or refused with
        its reason, on its own (SPEC §9)."""
        ids, action = body.pop("ids"), body.pop("action")
        results = []
        for o in batch.apply_each(db.session, g.user, ids, action, body):
            if o.done:
                results.append({"id": o.id, "status": "ok"})
            else:
                results.append({"id": o.id, "status": "error", "code": o.code,
                                "message": o.error.message if o.error else "case not found"})
        return {"results": results}


@blp.route("/<int:case_id>")
class CaseById(MethodView):
    @staff_required()
    @blp.response(200, CaseDetail)
    @blp.alt_response(404, description="no such case in your departments")
    def get(self, case_id):
        """One case with its rating, masked rater, deadlines, warning and history."""
        return scoped_case(case_id)


@blp.route("/<int:case_id>/actions")
class CaseActions(MethodView):
    @staff_required()
    @blp.arguments(ActionIn)
    @blp.response(200, CaseDetail, description="the action was taken; the case as it is now")
    @blp.alt_response(403, description="role, not_assignee or four_eyes (in ``code``)")
    @blp.alt_response(404, description="no such case in your departments")
    @blp.alt_response(409, description="state (the message names the allowed actions), stale or anonymous")
    @blp.alt_response(422, description="missing or bad field for this action (named)")
    def post(self, body, case_id):
        """Take an action on a case: assign, verify, claim_invalid, propose_explain,
        request_extension, approve, reject, rectify, feedback or reopen (SPEC §2, §9)."""
        case = scoped_case(case_id, lock=True)
        action = body.pop("action")
        version = body.pop("version", None)
        try:
            batch.apply_one(db.session, case, g.user, action, body, version)
        except workflow.ActionError as err:
            refuse(err)
        return case


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
