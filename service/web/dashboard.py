"""``/dashboard``: the managers' page — a server-rendered shell whose charts read the stats API.

The page itself carries only the pickers (period, department in the viewer's scope,
channel) and, beside each figure, its definition (SPEC §3) and the case list it drills
down to; the figures come from ``/api/v1/stats`` and ``/api/v1/cases`` with the web
session, so the page and the API can never disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from flask import Blueprint, abort, current_app, render_template
from flask_login import current_user, login_required
from sqlalchemy import select

from models import Department
from models.types import utcnow
from models.clock import local_date
from service.cases.deadlines import unit_label
from service.extensions import db
from service.stats.api import VIEWERS

blp = Blueprint("dashboard", __name__)


@dataclass(frozen=True)
class Kpi:
    """One figure of the summary: its label, how it is defined, the counts behind a rate
    (summary keys), and the case-list filters of the cases behind it."""

    key: str
    label: str
    definition: str
    drill: str  # query string added to the period, department and channel of the pickers
    parts: tuple[str, str] | None = None


KPIS = (
    Kpi("total", "评价总数", "评价时间在所选期间内的全部评价", "status=all"),
    Kpi("good_rate", "好评率", "好评（满意度3–5级）÷ 评价总数", "status=all", ("good", "total")),
    Kpi("good_rate_rated", "好评率（不含默认评价）", "群众主动作出的好评 ÷ 群众主动作出的评价（不计系统默认评价）",
        "status=all", ("rated_good", "rated_total")),
    Kpi("active_rating_rate", "主动评价率", "非默认评价 ÷ 评价总数", "status=all", ("rated_total", "total")),
    Kpi("rated_projects_rate", "办件评价率",
        "期间内到达评价环节、且有群众主动评价的办件 ÷ 期间内到达评价环节的办件（按部门、事项筛选）",
        "status=all", ("rated_projects", "projects")),
    Kpi("bad", "差评数", "满意度1–2级的评价；每条差评生成一件整改工单", "status=all"),
    Kpi("disposal_rate", "差评处置率", "已办结的差评工单 ÷ 差评数", "status=closed", ("closed", "bad")),
    Kpi("rectification_rate", "差评整改率", "整改后办结的工单 ÷（差评数 − 无效差评 − 解释说明办结）",
        "status=closed", ("closed_rectified", "rectifiable")),
    Kpi("callback_rate", "回访率", "核实或反馈时联系上评价人的工单 ÷ 实名差评数", "status=all",
        ("called_back", "real_name_bad")),
    Kpi("on_time_rate", "按期办结率", "在办结期限内办结的工单 ÷（已办结 + 已超期未办结）", "status=closed",
        ("closed_on_time", "on_time_base")),
    Kpi("feedback_satisfaction_rate", "回访整改满意率", "评价人表示满意的反馈 ÷ 评价人表态（满意或不满意）的反馈",
        "status=closed", ("satisfied_yes", "satisfied_known")),
    Kpi("open", "未办结", "当前尚未办结的工单", "status=open"),
    Kpi("overdue_open", "超期未办结", "已超过办结期限仍未办结的工单", "status=open&overdue=true"),
    Kpi("red", "红牌", "当前期限已过仍未办理的工单", "status=open&warning=red"),
    # {yellow_close_days} and {unit}: HCP_YELLOW_CLOSE_DAYS and HCP_DEADLINE_UNIT's label (kpis()).
    Kpi("yellow", "黄牌", "回访期限当天、或距办结期限不足{yellow_close_days}{unit}的工单",
        "status=open&warning=yellow"),
)


def kpis() -> list[Kpi]:
    """KPIS with the jurisdiction's settings in their definitions (the yellow card's days and unit)."""
    settings = current_app.config["HCP_SETTINGS"]
    terms = {"yellow_close_days": settings.yellow_close_days, "unit": unit_label(settings.deadline_unit)}
    return [replace(k, definition=k.definition.format(**terms)) for k in KPIS]


@blp.get("/dashboard")
@login_required
def dashboard():
    user, departments, default_department = viewer_pickers()
    today = local_date(utcnow())
    return render_template("dashboard.html", user=user, departments=departments,
                           date_from=date(today.year, 1, 1), date_to=today, kpis=kpis(),
                           default_department=default_department)


def viewer_pickers():
    """The signed-in viewer (403 for anyone else), the departments of their scope as
    (department, depth) for the picker, and the one picked at first (admins: none)."""
    user = current_user._get_current_object()
    if user.role not in VIEWERS:
        abort(403)
    stmt = select(Department).order_by(Department.path)
    if user.role != "admin":
        stmt = stmt.where(Department.path.startswith(user.department.path))
    departments = [(d, d.path.count("/") - 2) for d in db.session.scalars(stmt)]
    return user, departments, None if user.role == "admin" else user.department.code
