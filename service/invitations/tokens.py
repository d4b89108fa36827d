"""Invitation tokens: unguessable, never stored, yet rebuildable by the server.

A token is 24 url-safe characters (144 bits) of HMAC-SHA256 over a random per-invitation
nonce, keyed with a key derived from HCP_SECRET_KEY. The database keeps the nonce and the
token's SHA-256: someone holding a copy of the database can neither open a link nor
rebuild one, while hcp can show the link again (``GET …/invitation``, the receipt's QR).
Changing HCP_SECRET_KEY invalidates every link not yet used.
"""
from __future__ import annotations

import base64
import functools
import hmac
import secrets

from flask import current_app

from service.privacy import key_digest

TOKEN_CHARS = 24  # × 6 bits = 144 bits ≥ 128


def new_nonce() -> str:
    return secrets.token_hex(16)


def token_for(nonce: str) -> str:
    mac = hmac.digest(_token_key(current_app.config["SECRET_KEY"]), nonce.encode(), "sha256")
    return base64.urlsafe_b64encode(mac).decode()[:TOKEN_CHARS]


@functools.lru_cache(maxsize=8)
def _token_key(secret_key: str) -> bytes:
    """The tokens' key, derived once per secret key (not per token)."""
    return hmac.digest(secret_key.encode(), b"hcp invitation v1", "sha256")


def token_hash(token: str) -> str:
    return key_digest(token)


def link(token: str, via: str | None = None) -> str:
    base = current_app.config["HCP_SETTINGS"].public_url
    return f"{base}/r/{token}" + (f"?via={via}" if via else "")
