"""``/api/v1/auth``: staff sign in for a bearer token, and revoke it."""
from __future__ import annotations

import functools

from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from models import User
from models.types import utcnow
from service.auth import ratelimit
from service.auth.access import issue_token, staff_required
from service.edge import Blueprint, Text
from service.extensions import db

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Staff tokens")

# Sign-in throttling (docs/security.md). Wrong passwords are counted per (username, client
# address): five within the window hold that pair only, so nobody can lock a user out
# from elsewhere. A global cap per username, over all addresses, stops a guesser who
# spreads over many; reaching it takes ACCOUNT_CAP failures within the window.
MAX_FAILURES = 5
ACCOUNT_CAP = 100
WINDOW_MINUTES = 15
_PAIR = f"{MAX_FAILURES} per {WINDOW_MINUTES} minutes"
_ACCOUNT = f"{ACCOUNT_CAP} per {WINDOW_MINUTES} minutes"


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


def check_login(username: str, password: str, address: str | None) -> User | None:
    """The user if the password is right and sign-in from ``address`` is not throttled.

    Every answer costs one user lookup and one password hash — for an unknown or disabled
    user, a throttled one and a real one alike — so its time tells nothing. Failures are
    counted per (username, address) and per username (the global cap); a good sign-in
    forgets its address's failures.
    """
    user = db.session.scalar(select(User).where(User.username == username))
    known = user is not None and user.active
    right = check_password_hash(user.password_hash if known else _dummy_hash(), password)
    settings = current_app.config["HCP_SETTINGS"]
    pair = (settings.instance, "login", username, address or "-")
    account = (settings.instance, "login", username)
    pair_limit, account_limit = ratelimit.limit(_PAIR), ratelimit.limit(_ACCOUNT)
    if not (ratelimit.within(pair_limit, *pair) and ratelimit.within(account_limit, *account)):
        return None
    if right and known:
        ratelimit.clear(pair_limit, *pair)
        return user
    # Counted in the store's atomic increments: parallel guesses each count.
    ratelimit.hit(pair_limit, 1, *pair)
    ratelimit.hit(account_limit, 1, *account)
    return None


@blp.route("/token")
class Token(MethodView):
    @blp.arguments(TokenRequest)
    @blp.response(201, TokenResponse)
    @blp.alt_response(401, description="wrong username or password, or account locked")
    def post(self, body):
        """Sign in: a bearer token for the staff API (expires after HCP_TOKEN_HOURS)."""
        user = check_login(body["username"], body["password"], request.remote_addr)
        if user is None:
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


def is_locked(username: str) -> bool:
    """Whether the user's sign-in is held from every address (the global cap of failures
    reached within the window). Five failures from one address hold that address only,
    and only for the window; they are not a lock an admin needs to lift."""
    settings = current_app.config["HCP_SETTINGS"]
    return not ratelimit.within(ratelimit.limit(_ACCOUNT), settings.instance, "login", username)


def unlock(username: str) -> None:
    """Forget the user's counted failures (the global cap), so they may sign in again now."""
    settings = current_app.config["HCP_SETTINGS"]
    ratelimit.clear(ratelimit.limit(_ACCOUNT), settings.instance, "login", username)
