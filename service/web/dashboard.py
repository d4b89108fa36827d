"""``/dashboard``: the managers' page — a server-rendered shell whose charts read the stats API.

The page itself carries only the pickers (period, departments in the viewer's scope);
the figures come from ``/api/v1/stats`` and ``/api/v1/cases`` with the web session, so
the page and the API can never disagree.
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required
from sqlalchemy import select

from models import Department
from models.types import utcnow
from models.clock import local_date
from service.extensions import db
from service.stats.api import VIEWERS

blp = Blueprint("dashboard", __name__)


@blp.get("/dashboard")
@login_required
def dashboard():
    user = current_user._get_current_object()
    if user.role not in VIEWERS:
        abort(403)
    stmt = select(Department).order_by(Department.path)
    if user.role != "admin":
        stmt = stmt.where(Department.path.startswith(user.department.path))
    departments = [(d, d.path.count("/") - 2) for d in db.session.scalars(stmt)]
    today = local_date(utcnow())
    return render_template("dashboard.html", user=user, departments=departments,
                           date_from=date(today.year, 1, 1), date_to=today,
                           default_department=None if user.role == "admin" else user.department.code)
