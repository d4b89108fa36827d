"""marshmallow schemas of the ratings resource, split by verb (SPEC §4)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates, validates_schema

from models import LEVEL_LABELS
from models.types import utcnow
from service.edge import Text

# A device clock may run a little fast; a rating from further in the future is refused.
MAX_CLOCK_SKEW = timedelta(minutes=10)
MAX_BATCH = 500
# The figures count no rating dated earlier (service/stats/schemas.py DATES): one stored
# from before would be routed but never seen in any figure.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)


class RaterIn(Schema):
    class Meta:
        unknown = RAISE

    real_name = fields.Boolean(load_default=False)
    name = Text(validate=validate.Length(min=1, max=50))
    phone = Text(validate=validate.Regexp(r"\+?[0-9]{5,20}\Z", error="digits only, 5 to 20"))

    @validates_schema
    def _anonymous_carries_nothing(self, data, **kwargs):
        if not data.get("real_name") and (data.get("name") or data.get("phone")):
            raise ValidationError("an anonymous rater (real_name false) carries no name or phone",
                                  field_name="real_name")


class RatingIn(Schema):
    """Body of ``POST /api/v1/ratings`` and of each item of a batch."""

    class Meta:
        unknown = RAISE

    client_id = fields.UUID(required=True, metadata={"description": "the device's idempotency key"})
    level = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=5),
                           metadata={"description": "5 非常满意 … 1 非常不满意"})
    rated_at = fields.AwareDateTime(required=True,
                                    validate=validate.Range(min=EARLIEST, error="rated_at lies before 2000-01-01"),
                                    metadata={"description": "ISO 8601 with offset, from 2000-01-01"})
    item_code = Text(validate=validate.Length(min=1, max=64))
    project_no = Text(validate=validate.Length(min=1, max=64), metadata={"description": "办件编号"})
    staff_no = Text(validate=validate.Length(min=1, max=64), metadata={"description": "工号"})
    tags = fields.List(Text(validate=validate.Length(min=1, max=32)), validate=validate.Length(max=20))
    reasons = fields.List(Text(validate=validate.Length(min=1, max=32)), validate=validate.Length(max=20),
                          metadata={"description": "reason codes (GET /api/v1/reasons?level=N) offered for the level"})
    comment = Text(validate=validate.Length(max=500))
    rater = fields.Nested(RaterIn)

    @validates("rated_at")
    def _not_in_future(self, value, **kwargs):
        if value > utcnow() + MAX_CLOCK_SKEW:
            raise ValidationError("rated_at lies in the future")


class BatchIn(Schema):
    class Meta:
        unknown = RAISE

    # Items are validated one by one by the view, so one bad item does not sink the rest.
    ratings = fields.List(fields.Dict(), required=True,
                          validate=validate.Length(min=1, max=MAX_BATCH),
                          metadata={"description": f"at most {MAX_BATCH} RatingIn objects"})


class RatingCreated(Schema):
    id = fields.Integer(dump_only=True)
    client_id = fields.String(dump_only=True)
    level = fields.Integer(dump_only=True)
    negative = fields.Boolean(dump_only=True)
    received_at = fields.AwareDateTime(dump_only=True)


class BatchItemResult(Schema):
    client_id = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(["created", "duplicate", "conflict", "invalid"]))
    id = fields.Integer()
    errors = fields.Dict()


class BatchOut(Schema):
    results = fields.List(fields.Nested(BatchItemResult))


class RaterOut(Schema):
    real_name = fields.Boolean()
    name = fields.String(attribute="rater_name_masked", allow_none=True, metadata={"description": "masked"})
    phone = fields.String(attribute="rater_phone_masked", allow_none=True,
                          metadata={"description": "masked, 138******78"})


class RatingOut(Schema):
    """A stored rating (an ORM row) as staff see it; the rater is always masked here."""

    id = fields.Integer()
    client_id = fields.String()
    level = fields.Integer()
    level_label = fields.Function(lambda r: LEVEL_LABELS[r.level])
    negative = fields.Boolean()
    rated_at = fields.AwareDateTime()
    received_at = fields.AwareDateTime()
    channel = fields.String()
    window = fields.String(allow_none=True)
    device = fields.Function(lambda r: r.device.name)
    department = fields.Function(lambda r: r.department.code)
    item_code = fields.Function(lambda r: r.item.code if r.item else None, allow_none=True)
    project_no = fields.String(allow_none=True)
    staff_no = fields.String(allow_none=True)
    tags = fields.List(fields.String(), allow_none=True)
    reasons = fields.List(fields.String(), allow_none=True)
    comment = fields.String(allow_none=True)
    rater = fields.Function(lambda r: RaterOut().dump(r))
    case_id = fields.Function(lambda r: r.case.id if r.case else None, allow_none=True)
