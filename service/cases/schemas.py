"""marshmallow schemas of the cases resource (SPEC §4, §9); the views return ORM rows."""
from flask import g
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from models import CHANNELS, STATUS_LABELS
from service.cases import workflow
from service.cases.query import WARNING_FILTERS
from service.cases.warnings import Cards
from service.edge import Text
from service.extensions import db
from service.openapi import MAX_ID
from service.ratings.schemas import RatingOut

ACTIONS = workflow.ACTIONS


def cards_now() -> Cards:
    """The red/yellow rule for today, computed once per request (every case of a page agrees)."""
    if "hcp_cards" not in g:
        g.hcp_cards = Cards.now(db.session)
    return g.hcp_cards


class CaseFilterArgs(Schema):
    """The list filters shared by ``GET /api/v1/cases`` and ``/api/v1/cases/export`` (SPEC §9)."""

    status = Text(validate=validate.OneOf(list(STATUS_LABELS) + ["open"]),
                           metadata={"description": "a state code, or open for every state but closed"})
    department = Text(metadata={"description": "department code; its subtree is included"})
    assignee = Text(validate=validate.OneOf(["me"]))
    warning = Text(validate=validate.OneOf(WARNING_FILTERS),
                            metadata={"description": "the card now: yellow, red or any"})
    overdue = fields.Boolean(metadata={"description": "true: open cases past their next deadline"})
    q = Text(validate=validate.Length(min=1, max=200),
                      metadata={"description": "case id, exact 办件编号, the rater's full phone, "
                                               "or (when none of those matches) a word of the comment"})
    rated_from = fields.Date(metadata={"description": "rated on or after (Asia/Shanghai date)"})
    rated_to = fields.Date(metadata={"description": "rated on or before (Asia/Shanghai date)"})
    item = Text(validate=validate.Length(min=1, max=64), metadata={"description": "service item code"})
    channel = Text(validate=validate.OneOf(CHANNELS))

    @validates_schema
    def _period(self, data, **kwargs):
        if data.get("rated_from") and data.get("rated_to") and data["rated_from"] > data["rated_to"]:
            raise ValidationError("rated_from must not be after rated_to", "rated_from")


class CaseQuery(CaseFilterArgs):
    # Bounded so page × per_page stays a valid SQL OFFSET (a larger page was a 500).
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class ExportQuery(CaseFilterArgs):
    format = Text(load_default="xlsx", validate=validate.OneOf(["xlsx", "csv"]))


class HistoryOut(Schema):
    at = fields.AwareDateTime()
    actor = fields.Function(lambda e: e.actor.username if e.actor else None, allow_none=True)
    action = fields.String()
    from_ = fields.String(data_key="from", attribute="from_status", allow_none=True)
    to = fields.String(attribute="to_status")
    note = fields.String(allow_none=True)


class CaseOut(Schema):
    """A case (an ORM row) as listed: codes, labels, deadlines and the card as of now."""

    id = fields.Integer()
    rating_id = fields.Integer()
    department = fields.Function(lambda c: c.department.code)
    department_name = fields.Function(lambda c: c.department.name)
    assignee = fields.Function(lambda c: c.assignee.username if c.assignee else None, allow_none=True)
    status = fields.String()
    status_label = fields.Function(lambda c: STATUS_LABELS[c.status])
    outcome = fields.String(allow_none=True)
    callback_due = fields.Date(allow_none=True, metadata={"description": "null for an anonymous rating"})
    close_due = fields.Date(metadata={"description": "moved by an approved extension"})
    warning = fields.Function(lambda c: cards_now().of(c).level, allow_none=True,
                              metadata={"description": "null, yellow or red, computed when asked"})
    extension_days = fields.Integer(allow_none=True,
                                    metadata={"description": "working days asked (under review) or granted"})
    extended_at = fields.AwareDateTime(allow_none=True)
    rated_at = fields.AwareDateTime(attribute="rating.rated_at")
    anonymous = fields.Function(lambda c: not c.rating.real_name)
    created_at = fields.AwareDateTime()
    closed_at = fields.AwareDateTime(allow_none=True)
    version = fields.Integer(metadata={"description": "bumped by every action; send it back "
                                                      "with an action to refuse a stale one"})


class CaseDetail(CaseOut):
    rating = fields.Nested(RatingOut)
    history = fields.List(fields.Nested(HistoryOut))
    actions = fields.Function(lambda c: workflow.actions_for(c, g.user),
                              metadata={"description": "actions you may take now"})


class StrictBoolean(fields.Boolean):
    """JSON true or false only; "no" or 0 is refused rather than read as an answer."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class MeasuresIn(Schema):
    class Meta:
        unknown = RAISE

    cause = Text(required=True, validate=validate.Length(min=1, max=2000),
                          metadata={"description": "原因: what went wrong"})
    action = Text(required=True, validate=validate.Length(min=1, max=2000),
                           metadata={"description": "措施: what was done about it"})


class ActionIn(Schema):
    """Body of ``POST /api/v1/cases/{id}/actions``: the action and its fields (SPEC §2).

    Only the shape is checked here; which fields each action needs, and whether it is
    allowed at all, is decided by service.cases.workflow (the one place of the rules).
    """

    class Meta:
        unknown = RAISE

    action = Text(required=True, validate=validate.OneOf(ACTIONS))
    note = Text(allow_none=True, validate=validate.Length(max=2000))
    version = fields.Integer(strict=True, metadata={"description": "the case version you saw (optional)"})
    assignee = Text(validate=validate.Length(min=1, max=64),
                             metadata={"description": "assign: username of the handler"})
    contacted = StrictBoolean(metadata={"description": "verify, feedback: the rater was reached"})
    satisfied = StrictBoolean(allow_none=True, metadata={"description": "feedback: the rater's answer, "
                                                                       "null when not asked"})
    reason = Text(validate=validate.Length(max=2000),
                           metadata={"description": "claim_invalid, propose_explain, request_extension, reopen"})
    working_days = fields.Integer(strict=True, validate=validate.Range(*workflow.EXTENSION_DAYS),
                                  metadata={"description": "request_extension: working days to add (1–15)"})
    measures = fields.Nested(MeasuresIn, metadata={"description": "rectify: cause and action taken"})


class RaterRevealed(Schema):
    name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)


class CasePage(Schema):
    items = fields.List(fields.Nested(CaseOut))
    total = fields.Integer()


class BatchActionIn(Schema):
    """Body of ``POST /api/v1/cases/actions``: one action (assign, approve, reject) on many cases."""

    class Meta:
        unknown = RAISE

    # a case id is a PostgreSQL bigint: a larger number is a 422 naming ids, not a database error
    ids = fields.List(fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID)), required=True,
                      validate=validate.Length(min=1, max=500))
    action = Text(required=True, validate=validate.OneOf(workflow.BATCH_ACTIONS))
    note = Text(allow_none=True, validate=validate.Length(max=2000))
    assignee = Text(validate=validate.Length(min=1, max=64),
                             metadata={"description": "assign: username of the handler"})


class BatchResult(Schema):
    id = fields.Integer()
    status = fields.String(validate=validate.OneOf(["ok", "error"]))
    code = fields.String(metadata={"description": "why not: not_found or a refusal reason "
                                                  "(state, role, not_assignee, four_eyes, field, stale)"})
    message = fields.String()


class BatchActionOut(Schema):
    results = fields.List(fields.Nested(BatchResult))
