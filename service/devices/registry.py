"""Changing a device: disable/enable, a new key, and the one-time pairing code a tablet
exchanges for its key. Called by ``hcp devices …``, the admin console and the pair API;
each adds to the session and leaves the commit to the caller.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import CHANNEL_LABELS, Device, PairCode
from models.types import utcnow
from service.auth.access import new_device_key
from service.privacy import key_digest

# No 0/O, 1/I/L: the code is read off one screen and typed on another.
PAIR_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PAIR_LENGTH = 6
PAIR_MINUTES = 10


class PairError(Exception):
    """A pairing code that is wrong, used, expired, or whose device is disabled."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # unknown | disabled


def snapshot(device: Device) -> dict:
    """The device's fields as the 操作日志 shows them (never its key)."""
    return {"名称": device.name, "部门": device.department.code if device.department else None,
            "渠道": CHANNEL_LABELS.get(device.channel, device.channel), "窗口": device.window,
            "启用": device.active, "限速": device.rate_limit}


def set_active(device: Device, active: bool) -> None:
    """Accept (True) or refuse (False) the device's key from now on; its ratings stay.
    Every web process follows within HCP_DEVICE_CACHE_SECONDS."""
    device.active = active


def rotate_key(device: Device) -> str:
    """A new key for the device, returned this once; the old key stops working."""
    key = new_device_key()
    device.key_hash = key_digest(key)
    return key


def normalise_code(raw: str) -> str:
    """What a person typed, as the code is stored: upper case, no spaces or dashes."""
    return "".join(ch for ch in raw.upper() if ch not in " -")


def issue_pair_code(session: Session, device: Device, issued_by: str) -> tuple[str, PairCode]:
    """A fresh 6-character code for ``device``, valid PAIR_MINUTES and once; any earlier
    unused code of the device ends now. Only the code's hash is stored."""
    now = utcnow()
    session.execute(update(PairCode).where(PairCode.device_id == device.id, PairCode.used_at.is_(None),
                                           PairCode.expires_at > now).values(expires_at=now))
    code = "".join(secrets.choice(PAIR_ALPHABET) for _ in range(PAIR_LENGTH))
    row = PairCode(device_id=device.id, code_hash=key_digest(code), issued_by=issued_by, created_at=now,
                   expires_at=now + timedelta(minutes=PAIR_MINUTES))
    session.add(row)
    return code, row


def redeem_pair_code(session: Session, raw: str) -> tuple[Device, str, PairCode]:
    """Use a pairing code: the device gets a new key, returned this once (the tablet keeps
    it; any earlier key of the device stops working). Raises PairError; the caller commits.

    The code is taken by one conditional UPDATE, so two tablets racing with one code
    cannot both get a key.
    """
    code = normalise_code(raw)
    if len(code) != PAIR_LENGTH or any(ch not in PAIR_ALPHABET for ch in code):
        raise PairError("unknown")
    now = utcnow()
    taken = session.execute(
        update(PairCode).where(PairCode.code_hash == key_digest(code), PairCode.used_at.is_(None),
                               PairCode.expires_at > now).values(used_at=now)
        .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        raise PairError("unknown")
    row = session.scalar(select(PairCode).where(PairCode.code_hash == key_digest(code)))
    device = row.device
    if not device.active:
        raise PairError("disabled")
    return device, rotate_key(device), row
