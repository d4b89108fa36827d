"""``/insights``: 热点分析 — a server-rendered shell whose charts read the hot spots API.

Like the dashboard, the page carries only the pickers (period, department in the viewer's
scope); the terms and anomalies come from ``/api/v1/insights/hotspots`` and the daily trend
from ``/api/v1/stats/breakdown?by=day`` with the web session.
"""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from models.clock import local_date
from models.types import utcnow
from service.web.dashboard import viewer_pickers

blp = Blueprint("insights_page", __name__)


@blp.get("/insights")
@login_required
def insights():
    user, departments, default_department = viewer_pickers()
    today = local_date(utcnow())
    return render_template("insights.html", user=user, departments=departments, date_from=today.replace(day=1),
                           date_to=today, default_department=default_department)
