"""``/insights``: 热点分析 — a server-rendered shell whose charts read the hot spots API.

Like the dashboard, the page carries only the pickers (period, department in the viewer's
scope); the terms and anomalies come from ``/api/v1/insights/hotspots`` and the daily trend
from ``/api/v1/stats/breakdown?by=day`` with the web session.
"""
from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required
from sqlalchemy import select

from models import Department
from models.clock import local_date
from models.types import utcnow
from service.extensions import db
from service.stats.api import VIEWERS

blp = Blueprint("insights_page", __name__)


@blp.get("/insights")
@login_required
def insights():
    user = current_user._get_current_object()
    if user.role not in VIEWERS:
        abort(403)
    stmt = select(Department).order_by(Department.path)
    if user.role != "admin":
        stmt = stmt.where(Department.path.startswith(user.department.path))
    departments = [(d, d.path.count("/") - 2) for d in db.session.scalars(stmt)]
    today = local_date(utcnow())
    return render_template("insights.html", user=user, departments=departments,
                           date_from=today.replace(day=1), date_to=today,
                           default_department=None if user.role == "admin" else user.department.code)
