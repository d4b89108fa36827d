"""Keeping /api/v1/openapi.json truthful where flask-smorest alone would not.

* Path ids (``<int:…>``) are ASCII digits bounded to 64 bits: a larger id (or ``３``) is
  no route (404) rather than a database error (500), and the document states the bound.
* Every operation that takes a JSON body documents 400: a body that is not JSON at all
  is refused before validation (422 is for JSON that breaks the schema); and 413, a body
  over HCP_MAX_BODY_BYTES (service/edge.py).
* Every documented 4xx/5xx answer names its body: the JSON error (``Error``) that
  service/errors.py sends, so clients and schemathesis can check it.

Who may call each operation (the two bearer schemes and 401/403/429) is documented by the
decorators in service/auth/access.py. Found by the schemathesis run (tests/fuzz).
"""
from __future__ import annotations

import marshmallow as ma
from apispec import BasePlugin
from flask import Flask
from flask_smorest import Api
from flask_smorest.error_handler import ErrorSchema as SmorestErrorSchema
from flask_smorest.spec.plugins import integerconverter2paramschema
from werkzeug.routing import IntegerConverter

MAX_ID = 2**63 - 1  # PostgreSQL bigint


class ErrorSchema(SmorestErrorSchema):
    """The JSON error as service/errors.py sends it, with a refused case action's typed reason."""

    reason = ma.fields.String(metadata={
        "description": "why a case action was refused (service/cases/workflow.py REASONS): "
                       "state, stale, anonymous, role, not_assignee, four_eyes, field"})


class HcpApi(Api):
    """flask-smorest's Api documenting hcp's Error body (the ``reason`` of a refused action)."""

    ERROR_SCHEMA = ErrorSchema
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


class Int64Converter(IntegerConverter):
    r"""``<int:…>`` with a default upper bound of the largest bigint, ASCII digits only
    (werkzeug's ``\d`` also matches ``３`` and other Unicode digits, which int() reads)."""

    regex = r"[0-9]+"

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


class ErrorResponses(BasePlugin):
    """apispec plugin: 400 on every operation with a request body; the Error body on
    every error answer documented with a description only."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault("400", {"description": "the body is not JSON", "content": _ERROR})
                responses.setdefault("413", {"description": "the body is larger than HCP_MAX_BODY_BYTES",
                                             "content": _ERROR})
            for code, response in responses.items():
                if (str(code)[:1] in "45" and isinstance(response, dict)
                        and "content" not in response and "$ref" not in response):
                    response["content"] = _ERROR


def init_app(app: Flask, api) -> None:
    """Call before any blueprint is registered: routes compile their converters then."""
    app.url_map.converters["int"] = Int64Converter
    api.register_converter(Int64Converter, integerconverter2paramschema)
