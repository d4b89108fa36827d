"""``/api/v1/auth``: staff sign in for a bearer token, and revoke it."""
from __future__ import annotations

from datetime import timedelta

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from werkzeug.security import check_password_hash

from models import User
from models.types import utcnow
from service.auth.access import issue_token, staff_required
from service.extensions import db

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Staff tokens")

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)


class TokenRequest(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))


class TokenResponse(Schema):
    token = fields.String()
    expires_at = fields.AwareDateTime()
    username = fields.String()
    role = fields.String()


def check_login(username: str, password: str) -> User | None:
    """The user if the password is right and the account is not locked; counts failures.

    After MAX_FAILURES wrong passwords the account is locked for LOCKOUT. The caller commits.
    """
    user = db.session.scalar(select(User).where(User.username == username))
    now = utcnow()
    if user is None or not user.active:
        return None
    if user.locked_until and user.locked_until > now:
        return None
    if not check_password_hash(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
        return None
    user.failed_logins = 0
    user.locked_until = None
    return user


@blp.route("/token")
class Token(MethodView):
    @blp.arguments(TokenRequest)
    @blp.response(201, TokenResponse)
    @blp.alt_response(401, description="wrong username or password, or account locked")
    def post(self, body):
        """Sign in: a bearer token for the staff API (expires after HCP_TOKEN_HOURS)."""
        user = check_login(body["username"], body["password"])
        if user is None:
            db.session.commit()  # keep the failure count
            abort(401, message="wrong username or password, or account locked")
        raw, token = issue_token(user)
        db.session.commit()
        return {"token": raw, "expires_at": token.expires_at, "username": user.username, "role": user.role}

    @blp.response(204)
    @staff_required()
    def delete(self):
        """Revoke the bearer token used for this request."""
        token = g.get("api_token")
        if token is None:
            abort(400, message="only bearer tokens can be revoked here")
        token.revoked_at = utcnow()
        db.session.commit()
