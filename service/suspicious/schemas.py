"""marshmallow schemas of the suspicious-ratings queue (SPEC §10)."""
from marshmallow import Schema, fields, validate

from models import FLAG_STATE_LABELS, FLAG_STATES, RULE_LABELS, RULES
from service.edge import Text
from service.suspicious.decisions import NOTE_MAX


class FlagQuery(Schema):
    state = Text(load_default="open", validate=validate.OneOf(FLAG_STATES + ("all",)),
                 metadata={"description": "open (default), confirmed, dismissed or all"})
    rule = Text(validate=validate.OneOf(RULES))
    department = Text(validate=validate.Length(min=1, max=64),
                      metadata={"description": "department code; its subtree is included"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class DecisionIn(Schema):
    note = Text(validate=validate.Length(max=NOTE_MAX), allow_none=True,
                metadata={"description": "why (kept in the flag's history)"})


def _counts(name):
    return fields.Function(lambda f: f.counts[name])


class FlagOut(Schema):
    id = fields.Integer()
    rule = fields.String(metadata={"description": "burst | phone | comment | project"})
    rule_label = fields.Function(lambda f: RULE_LABELS[f.rule])
    subject = fields.String(metadata={
        "description": "what the ratings share (device, masked phone, comment, 办件编号)"})
    department = fields.Function(lambda f: f.department.code)
    department_name = fields.Function(lambda f: f.department.name)
    state = fields.String()
    state_label = fields.Function(lambda f: FLAG_STATE_LABELS[f.state])
    opened_at = fields.AwareDateTime()
    decided_at = fields.AwareDateTime(allow_none=True)
    decided_by = fields.Function(lambda f: f.decided_by.username if f.decided_by else None, allow_none=True)
    confirmed_by = fields.Function(lambda f: f.confirmed_by.username if f.confirmed_by else None, allow_none=True)
    ratings = _counts("ratings")
    good = _counts("good")
    bad = _counts("bad")
    excluded = _counts("excluded")
    first_rated_at = fields.Function(lambda f: f.counts["first_rated_at"] and f.counts["first_rated_at"].isoformat())
    last_rated_at = fields.Function(lambda f: f.counts["last_rated_at"] and f.counts["last_rated_at"].isoformat())


class FlagList(Schema):
    items = fields.List(fields.Nested(FlagOut))
    total = fields.Integer()


class FlagRatingOut(Schema):
    id = fields.Integer()
    level = fields.Integer()
    negative = fields.Boolean()
    rated_at = fields.AwareDateTime()
    channel = fields.String()
    comment = fields.String(allow_none=True)
    rater_phone = fields.String(allow_none=True, metadata={"description": "masked"})
    excluded = fields.Boolean()
    case_id = fields.Integer(allow_none=True)
    case_status = fields.String(allow_none=True)


class EventOut(Schema):
    at = fields.AwareDateTime()
    actor = fields.Function(lambda e: e.actor.username if e.actor else None, allow_none=True)
    action = fields.String(metadata={"description": "open | join | confirm | dismiss | restore"})
    from_state = fields.String(data_key="from", allow_none=True)
    to_state = fields.String(data_key="to")
    note = fields.String(allow_none=True)
    ratings = fields.Integer(metadata={"description": "ratings added, excluded or restored"})


class ReviewOut(Schema):
    rating_id = fields.Integer()
    case_id = fields.Integer(allow_none=True)
    case_status = fields.String(allow_none=True)
    case_outcome = fields.String(allow_none=True)


class FlagDetail(FlagOut):
    rating_list = fields.List(fields.Nested(FlagRatingOut), data_key="rating_items")
    history = fields.Function(lambda f: EventOut(many=True).dump(f.events))
    needs_invalid_review = fields.List(fields.Nested(ReviewOut), metadata={
        "description": "bad ratings of the flag: never excluded by a confirm; their cases go through "
                       "claim_invalid → approve"})


class DecisionOut(Schema):
    flag = fields.Nested(FlagOut)
    excluded = fields.List(fields.Integer(), metadata={"description": "ratings this confirm excluded"})
    restored = fields.List(fields.Integer(), metadata={"description": "ratings this restore counts again"})
    needs_invalid_review = fields.List(fields.Nested(ReviewOut))
