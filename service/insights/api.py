"""``/api/v1/insights``: the hot spots (堵点难点) of a period, scoped like the stats."""
from __future__ import annotations

from flask.views import MethodView

from service.auth.access import staff_required
from service.edge import Blueprint
from service.extensions import db
from service.insights import hotspots
from service.insights.schemas import HotspotsOut, HotspotsQuery
from service.stats.api import VIEWERS, resolve

blp = Blueprint("insights", __name__, url_prefix="/api/v1/insights", description="Hot spots (堵点难点)")


@blp.route("/hotspots")
class Hotspots(MethodView):
    @staff_required(*VIEWERS)
    @blp.arguments(HotspotsQuery, location="query")
    @blp.response(200, HotspotsOut)
    @blp.alt_response(404, description="department unknown or outside your scope")
    def get(self, query):
        """Top terms of comments, tags and reason labels against the previous equal period,
        and the items and departments whose bad rate is significantly above their own
        trailing 8 weeks (docs/insights.md)."""
        f, scope = resolve(query)
        answer = hotspots.hotspots(db.session, hotspots.Scope(f.date_from, f.date_to, f.department_path, f.item_id))
        keep = ("date_from", "date_to", "department", "department_name", "item")
        return {**{k: scope[k] for k in keep}, **answer}
