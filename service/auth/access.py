"""Authentication of devices and staff, per-device rate limits, and department scopes.

Device keys (``hcpd_…``) and staff tokens (``hcpt_…``) live in different tables, so a
device key is never accepted where staff are expected, or the other way round.
"""
from __future__ import annotations

import functools
import logging
import math
import secrets
import time
from copy import deepcopy
from datetime import timedelta
from typing import NamedTuple

from flask import current_app, g, request
from flask_login import current_user
from flask_smorest import abort
from sqlalchemy import bindparam, select, update

from models import ApiToken, Department, Device, User
from models.types import utcnow
from service.auth import ratelimit
from service.devices import health
from service.extensions import db
from service.pooling import intake_engine
from service.privacy import key_digest

log = logging.getLogger(__name__)

DEVICE_PREFIX = "hcpd_"
TOKEN_PREFIX = "hcpt_"
# A web session's secret, kept in the signed session cookie: a row of api_tokens like a
# bearer token (so it expires, is revoked on sign-out and on disable), but never taken as
# a bearer token, which must start with TOKEN_PREFIX.
SESSION_PREFIX = "hcps_"


def new_device_key() -> str:
    return DEVICE_PREFIX + secrets.token_urlsafe(32)


def issue_token(user: User, prefix: str = TOKEN_PREFIX) -> tuple[str, ApiToken]:
    """A new bearer token (or, with SESSION_PREFIX, web session) for ``user``, living
    HCP_TOKEN_HOURS; the caller commits. Only its hash is stored."""
    raw = prefix + secrets.token_urlsafe(32)
    hours = current_app.config["HCP_SETTINGS"].token_hours
    token = ApiToken(user_id=user.id, token_hash=key_digest(raw), expires_at=utcnow() + timedelta(hours=hours))
    db.session.add(token)
    return raw, token


def live_token(raw: str) -> ApiToken | None:
    """The stored token of ``raw`` if it is neither expired nor revoked and its user is active."""
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == key_digest(raw)))
    if token is None or token.revoked_at is not None or token.expires_at <= utcnow() or not token.user.active:
        return None
    return token


def revoke_tokens(user: User) -> None:
    """End every bearer token and web session of ``user`` (a disabled account); the caller commits."""
    db.session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                       .values(revoked_at=utcnow()))


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _unauthorized(message: str):
    abort(401, message=message, headers={"WWW-Authenticate": "Bearer"})


def spend(device, ratings: int = 1) -> None:
    """Count ``ratings`` against the device's limit; 429 with Retry-After over it.

    Limits count ratings, not requests: a batch of N spends N, and a refused batch is
    refused whole. If the limit store is unreachable the ratings are still taken (fail
    open, see ratelimit.hit): losing a rating costs more than briefly not limiting a device.
    """
    settings = current_app.config["HCP_SETTINGS"]
    item = ratelimit.limit(device.rate_limit or settings.device_rate_limit)
    reset_at = ratelimit.hit(item, ratings, settings.instance, "device", str(device.id))
    if reset_at is None:
        return
    retry = max(1, math.ceil(reset_at - time.time()))
    abort(429, message=f"rate limit {item} (ratings) exceeded for this device",
          headers={"Retry-After": str(retry)})


class DeviceRef(NamedTuple):
    """What the intake needs of a device, read without the ORM and kept a few seconds."""

    id: int
    department_id: int
    channel: str
    window: str | None
    rate_limit: str | None
    active: bool


_D = Device.__table__.c
# Built once: SQLAlchemy finds a reused statement in its compiled cache without rebuilding it.
_DEVICE_BY_KEY = select(_D.id, _D.department_id, _D.channel, _D.window, _D.rate_limit, _D.active).where(
    _D.key_hash == bindparam("key_hash"))


def _lookup_device(key_hash: str) -> DeviceRef | None:
    """The device of a key hash, from this process's cache or the database.

    A kiosk posts many ratings with one key, so its device row is kept for
    ``HCP_DEVICE_CACHE_SECONDS`` (default 10): a device disabled in the database is
    refused by every web process within that time. Unknown keys are never cached.
    """
    cache = current_app.extensions.setdefault("hcp_device_cache", {})
    now = time.monotonic()
    hit = cache.get(key_hash)
    if hit is not None and hit[0] > now:
        return hit[1]
    with intake_engine().connect() as conn:
        row = conn.execute(_DEVICE_BY_KEY, {"key_hash": key_hash}).first()
    if row is None:
        cache.pop(key_hash, None)
        return None
    device = DeviceRef(*row)
    ttl = current_app.config["HCP_SETTINGS"].device_cache_seconds
    if ttl > 0:
        cache[key_hash] = (now + ttl, device)
    return device


