"""``/api/v1/stats``: summary, breakdowns and exports of the managers' figures.

Managers and supervisors see their own department's subtree, admins everything;
handlers get 403, devices and anonymous callers 401. A ``department`` filter that is
unknown or outside the caller's subtree is 404, so the answer does not reveal which
departments exist elsewhere.
"""
from __future__ import annotations

from flask import Response, g
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import select

from models import Department, ServiceItem
from service.auth.access import in_scope, staff_required
from service.edge import Blueprint
from service.extensions import db
from service.stats import export, figures
from service.stats.schemas import BreakdownOut, BreakdownQuery, ExportQuery, StatsQuery, SummaryOut

blp = Blueprint("stats", __name__, url_prefix="/api/v1/stats", description="Managers' figures")

VIEWERS = ("manager", "supervisor", "admin")


def resolve(query: dict) -> tuple[figures.Filters, dict]:
    """The caller's query as Filters narrowed to their scope, and the scope as echoed back."""
    user = g.user
    dept = None
    if "department" in query:
        dept = db.session.scalar(select(Department).where(Department.code == query["department"]))
        if dept is None or not in_scope(user, dept):
            abort(404, message="department not found in your scope")
    elif user.role != "admin":
        dept = user.department
    item_id = None
    if "item" in query:
        item_id = db.session.scalar(select(ServiceItem.id).where(ServiceItem.code == query["item"]))
        if item_id is None:
            abort(422, errors={"query": {"item": ["unknown service item"]}}, message="unknown service item")
    f = figures.Filters(query["date_from"], query["date_to"], dept.path if dept else None,
                        query.get("channel"), item_id, query.get("window"))
    scope = {"date_from": f.date_from, "date_to": f.date_to,
             "department": dept.code if dept else None, "department_name": dept.name if dept else None,
             "channel": f.channel, "item": query.get("item"), "window": f.window}
    return f, scope


@blp.route("/summary")
class Summary(MethodView):
    @staff_required(*VIEWERS)
    @blp.arguments(StatsQuery, location="query")
    @blp.response(200, SummaryOut)
    @blp.alt_response(404, description="department unknown or outside your scope")
    def get(self, query):
        """Every SPEC §3 figure over ratings dated in [from, to] (Asia/Shanghai), in your scope."""
        f, scope = resolve(query)
        return {**scope, **figures.summary(db.session, f)}


@blp.route("/breakdown")
class Breakdown(MethodView):
    @staff_required(*VIEWERS)
    @blp.arguments(BreakdownQuery, location="query")
    @blp.response(200, BreakdownOut)
    @blp.alt_response(404, description="department unknown or outside your scope")
    def get(self, query):
        """The figures per department (children of the scope), channel, item, window, staff,
        month or day, sorted, with a ``total`` equal to the summary."""
        f, scope = resolve(query)
        return {**scope, **figures.breakdown(db.session, f, query["by"])}


@blp.route("/export")
class Export(MethodView):
    @staff_required(*VIEWERS)
    @blp.arguments(ExportQuery, location="query")
    @blp.alt_response(200, description="an xlsx workbook or a UTF-8 (BOM) CSV file")
    @blp.alt_response(404, description="department unknown or outside your scope")
    def get(self, query):
        """The summary (or a breakdown, with ``by``) as xlsx or CSV, Chinese headings."""
        f, scope = resolve(query)
        by = query.get("by")
        result = figures.breakdown(db.session, f, by) if by else figures.summary(db.session, f)
        fmt = query["format"]
        if fmt == "xlsx":
            body = export.to_xlsx(result, scope, by)
            mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        else:
            body = export.to_csv(result, scope, by)
            mimetype = "text/csv"
        resp = Response(body, mimetype=mimetype)
        resp.headers["Content-Disposition"] = f'attachment; filename="{export.filename(scope, fmt)}"'
        return resp
