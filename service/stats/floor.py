"""The satisfaction floor: a department's monthly good rate below HCP_SATISFACTION_FLOOR
(default 96 %, the 12345 hotline practice) alerts the managers who answer for it.

Checked by a beat task (``workers.tasks.check_satisfaction_floor``) for the previous
month and the month so far. Each department is judged with its subtree, from the daily
rollups, and only with at least HCP_SATISFACTION_MIN_RATINGS ratings in the month, so
the third rating of the 1st does not raise an alarm. The alert is issued once per
(department, month): a ``notifications`` row whose unique key is
``satisfaction-floor:<department id>:<YYYY-MM>``, inserted ``ON CONFLICT DO NOTHING``
(``notify.claim``); only the check that inserted it adds the deliveries to the managers
(``notify.deliveries``: e-mail, group-robot webhook), which are sent after the commit.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Department, User
from models.stats import LEVEL_COUNTERS, StatsDaily
from models.types import utcnow
from service import dispatch, notify
from models.clock import local_date
from service.stats.figures import ratio

log = logging.getLogger(__name__)
KIND = "satisfaction_floor"


@dataclass
class Alert:
    notification_id: int
    key: str
    department: Department
    managers: list[User]
    payload: dict
    deliveries: list[int] = field(default_factory=list)


def month_bounds(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return first, nxt - timedelta(days=1)


def monthly_good_rates(session: Session, first: date, last: date) -> dict[int, tuple[int, int]]:
    """(good, total) per department, each counted with its whole subtree."""
    levels = [func.sum(getattr(StatsDaily, c)) for c in LEVEL_COUNTERS]
    rows = session.execute(select(StatsDaily.department_id, *levels)
                           .where(StatsDaily.rated_date >= first, StatsDaily.rated_date <= last)
                           .group_by(StatsDaily.department_id))
    own = {r[0]: (int(r[3] or 0) + int(r[4] or 0) + int(r[5] or 0), sum(int(v or 0) for v in r[1:])) for r in rows}
    depts = list(session.scalars(select(Department)))
    paths = {d.id: d.path for d in depts}
    out = {}
    for d in depts:
        good = total = 0
        for dept_id, (g, t) in own.items():
            if paths.get(dept_id, "").startswith(d.path):
                good, total = good + g, total + t
        out[d.id] = (good, total)
    return out


def under_floor(good: int, total: int, floor: float, min_ratings: int) -> bool:
    """A month's (good, total) is below the floor — counted only from ``min_ratings`` ratings on."""
    rate = ratio(good, total)
    return rate is not None and total >= min_ratings and rate < floor


def _managers_over(session: Session, dept: Department) -> list[User]:
    """Active managers whose scope covers ``dept`` (their department is it or above it)."""
    managers = session.scalars(select(User).join(Department, User.department_id == Department.id)
                               .where(User.role == "manager", User.active.is_(True)))
    return [m for m in managers if dept.path.startswith(m.department.path)]


def check(session: Session, today: date | None = None, floor: float | None = None,
          min_ratings: int | None = None) -> list[Alert]:
    """Issue an alert for every (department, month) newly below the floor; the caller commits."""
    settings = current_app.config["HCP_SETTINGS"]
    floor = settings.satisfaction_floor if floor is None else floor
    min_ratings = settings.satisfaction_min_ratings if min_ratings is None else min_ratings
    today = today or local_date(utcnow())
    this_month = month_bounds(today)
    last_month = month_bounds(this_month[0] - timedelta(days=1))
    depts = {d.id: d for d in session.scalars(select(Department))}
    alerts = []
    for first, last in (last_month, (this_month[0], today)):
        for dept_id, (good, total) in monthly_good_rates(session, first, last).items():
            if not under_floor(good, total, floor, min_ratings):
                continue
            rate = ratio(good, total)
            dept = depts[dept_id]
            month = first.strftime("%Y-%m")
            key = f"satisfaction-floor:{dept.id}:{month}"
            managers = _managers_over(session, dept)
            payload = {"department": dept.code, "department_name": dept.name, "month": month,
                       "good": good, "total": total, "good_rate": rate, "floor": floor,
                       "through": last.isoformat(), "managers": [m.username for m in managers]}
            notification_id = notify.claim(session, key, KIND, payload, sent=utcnow())
            if notification_id is None:
                continue  # already alerted for this department and month
            alert = Alert(notification_id, key, dept, managers, payload)
            alert.deliveries = hand_to_senders(session, alert)
            alerts.append(alert)
            log.warning("satisfaction floor: %s %s good rate %.2f%% < %.2f%% (%d ratings)",
                        dept.code, month, rate * 100, floor * 100, total)
    return alerts


def alert_text(alert: Alert) -> tuple[str, str]:
    p = alert.payload
    subject = f"【好差评】{p['department_name']} {p['month']} 好评率低于 {p['floor'] * 100:.0f}%"
    text = (f"{subject}\n部门：{p['department_name']}（{p['department']}）\n月份：{p['month']}"
            f"（统计至 {p['through']}）\n好评率：{p['good_rate'] * 100:.2f}%（好评 {p['good']} / 评价 {p['total']}）\n"
            f"请关注该部门服务质量并督促整改。")
    return subject, text


def hand_to_senders(session: Session, alert: Alert) -> list[int]:
    """The alert's deliveries (service/notify.py): an e-mail to each manager with an address,
    and a group-robot post / e-mail to their departments' webhook and address."""
    subject, text = alert_text(alert)
    departments = [m.department for m in alert.managers]
    return notify.deliveries(session, alert.key, subject=subject, text=text,
                             users=alert.managers, departments=departments)


def send_after_commit(alerts: list[Alert]) -> None:
    """After the issuing commit: one send task per delivery (retried by Celery)."""
    for alert in alerts:
        for delivery_id in alert.deliveries:
            dispatch.send("send_notification", delivery_id)
