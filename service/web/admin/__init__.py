"""``/admin``: the administrator's console (SPEC §12) — organisation, devices and their
health, staff, the working-day calendar, reason codes and the 操作日志.

Views are thin: each change calls the same domain function as the ``hcp`` command, then
``service.audit.record`` in the same transaction, and commits once. Only admins change
anything; managers read the devices and their health in their own subtree; everyone
else gets 403.
"""
from __future__ import annotations

import functools

from flask import Blueprint, abort, flash, redirect, url_for
from flask_login import current_user, login_required

from models import User
from service.audit import record
from service.extensions import db

blp = Blueprint("admin", __name__, url_prefix="/admin")

# The console's sections in the order of its sub-navigation: (endpoint, label, roles).
SECTIONS = [
    ("admin.org", "组织机构", ("admin",)),
    ("admin.devices", "设备", ("admin", "manager")),
    ("admin.staff_list", "人员", ("admin",)),
    ("admin.calendar", "工作日历", ("admin",)),
    ("admin.reasons", "评价原因", ("admin",)),
    ("admin.exchange", "数据上报", ("admin",)),
    ("admin.audit_log", "操作日志", ("admin",)),
]


def user() -> User:
    return current_user._get_current_object()


def roles(*allowed: str):
    """The view runs for signed-in staff of ``allowed`` roles; 403 for other staff."""
    def decorate(view):
        @functools.wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if current_user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorate


admin_only = roles("admin")


def logged(action: str, target: str, before: dict | None = None, after: dict | None = None) -> None:
    """The change goes into the 操作日志 in its own transaction, and both commit once."""
    record(db.session, user(), action, target, before, after)
    db.session.commit()


def saved(action: str, target: str, before: dict | None, after: dict | None, message: str, to: str):
    """``logged``, then the flash that says so and the redirect to ``to``."""
    logged(action, target, before, after)
    flash(message, "success")
    return redirect(to)


@blp.get("/")
@roles("admin", "manager")
def index():
    """The console starts at the first section the user may open."""
    first = next((e for e, _, allowed in SECTIONS if current_user.role in allowed), None)
    if first is None:
        abort(403)
    return redirect(url_for(first))


@blp.app_context_processor
def _sections():
    return {"ADMIN_SECTIONS": SECTIONS}


from service.web.admin import audit, calendar, devices, exchange, org, reasons, staff  # noqa: E402,F401  (views register on blp)