def current_device(spent: int | None = 1) -> DeviceRef:
    """The active device whose key is the bearer token; 401 otherwise. ``spent`` ratings
    are counted against its limit (429 over it); None counts nothing (the view will)."""
    raw = _bearer()
    if not raw or not raw.startswith(DEVICE_PREFIX):
        _unauthorized("a device key is required")
    digest = key_digest(raw)
    device = _lookup_device(digest)
    if device is None or not device.active:
        _unauthorized("unknown or disabled device key")
    if spent:
        spend(device, spent)
    health.touch(device.id, digest)  # last seen: the console's and the digest's silent check
    g.device = device
    return device


_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
# The bearer schemes the OpenAPI document names (config/settings.py declares them).
DEVICE_SCHEME, STAFF_SCHEME = "deviceKey", "staffToken"


def _document(wrapper, scheme: str, responses: dict) -> None:
    """Tell the OpenAPI document who may call the view and what a refusal looks like.

    flask-smorest merges ``_apidoc["manual_doc"]`` into the operation, whichever order
    the decorators were stacked in; the copy keeps the wrapped view's doc untouched.
    """
    doc = deepcopy(getattr(wrapper, "_apidoc", {}))
    manual = doc.setdefault("manual_doc", {})
    manual["security"] = [{scheme: []}]
    manual.setdefault("responses", {}).update(
        {str(code): {"description": text, "content": _ERROR} for code, text in responses.items()})
    wrapper._apidoc = doc


def device_required(view=None, *, counted: bool = True):
    """The view runs for a device only; ``g.device`` is set. The request spends one rating
    of the device's limit, or, with ``counted=False``, none: the view calls ``spend`` once
    it knows how many ratings the body holds."""
    if view is None:
        return functools.partial(device_required, counted=counted)

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        current_device(1 if counted else None)
        return view(*args, **kwargs)
    _document(wrapper, DEVICE_SCHEME, {401: "no, unknown or disabled device key",
                                       429: "over this device's rate limit (counted in ratings); see Retry-After"})
    return wrapper


# Methods that change something; a cookie-signed API call with one needs the CSRF header.
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def _page_csrf_token_sent() -> bool:
    """Whether the request carries the CSRF token of a page hcp served (X-CSRFToken)."""
    from flask_wtf.csrf import ValidationError, validate_csrf

    for header in current_app.config.get("WTF_CSRF_HEADERS", ["X-CSRFToken", "X-CSRF-Token"]):
        value = request.headers.get(header)
        if value:
            try:
                validate_csrf(value)
                return True
            except ValidationError:
                return False
    return False


def current_staff() -> User | None:
    """The staff user of the bearer token or, failing that, of the web session.

    A browser sends the session cookie with whatever request a page makes, so a
    cookie-signed request that changes something must also carry the CSRF token of a page
    hcp served (the dashboard's fetches do); a bearer token needs none.
    """
    raw = _bearer()
    if raw is not None:
        if not raw.startswith(TOKEN_PREFIX):
            return None
        token = live_token(raw)
        if token is None:
            return None
        g.api_token = token
        return token.user
    if current_user and current_user.is_authenticated:
        if request.method in UNSAFE_METHODS and not _page_csrf_token_sent():
            return None
        return current_user._get_current_object()
    return None


def caller_required(find, kind_of, kinds: tuple[str, ...], g_name: str, scheme: str, *, missing: str,
                    refused: str, documented: str, only: str):
    """A view decorator: ``find()`` names the caller (None: 401 ``missing``); a caller whose
    ``kind_of(caller)`` is not among ``kinds`` (any when empty) is 403 (``refused`` with
    ``{kind}``); the caller is set as ``g.<g_name>`` and both refusals are documented
    (``documented``; ``only`` with ``{kinds}``) under the OpenAPI ``scheme``."""
    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            caller = find()
            if caller is None:
                _unauthorized(missing)
            if kinds and kind_of(caller) not in kinds:
                abort(403, message=refused.format(kind=kind_of(caller)))
            setattr(g, g_name, caller)
            return view(*args, **kwargs)
        refusals = {401: documented}
        if kinds:
            refusals[403] = only.format(kinds=", ".join(kinds))
        _document(wrapper, scheme, refusals)
        return wrapper
    return decorate


def staff_required(*roles: str):
    """The view runs for staff of one of ``roles`` (any role when none given); ``g.user`` is set."""
    return caller_required(
        current_staff, lambda user: user.role, roles, "user", STAFF_SCHEME,
        missing="a valid staff token is required (a web session also needs its page's X-CSRFToken header "
                "to change anything)",
        refused="role {kind} may not do this", documented="no valid staff token (or web session)",
        only="only {kinds} may do this")


def scope_filter(user: User, department_column):
    """A SQL condition: ``department_column`` lies in the user's department subtree.

    Admins see everything; everyone else sees their own department and all under it.
    """
    if user.role == "admin":
        return True
    subtree = select(Department.id).where(Department.path.startswith(user.department.path))
    return department_column.in_(subtree)


def in_scope(user: User, department: Department) -> bool:
    return user.role == "admin" or department.path.startswith(user.department.path)
