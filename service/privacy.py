"""Rater data at rest: Fernet encryption (with key rotation) and masking for display."""
from __future__ import annotations

import functools
import hashlib
import hmac
import json

from cryptography.fernet import Fernet, MultiFernet
from flask import current_app


def fernet() -> MultiFernet:
    """All configured data keys; the first encrypts, any of them decrypts."""
    return _fernet(tuple(current_app.config["HCP_SETTINGS"].data_keys))


@functools.lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])  # made once per set of keys, not per value


def encrypt(value: str | None) -> str | None:
    if not value:
        return None
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str | None) -> str | None:
    if not token:
        return None
    return fernet().decrypt(token.encode()).decode()


def mask_phone(phone: str | None) -> str | None:
    """138******78: at least half the digits hidden, whatever the length (SPEC §11).

    Of the visible half (rounded down) the larger part is the start (the carrier or area
    prefix), the rest the last digits; a leading ``+`` stays.
    """
    if not phone:
        return None
    plus, digits = ("+", phone[1:]) if phone.startswith("+") else ("", phone)
    visible = len(digits) // 2
    head, tail = (visible + 1) // 2, visible // 2
    return plus + digits[:head] + "*" * (len(digits) - head - tail) + (digits[len(digits) - tail:] if tail else "")


def mask_name(name: str | None) -> str | None:
    """张*, 欧阳** — the family name's first character only."""
    if not name:
        return None
    return name[:1] + "*" * max(1, len(name) - 1)


def body_digest(body: dict) -> str:
    """A keyed hash of a request body, so a replay can be told from a conflict.

    Keyed with the secret key because the body may hold a phone number, whose plain
    hash could be reversed by trying every number.
    """
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def normalise_phone(phone: str | None) -> str | None:
    """A phone number as its ASCII digits only (``138-1234 5678`` → ``13812345678``); None if none."""
    if not phone:
        return None
    digits = "".join(ch for ch in phone if "0" <= ch <= "9")
    return digits or None


def blind_index(phone: str | None) -> str | None:
    """A keyed hash of a phone number, stored beside its ciphertext for exact lookup.

    Finding a case or an application by the rater's full phone must not decrypt rows, and a
    plain hash of an 11-digit number is reversed by trying them all, so the hash is keyed
    (HMAC-SHA256 under a key derived from the secret key). Changing HCP_SECRET_KEY means
    recomputing the stored indexes.
    """
    digits = normalise_phone(phone)
    if digits is None:
        return None
    return hmac.digest(_index_key(current_app.config["SECRET_KEY"]), digits.encode(), "sha256").hex()


@functools.lru_cache(maxsize=8)
def _index_key(secret_key: str) -> bytes:
    """The blind index's key, derived once per secret key (not per phone)."""
    return hmac.digest(secret_key.encode(), b"hcp blind index v1", "sha256")


def key_digest(key: str) -> str:
    """How device keys and staff tokens are stored: SHA-256 of a 256-bit random secret."""
    return hashlib.sha256(key.encode()).hexdigest()


# Every column of ratings holding a Fernet token under HCP_DATA_KEY; ``hcp keys
# rotate-data`` walks them (and the departments' webhook secrets, rotate_department_secrets).
ENCRYPTED_COLUMNS = ("rater_name_enc", "rater_phone_enc")
# The same for the application register's applicant (models/projects.py).
PROJECT_ENCRYPTED_COLUMNS = ("applicant_name_enc", "applicant_phone_enc")


class RotationError(Exception):
    """A stored token that none of the configured data keys can decrypt."""


def _rotated(keys: MultiFernet, token: str, what: str) -> str:
    """``token`` re-encrypted under the first data key; RotationError naming ``what`` if no key opens it."""
    from cryptography.fernet import InvalidToken

    try:
        return keys.rotate(token.encode()).decode()
    except InvalidToken as err:
        raise RotationError(f"{what} opens with none of the HCP_DATA_KEY keys") from err


def rotate_batch(session, after_id: int, size: int, model=None,
                 names: tuple[str, ...] = ENCRYPTED_COLUMNS, what: str = "rating") -> tuple[int | None, int]:
    """Re-encrypt the rater fields of up to ``size`` ratings with id > ``after_id`` under
    the first data key (MultiFernet.rotate: decrypt with any key, encrypt with the first).
    ``model``, ``names`` and ``what`` choose another table (Project, PROJECT_ENCRYPTED_COLUMNS, "project").

    Returns (the last rating id seen, or None when there are none left; fields rewritten).
    The caller commits — one transaction per batch. Raises RotationError naming the rating
    whose token no configured key opens (add the missing key back, then run again).
    """
    from sqlalchemy import or_, select, update

    from models import Rating

    model = model or Rating
    columns = [getattr(model, name) for name in names]
    rows = session.execute(
        select(model.id, *columns)
        .where(model.id > after_id, or_(*[c.is_not(None) for c in columns]))
        .order_by(model.id).limit(size)).all()
    if not rows:
        return None, 0
    keys = fernet()
    rewritten = 0
    for row in rows:
        values = {}
        for name in names:
            token = getattr(row, name)
            if token:
                values[name] = _rotated(keys, token, f"{what} {row.id}: {name}")
        session.execute(update(model).where(model.id == row.id).values(**values))
        rewritten += len(values)
    return rows[-1].id, rewritten


def rotate_department_secrets(session) -> int:
    """Re-encrypt every department's webhook signing secret under the first data key.

    A few rows at most, so one pass; the caller commits. Returns how many were rewritten.
    """
    from sqlalchemy import select

    from models import Department

    keys = fernet()
    depts = session.scalars(select(Department).where(Department.notify_webhook_secret_enc.is_not(None))).all()
    for dept in depts:
        dept.notify_webhook_secret_enc = _rotated(keys, dept.notify_webhook_secret_enc,
                                                  f"department {dept.code}: its webhook secret")
    return len(depts)
