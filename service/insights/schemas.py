"""marshmallow schemas of the hot spots resource (SPEC §10)."""
from marshmallow import Schema, fields, validate

from service.stats.schemas import StatsQuery


class HotspotsQuery(StatsQuery):
    """The stats' period, department and item (channel and window do not apply)."""

    class Meta:
        exclude = ("channel", "window")


class TermOut(Schema):
    term = fields.String(metadata={"description": "a word of comments, tags or reason labels"})
    count = fields.Integer(metadata={"description": "ratings in the period whose text holds the term"})
    bad = fields.Integer(metadata={"description": "of those, bad ratings (levels 1–2)"})
    share_bad = fields.Float(allow_none=True, metadata={"description": "bad / count"})
    previous = fields.Integer(metadata={"description": "count in the previous period of equal length"})
    rising = fields.Boolean(metadata={"description": "count ≥ 5 and ≥ 1.5 × previous (docs/insights.md)"})


class AnomalyOut(Schema):
    kind = fields.String(validate=validate.OneOf(["item", "department"]))
    code = fields.String()
    name = fields.String()
    bad = fields.Integer()
    total = fields.Integer()
    bad_rate = fields.Float()
    baseline_rate = fields.Float(metadata={"description": "bad rate over the 8 weeks before the period"})
    p_value = fields.Float(metadata={"description": "one-sided exact binomial test (docs/insights.md)"})


class HotspotsOut(Schema):
    date_from = fields.Date(data_key="from")
    date_to = fields.Date(data_key="to")
    department = fields.String(allow_none=True)
    department_name = fields.String(allow_none=True)
    item = fields.String(allow_none=True)
    terms = fields.List(fields.Nested(TermOut))
    anomalies = fields.List(fields.Nested(AnomalyOut))
