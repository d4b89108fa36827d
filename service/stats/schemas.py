"""marshmallow schemas of the stats resource (SPEC §3, §4)."""
from datetime import date

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from models import CHANNELS
from service.edge import Text
from service.stats.figures import BREAKDOWNS

MAX_DAYS = 3 * 366  # a longer period is a mistake more often than a question
# Dates hcp can hold ratings for; outside them month arithmetic would leave the calendar.
DATES = validate.Range(min=date(2000, 1, 1), max=date(9998, 12, 31))


class StatsQuery(Schema):
    date_from = fields.Date(required=True, data_key="from", validate=DATES,
                            metadata={"description": "first local (Asia/Shanghai) rating date, inclusive"})
    date_to = fields.Date(required=True, data_key="to", validate=DATES,
                          metadata={"description": "last rating date, inclusive"})
    department = Text(validate=validate.Length(min=1, max=64),
                               metadata={"description": "department code; its subtree is included"})
    channel = Text(validate=validate.OneOf(CHANNELS))
    item = Text(validate=validate.Length(min=1, max=64), metadata={"description": "service item code"})
    window = Text(validate=validate.Length(min=1, max=64))

    @validates_schema
    def _period(self, data, **_):
        if "date_from" in data and "date_to" in data:
            if data["date_from"] > data["date_to"]:
                raise ValidationError("from must not be after to", "to")
            if (data["date_to"] - data["date_from"]).days >= MAX_DAYS:
                raise ValidationError(f"a period is at most {MAX_DAYS} days", "to")


class BreakdownQuery(StatsQuery):
    by = Text(required=True, validate=validate.OneOf(BREAKDOWNS))


class ExportQuery(StatsQuery):
    format = Text(load_default="xlsx", validate=validate.OneOf(["xlsx", "csv"]))
    by = Text(validate=validate.OneOf(BREAKDOWNS),
                       metadata={"description": "one row per group and a total row; omitted: the total only"})


class Figures(Schema):
    """The §3 figures; each rate is a fraction 0–1, or null when its denominator is 0."""

    total = fields.Integer()
    good = fields.Integer()
    bad = fields.Integer()
    by_level = fields.Dict(keys=fields.String(), values=fields.Integer(),
                           metadata={"description": "count per level, keys '1'..'5' (5 = 非常满意)"})
    good_rate = fields.Float(allow_none=True)
    disposal_rate = fields.Float(allow_none=True)
    rectification_rate = fields.Float(allow_none=True)
    callback_rate = fields.Float(allow_none=True)
    on_time_rate = fields.Float(allow_none=True)
    feedback_satisfaction_rate = fields.Float(allow_none=True)
    open = fields.Integer()
    overdue_open = fields.Integer()
    red = fields.Integer()
    yellow = fields.Integer()
    closed = fields.Integer()
    closed_rectified = fields.Integer()
    closed_explained = fields.Integer()
    closed_invalid = fields.Integer()
    rectifiable = fields.Integer(metadata={"description": "bad − closed invalid − closed explained"})
    closed_on_time = fields.Integer()
    on_time_base = fields.Integer(metadata={"description": "closed + open past the closure deadline"})
    called_back = fields.Integer()
    real_name_bad = fields.Integer()
    satisfied_yes = fields.Integer()
    satisfied_known = fields.Integer()
    extended = fields.Integer(metadata={"description": "cases whose 延期 (extension) was approved"})
    default = fields.Integer(metadata={"description": "default ratings (默认评价)"})
    rated_total = fields.Integer(metadata={"description": "ratings that are not default"})
    rated_good = fields.Integer(metadata={"description": "good ratings that are not default"})
    good_rate_rated = fields.Float(allow_none=True, metadata={"description": "rated_good / rated_total"})
    active_rating_rate = fields.Float(allow_none=True, metadata={"description": "主动评价率: rated_total / total"})
    projects = fields.Integer(allow_none=True, metadata={
        "description": "applications that reached a rated stage in the period (its local date); "
                       "null in the channel, window and reason breakdowns, which applications have none of"})
    rated_projects = fields.Integer(allow_none=True,
                                    metadata={"description": "of those, with a rating that is not default"})
    rated_projects_rate = fields.Float(allow_none=True,
                                       metadata={"description": "办件评价率: rated_projects / projects"})


class Scope(Schema):
    date_from = fields.Date(data_key="from")
    date_to = fields.Date(data_key="to")
    department = fields.String(allow_none=True)
    department_name = fields.String(allow_none=True)
    channel = fields.String(allow_none=True)
    item = fields.String(allow_none=True)
    window = fields.String(allow_none=True)


class SummaryOut(Figures, Scope):
    excluded = fields.Integer(metadata={"description": "ratings excluded from every figure by a confirmed "
                                                      "suspicious flag (/api/v1/insights/suspicious)"})


class GroupOut(Figures):
    key = fields.String()
    label = fields.String()


class BreakdownOut(Scope):
    by = fields.String()
    groups = fields.List(fields.Nested(GroupOut))
    total = fields.Nested(Figures)
