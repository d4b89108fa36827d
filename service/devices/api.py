"""``POST /api/v1/devices/pair``: a tablet exchanges a pairing code for its device key.

No key or login: the code is the credential. Attempts are limited per client address,
so six characters (31⁶ ≈ 8.9 × 10⁸ codes) cannot be guessed within a code's 10 minutes.
"""
from __future__ import annotations

import math
import time

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate

from service import audit
from service.auth import ratelimit
from service.devices import registry
from service.edge import Blueprint, Text
from service.extensions import db

blp = Blueprint("devices", __name__, url_prefix="/api/v1/devices", description="Device pairing (设备配对)")

ATTEMPTS = "10/minute"  # per client address, right or wrong
MESSAGES = {"unknown": "配对码无效、已使用或已过期，请向管理员重新获取",
            "disabled": "该设备已停用，请联系管理员"}


class PairIn(Schema):
    code = Text(required=True, validate=validate.Length(min=1, max=32),
                metadata={"description": "the 6-character code from the admin console or `hcp devices pair-code`"})


class PairedDevice(Schema):
    id = fields.Integer()
    name = fields.String()
    channel = fields.String()
    window = fields.String(allow_none=True)
    department = fields.Function(lambda d: d.department.code)


class PairOut(Schema):
    key = fields.String(metadata={"description": "the device key (hcpd_…), shown this once; any earlier key "
                                                 "of the device stops working"})
    device = fields.Nested(PairedDevice)


@blp.route("/pair")
class Pair(MethodView):
    @blp.arguments(PairIn)
    @blp.response(200, PairOut)
    @blp.alt_response(404, description="a wrong, used or expired code (message in Chinese)")
    @blp.alt_response(429, description="too many attempts from this address; see Retry-After")
    def post(self, body):
        """Exchange a one-time pairing code for the device's key (no authentication)."""
        item = ratelimit.limit(ATTEMPTS)
        reset_at = ratelimit.hit(item, 1, current_app.config["HCP_SETTINGS"].instance, "pair",
                                 request.remote_addr or "-")
        if reset_at is not None:
            abort(429, message="尝试次数过多，请稍后再试",
                  headers={"Retry-After": str(max(1, math.ceil(reset_at - time.time())))})
        try:
            device, key, row = registry.redeem_pair_code(db.session, body["code"])
        except registry.PairError as err:
            db.session.rollback()
            abort(404, message=MESSAGES[err.reason])
        audit.record(db.session, row.issued_by, "device.paired", f"设备 {device.id} {device.name}",
                     None, {"配对码": "已使用", "密钥": "已更换"})
        db.session.commit()
        return {"key": key, "device": device}
