"""marshmallow schemas of the cases resource (SPEC §4)."""
from marshmallow import RAISE, Schema, fields, validate

from models import STATUS_LABELS
from service.cases.workflow import ACTIONS
from service.ratings.schemas import RatingOut


class CaseQuery(Schema):
    status = fields.String(validate=validate.OneOf(list(STATUS_LABELS)))
    department = fields.String(metadata={"description": "department code; its subtree is included"})
    assignee = fields.String(validate=validate.OneOf(["me"]))
    warning = fields.String(validate=validate.OneOf(["yellow", "red", "any"]))
    # Bounded so page × per_page stays a valid SQL OFFSET (a larger page was a 500).
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class HistoryOut(Schema):
    at = fields.AwareDateTime()
    actor = fields.String(allow_none=True)
    action = fields.String()
    from_ = fields.String(data_key="from", attribute="from", allow_none=True)
    to = fields.String()
    note = fields.String(allow_none=True)


class CaseOut(Schema):
    id = fields.Integer()
    rating_id = fields.Integer()
    department = fields.String()
    department_name = fields.String()
    assignee = fields.String(allow_none=True)
    status = fields.String()
    status_label = fields.String()
    outcome = fields.String(allow_none=True)
    callback_due = fields.Date()
    close_due = fields.Date()
    warning = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    closed_at = fields.AwareDateTime(allow_none=True)
    version = fields.Integer(metadata={"description": "bumped by every action; send it back "
                                                      "with an action to refuse a stale one"})


class CaseDetail(CaseOut):
    rating = fields.Nested(RatingOut)
    history = fields.List(fields.Nested(HistoryOut))
    actions = fields.List(fields.String(), metadata={"description": "actions you may take now"})


class StrictBoolean(fields.Boolean):
    """JSON true or false only; "no" or 0 is refused rather than read as an answer."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class MeasuresIn(Schema):
    class Meta:
        unknown = RAISE

    cause = fields.String(required=True, validate=validate.Length(min=1, max=2000),
                          metadata={"description": "原因: what went wrong"})
    action = fields.String(required=True, validate=validate.Length(min=1, max=2000),
                           metadata={"description": "措施: what was done about it"})


class ActionIn(Schema):
    """Body of ``POST /api/v1/cases/{id}/actions``: the action and its fields (SPEC §2).

    Only the shape is checked here; which fields each action needs, and whether it is
    allowed at all, is decided by service.cases.workflow (the one place of the rules).
    """

    class Meta:
        unknown = RAISE

    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))
    version = fields.Integer(strict=True, metadata={"description": "the case version you saw (optional)"})
    assignee = fields.String(validate=validate.Length(min=1, max=64),
                             metadata={"description": "assign: username of the handler"})
    contacted = StrictBoolean(metadata={"description": "verify, feedback: the rater was reached"})
    satisfied = StrictBoolean(allow_none=True, metadata={"description": "feedback: the rater's answer, "
                                                                       "null when not asked"})
    reason = fields.String(validate=validate.Length(max=2000),
                           metadata={"description": "claim_invalid, propose_explain, reopen"})
    measures = fields.Nested(MeasuresIn, metadata={"description": "rectify: cause and action taken"})


class RaterRevealed(Schema):
    name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)


class CasePage(Schema):
    items = fields.List(fields.Nested(CaseOut))
    total = fields.Integer()
