"""``/api/v1/auth``: staff sign in for a bearer token, and revoke it."""
from __future__ import annotations

import functools
from datetime import timedelta

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from models import User
from models.types import utcnow
from service.auth.access import issue_token, staff_required
from service.edge import Text
from service.edge import Blueprint
from service.extensions import db

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Staff tokens")

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)


class TokenRequest(Schema):
    username = Text(required=True, validate=validate.Length(min=1, max=64))
    password = Text(required=True, load_only=True, validate=validate.Length(min=1, max=256))


class TokenResponse(Schema):
    token = fields.String()
    expires_at = fields.AwareDateTime()
    username = fields.String()
    role = fields.String()


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash("no such user")


def check_login(username: str, password: str) -> User | None:
    """The user if the password is right and the account is not locked; counts failures.

    After MAX_FAILURES wrong passwords the account is locked for LOCKOUT. The caller commits.
    """
    user = db.session.scalar(select(User).where(User.username == username))
    now = utcnow()
    if user is None or not user.active:
        # Hash anyway, so the answer takes as long as for a real account (no name probing).
        check_password_hash(_dummy_hash(), password)
        return None
    if user.locked_until and user.locked_until > now:
        return None
    if not check_password_hash(user.password_hash, password):
        # Counted in one UPDATE: parallel guesses must not each read the same count and
        # write back the same +1, which would let a script guess past the limit.
        failures = db.session.scalar(
            update(User).where(User.id == user.id)
            .values(failed_logins=func.coalesce(User.failed_logins, 0) + 1)
            .returning(User.failed_logins)
            .execution_options(synchronize_session=False))
        if failures >= MAX_FAILURES:
            db.session.execute(
                update(User).where(User.id == user.id).values(locked_until=now + LOCKOUT, failed_logins=0)
                .execution_options(synchronize_session=False))
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
