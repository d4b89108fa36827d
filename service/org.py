"""Building the organisation: departments, service items, devices and staff users.

The one way rows of the org are made, called by the ``hcp`` admin commands, ``hcp demo``,
scripts/, bench/ and the tests. Each adds to ``db.session`` and leaves the commit to the caller.
"""
from __future__ import annotations

from werkzeug.security import generate_password_hash

from models import Department, Device, ServiceItem, User
from service.auth.access import new_device_key
from service.extensions import db
from service.privacy import key_digest


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
    the figures can count default ratings by channel.
    """
    if channel == "default":
        raise ValueError("channel default is reserved for default ratings")
    key = new_device_key()
    device = Device(name=name, department=dept, channel=channel, window=window,
                    rate_limit=rate_limit, key_hash=key_digest(key))
    db.session.add(device)
    return device, key


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
