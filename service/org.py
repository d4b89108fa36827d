"""Building and changing the organisation: departments, service items, devices and staff users.

The one way rows of the org are made, called by the ``hcp`` admin commands, ``hcp demo``,
scripts/, bench/ and the tests. Each adds to ``db.session`` and leaves the commit to the caller.
"""
from __future__ import annotations

import re
import secrets

from sqlalchemy import func, literal, select, update
from werkzeug.security import generate_password_hash

from models import Department, Device, ServiceItem, User
from service.auth.access import new_device_key
from service.extensions import db
from service.notify import PREFIX, addresses, post_robot, redact_url
from service.privacy import encrypt, key_digest


def add_department(code: str, name: str, parent: Department | None) -> Department:
    """A new department under ``parent`` with its materialised path; the caller commits."""
    dept = Department(code=code, name=name, parent=parent, path="")
    db.session.add(dept)
    db.session.flush()
    dept.path = (parent.path if parent else "/") + f"{dept.id}/"
    return dept


def add_item(code: str, name: str, dept: Department) -> ServiceItem:
    """A service item (办理事项) owned by ``dept``."""
    item = ServiceItem(code=code, name=name, department=dept)
    db.session.add(item)
    return item


def add_user(username: str, password: str, role: str, dept: Department, display_name: str | None = None,
             email: str | None = None) -> User:
    """A staff user; only the password's hash is kept."""
    user = User(username=username, password_hash=generate_password_hash(password), role=role,
                department=dept, display_name=display_name, email=email)
    db.session.add(user)
    return user


def add_device(name: str, dept: Department, channel: str, window: str | None,
               rate_limit: str | None) -> tuple[Device, str]:
    """A device and its key — returned this once; only the key's digest is kept.

    Channel ``default`` is hcp's own (default ratings, SPEC §7): no device is given it, so
    the figures can count default ratings by channel. A ``qrcode`` device gets a hall QR
    code of its own (``/q/{qr_code}``, SPEC §7).
    """
    if channel == "default":
        raise ValueError("channel default is reserved for default ratings")
    key = new_device_key()
    device = Device(name=name, department=dept, channel=channel, window=window,
                    rate_limit=rate_limit, key_hash=key_digest(key),
                    qr_code=new_qr_code() if channel == "qrcode" else None)
    db.session.add(device)
    return device, key


# No 0/o, 1/l/i: a code may be typed from the print. 31^8 ≈ 2^40 codes; unknown codes are
# rate-limited like invitation tokens (service/citizen/pages.py).
QR_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"


def new_qr_code() -> str:
    """A short public code for a hall QR (8 characters); unique by the column's index."""
    return "".join(secrets.choice(QR_ALPHABET) for _ in range(8))


# 统一社会信用代码 (GB 32100-2015): 18 characters of this alphabet, the last a check character.
_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code_problem(code: str) -> str | None:
    """Why ``code`` is not a unified social credit code, or None if it is one."""
    if len(code) != 18 or any(ch not in _CREDIT_ALPHABET for ch in code):
        return "a unified social credit code is 18 digits and capital letters (no I, O, S, V, Z)"
    total = sum(_CREDIT_ALPHABET.index(ch) * w for ch, w in zip(code, _CREDIT_WEIGHTS))
    if _CREDIT_ALPHABET[(31 - total % 31) % 31] != code[17]:
        return "the check character (the 18th) does not match: a mistyped credit code"
    return None


def set_credit_code(dept: Department, code: str | None) -> None:
    """Set (None: clear) the department's credit code, the deptCode of its 上报 records; ValueError if malformed."""
    if code:
        problem = credit_code_problem(code)
        if problem:
            raise ValueError(problem)
    dept.credit_code = code or None


# -- changing the organisation (the admin console and ``hcp departments …``) -----------

class OrgError(ValueError):
    """A refused change, typed: ``reason`` is taken | cycle | invalid, ``field`` what it concerns."""

    def __init__(self, field: str, reason: str, detail: str = ""):
        super().__init__(f"{field}: {reason} {detail}".strip())
        self.field, self.reason, self.detail = field, reason, detail


EMAIL_RE = re.compile(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+")
URL_RE = re.compile(r"https?://[^\s/]+\S*")


def check_code_free(model, code: str, field: str = "code") -> None:
    """Refuse a department or item code already in use (codes are what ratings and the CLI name)."""
    if db.session.scalar(select(model.id).where(model.code == code)) is not None:
        raise OrgError(field, "taken", code)


def rename_department(dept: Department, name: str) -> None:
    dept.name = name


def move_department(session, dept: Department, parent: Department | None) -> int:
    """Put ``dept`` under ``parent`` (None: a root). The materialised paths of the
    department and of everything below it follow in one UPDATE, so every subtree query —
    scopes and figures, which count per department id — is exact right after. Returns the
    number of departments whose path changed; refuses a move under its own subtree."""
    if parent is not None and parent.path.startswith(dept.path):
        raise OrgError("parent", "cycle")
    old = dept.path
    new = (parent.path if parent else "/") + f"{dept.id}/"
    dept.parent = parent
    if new == old:
        return 0
    session.flush()
    result = session.execute(
        update(Department).where(Department.path.startswith(old))
        .values(path=literal(new) + func.substr(Department.path, len(old) + 1))
        .execution_options(synchronize_session=False))
    session.expire_all()
    return result.rowcount


def emails(value: str) -> str:
    """Comma-separated addresses, checked; '' stays '' (clearing the setting)."""
    found = addresses(value)
    bad = [a for a in found if not EMAIL_RE.fullmatch(a)]
    if value and (bad or not found):
        raise OrgError("email", "invalid", ", ".join(bad) or value)
    return ",".join(found)


def set_notify(dept: Department, webhook: str | None = None, secret: str | None = None,
               email: str | None = None) -> None:
    """Where the department's cards and digests go; None leaves a setting, '' clears it.
    The 加签 secret is kept encrypted (it must be usable to sign)."""
    if webhook is not None:
        if webhook and not URL_RE.fullmatch(webhook):
            raise OrgError("webhook", "invalid", webhook)
        dept.notify_webhook = webhook or None
    if secret is not None:
        dept.notify_webhook_secret_enc = encrypt(secret) if secret else None
    if email is not None:
        dept.notify_email = emails(email) or None


def notify_snapshot(dept: Department) -> dict:
    """The notification settings as the 操作日志 keeps them: the webhook without its key, no secret."""
    return {"webhook": redact_url(dept.notify_webhook) if dept.notify_webhook else None,
            "加签": bool(dept.notify_webhook_secret_enc), "email": dept.notify_email}


def send_test_message(dept: Department, timeout: float) -> dict | None:
    """Post a test message to the department's robot now and return its answer
    (``notify.SendError`` when it refused or was unreachable)."""
    if not dept.notify_webhook:
        raise OrgError("webhook", "missing")
    return post_robot(dept, f"{PREFIX}测试消息：{dept.name}的好差评提醒将发送到本群。", timeout)
