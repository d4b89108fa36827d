"""工作日历 in the console (SPEC §12): the year view with the library's holidays, 调休 and
the admin's overrides marked; a holiday entered moves a deadline; removing it restores
it; the console warns when the coming year has no calendar data yet."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from models import AuditEntry, CalendarOverride
from tests.web_support import add_staff, csrf_token, login


@pytest.fixture
def admin(app, org):
    hall = org.department("hall", "政务服务中心")
    add_staff(app, [("admin", "admin", hall, "管理员"), ("manager", "manager", hall, "王主任")])


def _due(app, received: str, n: int) -> date:
    from service.cases.deadlines import WorkCalendar
    from service.extensions import db
    with app.app_context():
        return WorkCalendar.load(db.session).due(datetime.fromisoformat(received), n)


def post(client, path, **data):
    page = client.get("/admin/calendar?year=2026").get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_token(page), **data})


def test_the_year_view_marks_holidays_makeup_days_and_overrides(app, admin, client, clock):
    clock.set(datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc))
    login(client, "admin")
    page = client.get("/admin/calendar?year=2026").get_data(as_text=True)
    assert 'id="day-2026-10-01" title="2026-10-01 国庆节"' in page
    assert 'class="day holiday" id="day-2026-10-01"' in page
    assert 'class="day weekend" id="day-2026-11-21"' in page
    assert 'class="day workday" id="day-2026-11-20"' in page
    makeup = [d for d in ("2026-01-04", "2026-02-14", "2026-02-28", "2026-09-20", "2026-10-10")
              if f'class="day makeup" id="day-{d}"' in page]
    assert makeup  # the library's 调休 Saturdays/Sundays worked


def test_a_holiday_entered_moves_a_deadline_and_removing_it_restores_it(app, admin, client, query):
    login(client, "admin")
    before = _due(app, "2026-11-19T10:00:00+08:00", 1)
    assert before == date(2026, 11, 20)
    resp = post(client, "/admin/calendar?year=2026", **{"cal-day": "2026-11-20", "cal-kind": "holiday",
                                                       "cal-note": "地方节日"})
    assert resp.status_code == 302
    assert _due(app, "2026-11-19T10:00:00+08:00", 1) == date(2026, 11, 23)
    page = client.get("/admin/calendar?year=2026").get_data(as_text=True)
    assert 'class="day holiday override" id="day-2026-11-20"' in page and "地方节日" in page
    post(client, "/admin/calendar?year=2026", **{"cal-day": "2026-11-21", "cal-kind": "workday"})
    assert _due(app, "2026-11-19T10:00:00+08:00", 1) == date(2026, 11, 21)
    assert post(client, "/admin/calendar/2026-11-20/remove").status_code == 302
    assert post(client, "/admin/calendar/2026-11-21/remove").status_code == 302
    assert _due(app, "2026-11-19T10:00:00+08:00", 1) == before
    entries = query(lambda s: [(e.action, e.target) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))])
    assert entries == [("calendar.holiday", "2026-11-20"), ("calendar.workday", "2026-11-21"),
                       ("calendar.remove", "2026-11-20"), ("calendar.remove", "2026-11-21")]


def test_the_console_says_which_open_cases_got_new_deadlines(app, admin, org, client, query):
    from models import Case
    from tests.test_routing import route_received

    device, _ = org.device(org.department("d1"))
    case = route_received(app, device.id, datetime(2026, 11, 26, 10, tzinfo=timezone.utc))
    login(client, "admin")
    post(client, "/admin/calendar?year=2026", **{"cal-day": "2026-12-03", "cal-kind": "holiday"})
    page = client.get("/admin/calendar?year=2026").get_data(as_text=True)
    assert "1 件在办工单的期限已按新日历重新计算" in page
    assert query(lambda s: s.get(Case, case.id).close_due) == date(2026, 12, 18)
    entry = query(lambda s: s.scalar(select(AuditEntry).where(AuditEntry.action == "calendar.holiday")))
    assert entry.after["期限调整工单"] == f"#{case.id}"
    post(client, "/admin/calendar?year=2026", **{"cal-day": "2027-03-03", "cal-kind": "holiday"})
    assert "没有在办工单的期限受影响" in client.get("/admin/calendar?year=2026").get_data(as_text=True)


def test_bad_input_is_answered_beside_the_field(app, admin, client, query):
    login(client, "admin")
    resp = post(client, "/admin/calendar?year=2026", **{"cal-day": "2026-13-40", "cal-kind": ""})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "日期格式应如 2027-01-01" in page and "请选择类型" in page
    assert 'value="2026-13-40"' in page
    assert query(lambda s: s.scalar(select(CalendarOverride.day))) is None


def test_the_console_warns_when_the_coming_year_has_no_data(app, admin, client, clock):
    login(client, "admin")
    clock.set(datetime(2026, 6, 1, 2, 0, tzinfo=timezone.utc))  # 2027: not in the library
    assert "2027 年还没有节假日安排" in client.get("/admin/org").get_data(as_text=True)
    post(client, "/admin/calendar?year=2027", **{"cal-day": "2027-01-01", "cal-kind": "holiday", "cal-note": "元旦"})
    assert "还没有节假日安排" not in client.get("/admin/org").get_data(as_text=True)
    clock.set(datetime(2025, 6, 1, 2, 0, tzinfo=timezone.utc))  # 2026 is in the library
    client.post("/admin/calendar/2027-01-01/remove",
                data={"csrf_token": csrf_token(client.get("/admin/org").get_data(as_text=True))})
    assert "还没有节假日安排" not in client.get("/admin/org").get_data(as_text=True)
    page = client.get("/admin/calendar?year=2027").get_data(as_text=True)
    assert "日历库未收录" in page


def test_only_admins_keep_the_calendar(app, admin, client):
    login(client, "manager")
    assert client.get("/admin/calendar").status_code == 403
