"""The 操作日志 (SPEC §12): service.audit.record keeps who, when, what and before/after,
and /admin/audit lists it to admins only."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.web_support import add_staff, login


@pytest.fixture
def staff(app, org):
    hall = org.department("hall", "政务服务中心")
    add_staff(app, [(r, r, hall, r) for r in ("handler", "supervisor", "manager", "admin")])
    return hall


def test_an_entry_keeps_who_when_what_and_only_the_changed_fields(app, staff, query, clock):
    from service import audit
    from service.extensions import db

    clock.set(datetime(2026, 11, 20, 1, 30, tzinfo=timezone.utc))
    with app.app_context():
        before, after = audit.changed({"name": "旧名", "code": "hall"}, {"name": "新名", "code": "hall"})
        audit.record(db.session, "admin", "department.rename", "部门 hall", before, after)
        db.session.commit()
    from models import AuditEntry
    entry = query(lambda s: s.query(AuditEntry).one())
    assert (entry.actor, entry.action, entry.target) == ("admin", "department.rename", "部门 hall")
    assert (entry.before, entry.after) == ({"name": "旧名"}, {"name": "新名"})
    assert entry.at == datetime(2026, 11, 20, 1, 30, tzinfo=timezone.utc)
    with app.app_context(), pytest.raises(ValueError):
        audit.record(db.session, "admin", "no.such_action", "x")


def test_the_page_lists_entries_newest_first_and_filters(app, staff, client):
    from service import audit
    from service.extensions import db

    with app.app_context():
        audit.record(db.session, "admin", "device.disable", "设备 1 大厅平板", {"active": True}, {"active": False})
        audit.record(db.session, "admin2", "calendar.holiday", "2027-01-01", None, {"kind": "holiday"})
        db.session.commit()
    login(client, "admin")
    page = client.get("/admin/audit").get_data(as_text=True).split("<tbody>")[1]
    assert page.index("设为节假日") < page.index("停用设备")
    assert "设备 1 大厅平板" in page
    only = client.get("/admin/audit?actor=admin").get_data(as_text=True).split("<tbody>")[1]
    assert "停用设备" in only and "2027-01-01" not in only
    by_action = client.get("/admin/audit?action=calendar.holiday").get_data(as_text=True).split("<tbody>")[1]
    assert "2027-01-01" in by_action and "设备 1 大厅平板" not in by_action


@pytest.mark.parametrize("role,status", [("handler", 403), ("supervisor", 403), ("manager", 403), ("admin", 200)])
def test_only_admins_read_the_log(app, staff, client, role, status):
    login(client, role)
    assert client.get("/admin/audit").status_code == status
    assert ("系统管理" in client.get("/cases").get_data(as_text=True)) == (role in ("manager", "admin"))


def test_signed_out_is_sent_to_the_login_page(app, client):
    resp = client.get("/admin/audit")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
