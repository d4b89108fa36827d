"""``/api/v1/ratings``: devices post ratings (single or batch); staff read them."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import ValidationError

from models import Rating
from service.auth.access import device_required, in_scope, spend, staff_required
from service.edge import Blueprint
from service.extensions import db
from service.ratings import after_commit
from service.pooling import intake_engine
from service.ratings.intake import Outcome, insert_group, store
from service.ratings.schemas import BatchIn, BatchOut, RatingCreated, RatingIn, RatingOut

RATING_IN = RatingIn()  # schemas are built once: building one costs more than a load
blp = Blueprint("ratings", __name__, url_prefix="/api/v1/ratings", description="Rating intake")


def _intake(bodies: list) -> list[Outcome]:
    """Store, commit, then route: the rating is safe before any task is sent."""
    # A Core connection, not the ORM session: the intake reads and writes a handful of
    # columns, and the session's bookkeeping was a third of a rating's CPU.
    with intake_engine().begin() as conn:
        outcomes = store(conn, g.device, bodies, request_id=g.get("request_id"), group=insert_group())
    g.intake_outcomes = outcomes  # counted by service.observability.metrics
    after_commit.send_tasks(outcomes, bodies, g.get("request_id"))
    return outcomes


@blp.route("")
class Ratings(MethodView):
    @device_required
    @blp.arguments(RATING_IN)
    @blp.response(201, RatingCreated, description="stored")
    @blp.alt_response(200, schema=RatingCreated, description="a replay: the first answer, nothing new stored")
    @blp.alt_response(409, description="this client_id was used with a different body")
    @blp.alt_response(429, description="over this device's rate limit; see Retry-After")
    @blp.alt_response(503, description="database unavailable; see Retry-After")
    def post(self, body):
        """Post one rating (device key). Idempotent on ``client_id``."""
        outcome = _intake([body])[0]
        if outcome.status == "invalid":
            abort(422, errors={"json": outcome.errors}, message="invalid rating")
        if outcome.status == "conflict":
            abort(409, message=f"client_id {outcome.client_id} was already used with a different body")
        return outcome.rating, (201 if outcome.status == "created" else 200)


@blp.route("/batch")
class Batch(MethodView):
    @device_required(counted=False)
    @blp.arguments(BatchIn())
    @blp.response(200, BatchOut)
    def post(self, body):
        """Post up to 500 ratings; every valid one is stored, one result per item in order.

        The batch spends as many of the device's rate limit as it holds ratings; over the
        limit the whole batch is 429 (nothing stored)."""
        spend(g.device, len(body["ratings"]))
        bodies = []
        for raw in body["ratings"]:
            try:
                bodies.append(RATING_IN.load(raw))
            except ValidationError as err:
                cid = raw.get("client_id") if isinstance(raw.get("client_id"), str) else None
                bodies.append(Outcome(cid, "invalid", errors=err.messages))
        results = []
        for outcome in _intake(bodies):
            item = {"client_id": outcome.client_id, "status": outcome.status}
            if outcome.rating and outcome.status in ("created", "duplicate"):
                item["id"] = outcome.rating["id"]
            if outcome.errors:
                item["errors"] = outcome.errors
            results.append(item)
        return {"results": results}


@blp.route("/<int:rating_id>")
class RatingById(MethodView):
    @staff_required()
    @blp.response(200, RatingOut)
    @blp.alt_response(404, description="no such rating in your departments")
    def get(self, rating_id):
        """A rating (rater masked) with its ``case_id`` once routed; staff of its department subtree."""
        rating = db.session.get(Rating, rating_id)
        if rating is None or not in_scope(g.user, rating.department):
            abort(404, message="rating not found")
        return rating
