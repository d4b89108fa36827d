"""``/api/v1/clients/me``: an integration client checks its key and sees what hcp knows of it."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from marshmallow import Schema, fields

from service.auth.clients import client_required
from service.edge import Blueprint

blp = Blueprint("clients", __name__, url_prefix="/api/v1/clients", description="Integration clients")


class ClientOut(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    kind = fields.String(dump_only=True, metadata={"description": "approval | upstream | hotline"})
    department = fields.Function(lambda c: c.department.code, dump_only=True)


@blp.route("/me")
class Me(MethodView):
    @client_required()
    @blp.response(200, ClientOut)
    def get(self):
        """The calling integration client (its key as bearer token)."""
        return g.client
