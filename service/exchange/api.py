"""``/api/v1/exchange/inbound``: the provincial platform and the 12345 system send ratings down."""
from __future__ import annotations

from dataclasses import asdict

from flask import current_app, g
from flask.views import MethodView

from service.auth.clients import client_required
from service.edge import Blueprint
from service.exchange import inbound
from service.exchange.schemas import InboundIn, InboundOut

blp = Blueprint("exchange", __name__, url_prefix="/api/v1/exchange", description="Exchange (上报 and inbound)")


@blp.route("/inbound")
class Inbound(MethodView):
    @client_required("upstream", "hotline")
    @blp.arguments(InboundIn())
    @blp.response(200, InboundOut)
    def post(self, body):
        """Records from an upstream or hotline client: every valid one stored, one result per record in order.

        Idempotent on the source's record id (a replay is ``duplicate``, the same id with
        other values ``conflict``); bad ratings get cases as usual, and their results go back
        to the client when they close."""
        results = inbound.receive(g.client, body["records"], current_app.config["HCP_SETTINGS"],
                                  request_id=g.get("request_id"))
        return {"results": [{k: v for k, v in asdict(r).items() if v is not None} for r in results]}
