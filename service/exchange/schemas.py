"""marshmallow schemas of the exchange's inbound endpoint (SPEC §8)."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from service.ratings.schemas import MAX_BATCH


class InboundIn(Schema):
    class Meta:
        unknown = RAISE

    # Records are mapped and validated one by one, so one bad record does not sink the rest.
    records = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=MAX_BATCH),
                          metadata={"description": (
                              f"at most {MAX_BATCH}. An upstream client sends {{id, data}}, data in the exchange "
                              "profile's fields (docs/exchange.md); a hotline client {ticket_no, item_code?, "
                              "satisfaction: 0 不满意 | 1 基本满意 | 2 满意 | 3 非常满意, comment?, called_at "
                              "(ISO 8601 with offset), caller?: {name?, phone?}}")})


class InboundResult(Schema):
    id = fields.String(allow_none=True, metadata={"description": "the source's record id (or ticket number)"})
    status = fields.String(validate=validate.OneOf(["created", "duplicate", "conflict", "invalid"]))
    rating_id = fields.Integer()
    errors = fields.Dict(metadata={"description": "by the record's field names"})


class InboundOut(Schema):
    results = fields.List(fields.Nested(InboundResult))
