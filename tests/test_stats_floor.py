"""The satisfaction floor: a department's monthly good rate below HCP_SATISFACTION_FLOOR
alerts its managers once per (department, month)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from models import Notification
from models.types import utcnow
from models.clock import local_date
from tests.test_stats import store_ratings

SH = timezone(timedelta(hours=8))


def _fill(org, app, day):
    root = org.department("district", "示范区")
    a = org.department("bureau-a", "区民政局", parent=root)
    b = org.department("bureau-b", "区市场监管局", parent=root)
    org.user("m-root", "manager", root)
    org.user("m-a", "manager", a)
    org.user("m-b", "manager", b)
    at = datetime(day.year, day.month, day.day, 10, tzinfo=SH)
    dev_a, _ = org.device(a, name="a")
    dev_b, _ = org.device(b, name="b")
    # bureau-a: 45 good of 50 (90 %); bureau-b: 100 of 100; the district: 145 of 150 (96.7 %)
    store_ratings(app, dev_a, [{"level": 5 if i < 45 else 1, "rated_at": at} for i in range(50)])
    store_ratings(app, dev_b, [{"level": 4, "rated_at": at} for _ in range(100)])
    return root, a, b


def test_alerts_the_department_below_the_floor_once(app, org, query):
    from service.extensions import db
    from service.stats import floor

    today = local_date(utcnow())
    last_month_day = today.replace(day=1) - timedelta(days=3)
    _, a, _ = _fill(org, app, last_month_day)
    with app.app_context():
        alerts = [(x.department.code, x.payload)
                  for x in floor.check(db.session, today=today, floor=0.96, min_ratings=20)]
        db.session.commit()
    assert [code for code, _ in alerts] == ["bureau-a"]
    payload = alerts[0][1]
    assert payload["good_rate"] == 0.9 and payload["total"] == 50
    assert payload["month"] == last_month_day.strftime("%Y-%m")
    assert sorted(payload["managers"]) == ["m-a", "m-root"]  # not bureau-b's manager

    with app.app_context():
        again = floor.check(db.session, today=today, floor=0.96, min_ratings=20)
        db.session.commit()
    assert again == []
    rows = query(lambda s: list(s.scalars(select(Notification).where(Notification.kind == "satisfaction_floor"))))
    assert [r.key for r in rows] == [f"satisfaction-floor:{a.id}:{payload['month']}"]

    # a stricter floor also catches the district as a whole, still once each
    with app.app_context():
        strict = [x.department.code for x in floor.check(db.session, today=today, floor=0.97, min_ratings=20)]
        db.session.commit()
    assert strict == ["district"]


def test_few_ratings_raise_no_alarm(app, org):
    from service.extensions import db
    from service.stats import floor

    today = local_date(utcnow())
    _fill(org, app, today.replace(day=1) - timedelta(days=3))
    with app.app_context():
        assert floor.check(db.session, today=today, floor=0.96, min_ratings=51) == []


def test_the_beat_task_issues_the_alert(app, org, query):
    from workers.tasks import check_satisfaction_floor
    from workers.schedule import beat_schedule

    assert beat_schedule(app.config["HCP_SETTINGS"])["check-satisfaction-floor"]["task"] == \
        "workers.tasks.check_satisfaction_floor"
    today = local_date(utcnow())
    _fill(org, app, today.replace(day=1) - timedelta(days=3))
    assert check_satisfaction_floor.apply().get() == 1
    assert check_satisfaction_floor.apply().get() == 0
    assert query(lambda s: s.scalar(select(Notification.payload).where(
        Notification.kind == "satisfaction_floor")))["department"] == "bureau-a"


def test_the_alert_goes_to_the_managers_departments_through_the_senders(app, org, query):
    from models import Department
    from service.extensions import db
    from service.stats import floor

    today = local_date(utcnow())
    root, a, _ = _fill(org, app, today.replace(day=1) - timedelta(days=3))
    with app.app_context():
        db.session.get(Department, root.id).notify_webhook = "http://127.0.0.1:9/robot"
        db.session.commit()
        alerts = floor.check(db.session, today=today, floor=0.96, min_ratings=20)
        db.session.commit()
        assert len(alerts) == 1 and len(alerts[0].deliveries) == 1
    rows = query(lambda s: {n.key: n for n in s.scalars(select(Notification))})
    month = (today.replace(day=1) - timedelta(days=3)).strftime("%Y-%m")
    hook = rows[f"satisfaction-floor:{a.id}:{month}:webhook:{root.id}"]
    assert hook.kind == "webhook" and hook.sent_at is None and "好评率" in hook.payload["content"]
