"""Integration clients' keys (``hcpc_…``): the approval system, the provincial platform, 12345.

A client key is looked up in its own table, so it is refused where a device or staff
member is expected (their keys have other prefixes and tables), and a device key or staff
token is refused here.
"""
from __future__ import annotations

import functools
import logging
import secrets
import time
from typing import NamedTuple

from flask import current_app, g
from sqlalchemy import bindparam, select

from models import Department, IntegrationClient
from service.auth.access import _bearer, _document, _unauthorized, caller_required
from service.pooling import intake_engine
from service.privacy import key_digest
from service.shared_redis import shared

log = logging.getLogger(__name__)

CLIENT_PREFIX = "hcpc_"
CLIENT_SCHEME = "clientKey"
CACHE_SECONDS = 60.0  # the longest a process keeps a client row, whatever the version says
VERSION = "clients:version"  # the shared value every change of a client replaces
# How long a process uses the version it read before it reads it again (requests meanwhile
# share that one GET); ``changed()`` returns only after it, so the next request anywhere
# sees the new version.
VERSION_TICK = 0.2


def new_client_key() -> str:
    return CLIENT_PREFIX + secrets.token_urlsafe(32)


class ClientDepartment(NamedTuple):
    id: int
    code: str
    path: str


class ClientRef(NamedTuple):
    """What the views need of the calling client, read without the ORM (as ``IntegrationClient``
    spells it: ``client.department.path`` works on either)."""

    id: int
    name: str
    kind: str
    department_id: int
    active: bool
    department: ClientDepartment


_C, _D = IntegrationClient.__table__.c, Department.__table__.c
# Built once (SQLAlchemy's compiled cache): the client and its department in one round trip.
_CLIENT_BY_KEY = (select(_C.id, _C.name, _C.kind, _C.department_id, _C.active, _D.code, _D.path)
                  .join_from(IntegrationClient.__table__, Department.__table__, _D.id == _C.department_id)
                  .where(_C.key_hash == bindparam("key_hash")))


def current_client() -> ClientRef | None:
    """The active integration client whose key is the bearer token, else None.

    A disabled client is refused at once by every web process: the client row is kept in
    this process only beside the clients' version it was read under (a random value in the
    shared Redis, replaced by ``changed()`` after every change of a client), and only
    while that is still the version, for at most CACHE_SECONDS. The version is one Redis
    GET a process makes at most every VERSION_TICK seconds, and ``changed()`` returns only
    once that has passed. Without Redis every request reads the row: one round trip in
    autocommit, no ORM. Unknown keys are never kept.
    """
    raw = _bearer()
    if not raw or not raw.startswith(CLIENT_PREFIX):
        return None
    row = _client_row(key_digest(raw))
    if row is None or not row.active:
        return None
    return row


def _client_row(key_hash: str) -> ClientRef | None:
    version = _version()
    cache = current_app.extensions.setdefault("hcp_client_cache", {})
    now = time.monotonic()
    hit = cache.get(key_hash)
    if version is not None and hit is not None and hit[0] == version and hit[1] > now:
        return hit[2]
    with intake_engine().connect() as conn:
        row = conn.execute(_CLIENT_BY_KEY, {"key_hash": key_hash}).first()
    if row is None:
        cache.pop(key_hash, None)
        return None
    client = ClientRef(row.id, row.name, row.kind, row.department_id, row.active,
                       ClientDepartment(row.department_id, row.code, row.path))
    if version is not None:  # read before the row: a change meanwhile has replaced it, so this entry is stale at once
        cache[key_hash] = (version, now + CACHE_SECONDS, client)
    return client


def _version() -> bytes | None:
    """The clients' version in the shared Redis (one made up if there is none yet), as this
    process read it less than VERSION_TICK seconds ago; None without Redis."""
    asked = time.monotonic()  # before the GET: a version read across a change expires first
    held = current_app.extensions.get(_HELD_VERSION)
    if held is not None and asked - held[0] < VERSION_TICK:
        return held[1]
    store = shared()
    key = store.key(VERSION)

    def read(redis):
        found = redis.get(key)
        if found is None:
            redis.set(key, secrets.token_bytes(16), nx=True)
            found = redis.get(key)
        return found
    version = store.call(read)
    if version is not None:
        current_app.extensions[_HELD_VERSION] = (asked, version)
    return version


_HELD_VERSION = "hcp_client_version"


def changed() -> None:
    """After a commit that changed a client (added, disabled, enabled): every process reads
    its row again. A new random version, never an old one again (a counter would repeat
    after Redis lost it); returns VERSION_TICK later, when no process uses the old one any
    more. Without Redis there is nothing to tell; while it fails, processes keep rows they
    have for at most CACHE_SECONDS (a warning says so)."""
    store = shared()
    if store.redis is None:
        return
    if store.call(lambda r: r.set(store.key(VERSION), secrets.token_bytes(16)) or True) is None:
        log.warning("clients' version not replaced (shared Redis unreachable): web processes may accept "
                    "the client's old state for up to %.0f s", CACHE_SECONDS)
        return
    time.sleep(VERSION_TICK)


def client_required(*kinds: str):
    """The view runs for an integration client of one of ``kinds`` (any when none); ``g.client`` is set."""
    return caller_required(
        current_client, lambda client: client.kind, kinds, "client", CLIENT_SCHEME,
        missing="an integration client key is required", refused="a {kind} client may not do this",
        documented="no, unknown or disabled client key", only="only {kinds} clients may do this")


def any_key_required(view):
    """The view runs for a device, an integration client or staff (open reference data)."""
    from service.auth.access import DEVICE_PREFIX, current_device, current_staff

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        raw = _bearer()
        if raw and raw.startswith(DEVICE_PREFIX):
            current_device(spent=None)  # 401 on its own; reading reference data spends no rating
        elif raw and raw.startswith(CLIENT_PREFIX):
            g.client = current_client()
            if g.client is None:
                _unauthorized("unknown or disabled client key")
        else:
            g.user = current_staff()
            if g.user is None:
                _unauthorized("a device key, client key or staff token is required")
        return view(*args, **kwargs)
    _document(wrapper, CLIENT_SCHEME, {401: "no valid device key, client key or staff token"})
    wrapper._apidoc["manual_doc"]["security"] = [{"deviceKey": []}, {CLIENT_SCHEME: []}, {"staffToken": []}]
    return wrapper


def client_or_staff(kind: str):
    """The view runs for a client of ``kind`` (``g.client``) or for staff (``g.user``)."""
    from service.auth.access import current_staff

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            client = current_client()
            if client is not None and client.kind == kind:
                g.client = client
            else:
                g.user = None if client is not None else current_staff()
                if g.user is None:
                    _unauthorized(f"a {kind} client key or a staff token is required")
            return view(*args, **kwargs)
        _document(wrapper, CLIENT_SCHEME, {401: f"no valid {kind} client key or staff token"})
        wrapper._apidoc["manual_doc"]["security"] = [{CLIENT_SCHEME: []}, {"staffToken": []}]
        return wrapper
    return decorate
