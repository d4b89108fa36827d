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
    """A device and its key — returned this once; only the key's digest is kept."""
    key = new_device_key()
    device = Device(name=name, department=dept, channel=channel, window=window,
                    rate_limit=rate_limit, key_hash=key_digest(key))
    db.session.add(device)
    return device, key
