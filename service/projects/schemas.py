"""marshmallow schemas of the projects resource (SPEC §7), split by verb."""
from __future__ import annotations

from datetime import datetime, timezone

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from models import APPLICANT_KINDS, STAGES
from models.types import utcnow
from service.edge import Text
from service.ratings.schemas import MAX_CLOCK_SKEW

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
PROJECT_NO = validate.Regexp(r"^[A-Za-z0-9_.\-]{1,64}$", error="1–64 letters, digits, '_', '.' or '-'")


def _moment(description: str, past_only: bool = True) -> fields.AwareDateTime:
    def check(value):
        if value < EARLIEST:
            raise ValidationError("before 2000-01-01")
        if past_only and value > utcnow() + MAX_CLOCK_SKEW:
            raise ValidationError("lies in the future")
        if value.year > 9998:
            raise ValidationError("too far in the future")
    return fields.AwareDateTime(validate=check, metadata={"description": description})


class ApplicantIn(Schema):
    class Meta:
        unknown = RAISE

    kind = Text(required=True, validate=validate.OneOf(APPLICANT_KINDS),
                         metadata={"description": "person 自然人 | legal 法人"})
    name = Text(required=True, validate=validate.Length(min=1, max=100))
    phone = Text(validate=validate.Regexp(r"^\+?[0-9]{5,20}$", error="digits only, 5 to 20"),
                          metadata={"description": "for the SMS invitation; encrypted at rest"})


class ProjectIn(Schema):
    """Body of ``PUT /api/v1/projects/{project_no}``."""

    class Meta:
        unknown = RAISE

    item_code = Text(required=True, validate=validate.Length(min=1, max=64))
    stage = Text(required=True, validate=validate.OneOf(STAGES),
                          metadata={"description": "accepted 受理 | done 办结; only moves forward"})
    accepted_at = _moment("受理时间, ISO 8601 with offset")
    done_at = _moment("办结时间, ISO 8601 with offset; required for stage done")
    promised_at = _moment("承诺办结时间", past_only=False)
    staff_no = Text(validate=validate.Length(min=1, max=64), metadata={"description": "工号"})
    applicant = fields.Nested(ApplicantIn, required=True)

    @validates_schema
    def _stage_times(self, data, **kwargs):
        if data.get("stage") == "accepted" and not data.get("accepted_at"):
            raise ValidationError("stage accepted needs accepted_at", "accepted_at")
        if data.get("stage") == "done" and not data.get("done_at"):
            raise ValidationError("stage done needs done_at", "done_at")
        if data.get("accepted_at") and data.get("done_at") and data["done_at"] < data["accepted_at"]:
            raise ValidationError("done_at lies before accepted_at", "done_at")


class ApplicantOut(Schema):
    kind = fields.String()
    name = fields.String(allow_none=True, metadata={"description": "masked"})
    phone = fields.String(allow_none=True, metadata={"description": "masked, 138******78"})


class ProjectRatingOut(Schema):
    id = fields.Integer()
    level = fields.Integer()
    negative = fields.Boolean()
    channel = fields.String()
    rated_at = fields.AwareDateTime()


class InvitationStateOut(Schema):
    """An invitation as staff see it in a project: no link (the link is the applicant's)."""

    stage = fields.String()
    expires_at = fields.AwareDateTime()
    state = fields.String(metadata={"description": "pending | rated | defaulted | expired"})


class InvitationOut(InvitationStateOut):
    # A schema of its own rather than InvitationOut(exclude=...) nested in ProjectOut: two
    # variants of one class would clash on one OpenAPI component name.
    url = fields.String(metadata={"description": "HCP_PUBLIC_URL/r/{token}; the QR code is url + /qr.svg"})


class ProjectOut(Schema):
    project_no = fields.String()
    item_code = fields.String()
    item_name = fields.String()
    department = fields.String()
    department_name = fields.String()
    stage = fields.String()
    stage_label = fields.String()
    accepted_at = fields.AwareDateTime(allow_none=True)
    done_at = fields.AwareDateTime(allow_none=True)
    promised_at = fields.AwareDateTime(allow_none=True)
    staff_no = fields.String(allow_none=True)
    applicant = fields.Nested(ApplicantOut)
    ratings = fields.List(fields.Nested(ProjectRatingOut))
    invitation = fields.Nested(InvitationStateOut, allow_none=True)
