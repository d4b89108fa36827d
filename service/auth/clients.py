"""Integration clients' keys (``hcpc_…``): the approval system, the provincial platform, 12345.

A client key is looked up in its own table, so it is refused where a device or staff
member is expected (their keys have other prefixes and tables), and a device key or staff
token is refused here.
"""
from __future__ import annotations

import functools
import secrets

from flask import g
from sqlalchemy import select

from models import IntegrationClient
from service.auth.access import _bearer, _document, _unauthorized, caller_required
from service.extensions import db
from service.privacy import key_digest

CLIENT_PREFIX = "hcpc_"
CLIENT_SCHEME = "clientKey"


def new_client_key() -> str:
    return CLIENT_PREFIX + secrets.token_urlsafe(32)


def current_client() -> IntegrationClient | None:
    """The active integration client whose key is the bearer token, else None."""
    raw = _bearer()
    if not raw or not raw.startswith(CLIENT_PREFIX):
        return None
    client = db.session.scalar(select(IntegrationClient).where(IntegrationClient.key_hash == key_digest(raw)))
    return client if client is not None and client.active else None


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
