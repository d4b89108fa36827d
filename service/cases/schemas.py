"""marshmallow schemas of the cases resource (SPEC §4)."""
from marshmallow import Schema, fields, validate

from models import STATUS_LABELS
from service.ratings.schemas import RatingOut


class CaseQuery(Schema):
    status = fields.String(validate=validate.OneOf(list(STATUS_LABELS)))
    department = fields.String(metadata={"description": "department code; its subtree is included"})
    assignee = fields.String(validate=validate.OneOf(["me"]))
    warning = fields.String(validate=validate.OneOf(["yellow", "red", "any"]))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
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


class CaseDetail(CaseOut):
    rating = fields.Nested(RatingOut)
    history = fields.List(fields.Nested(HistoryOut))


class CasePage(Schema):
    items = fields.List(fields.Nested(CaseOut))
    total = fields.Integer()
