"""``/api/v1/reports``: the work summary of a period as Markdown, Word or PDF, scoped like the stats."""
from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import validate

from service.auth.access import staff_required
from service.edge import Blueprint, Text
from service.extensions import db
from service.reports import charts, content, render
from service.stats.api import VIEWERS, resolve
from service.stats.schemas import StatsQuery

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="The bureau's work summary")


class ReportQuery(StatsQuery):
    format = Text(load_default="pdf", validate=validate.OneOf(list(render.FORMATS)),
                  metadata={"description": "pdf (default), docx or md"})


def filename(scope: dict, fmt: str) -> str:
    """``hcp-report-<department or all>-<from>-<to>.<fmt>`` (ASCII: codes and dates only)."""
    period = f"{scope['date_from'].isoformat()}-{scope['date_to'].isoformat()}"
    return f"hcp-report-{scope['department'] or 'all'}-{period}.{fmt}"


@blp.route("")
class Reports(MethodView):
    @staff_required(*VIEWERS)
    @blp.arguments(ReportQuery, location="query")
    @blp.alt_response(200, description="the report file (PDF, Word .docx or Markdown)")
    @blp.alt_response(404, description="department unknown or outside your scope")
    @blp.alt_response(503, description="the Chinese font the PDF and the charts need is missing (HCP_REPORT_FONT)")
    def get(self, query):
        """The 好差评 work summary of [from, to] in your scope (SPEC §10): the figures'
        sentence, tables by department, channel and month, cards and extensions, months
        under the satisfaction floor, the hot spots and anomalies, and charts."""
        f, scope = resolve(query)
        report = content.gather(db.session, f, scope["department_name"] or "全部部门")
        db.session.rollback()  # read only; nothing of the request's session is kept open while rendering
        fmt = query["format"]
        try:
            body = render.write(report, fmt, current_app.config["HCP_SETTINGS"].report_font)
        except charts.FontMissing as exc:
            abort(503, message=str(exc))
        resp = Response(body, mimetype=render.FORMATS[fmt])
        resp.headers["Content-Disposition"] = f'attachment; filename="{filename(scope, fmt)}"'
        return resp
