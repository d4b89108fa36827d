"""``/api/v1/reasons``: the reason options of the active table, for a level."""
from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from service.auth.clients import any_key_required
from service.edge import Blueprint
from service.extensions import db
from service.reasons import table

blp = Blueprint("reasons", __name__, url_prefix="/api/v1/reasons", description="Reason codes (评价指标)")


class ReasonsQuery(Schema):
    level = fields.Integer(validate=validate.Range(min=1, max=5),
                           metadata={"description": "only the options offered for this level"})


class ReasonOut(Schema):
    code = fields.String()
    label = fields.String()
    dimension = fields.String(metadata={"description": "e.g. 服务态度, 办事便捷度"})
    scope = fields.String(metadata={"description": "offline (hall) | online"})
    levels = fields.List(fields.Integer())


class ReasonsOut(Schema):
    version = fields.Integer(metadata={"description": "0: the table shipped with hcp"})
    reasons = fields.List(fields.Nested(ReasonOut))


@blp.route("")
class Reasons(MethodView):
    @any_key_required
    @blp.arguments(ReasonsQuery, location="query")
    @blp.response(200, ReasonsOut)
    def get(self, query):
        """The active reason options (all, or those offered for ``level``); any device, client or staff."""
        version, options = table.active(db.session)
        if "level" in query:
            options = [o for o in options if query["level"] in o.levels]
        return {"version": version, "reasons": options}
