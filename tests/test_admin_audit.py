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


def test_every_hcp_command_that_changes_the_console_s_data_is_in_the_log(app, staff, query, tmp_path, shell):
    """A change made from the shell is as accountable as one made in the console: each such
    ``hcp`` command writes its 操作日志 entry (actor ``cli:LOGIN``) with the change."""
    import getpass

    from sqlalchemy import select

    from models import AuditEntry

    def hcp(*args, stdin=None):
        return shell(*args, stdin=stdin).stderr  # "device N …" / "client N …" go there

    reasons = tmp_path / "reasons.csv"
    reasons.write_text("code,label,dimension,scope,levels\noff_env_cold,大厅太冷,服务环境,offline,12\n",
                       encoding="utf-8")
    hcp("departments", "add", "bureau", "市场监管局", "--parent", "hall")
    hcp("departments", "rename", "bureau", "区市场监管局")
    hcp("departments", "add", "tax", "税务局")
    hcp("departments", "move", "bureau", "--parent", "tax")
    hcp("departments", "set", "bureau", "--credit-code", "11330106002482000B")
    hcp("departments", "notify", "bureau", "--email", "box@example.gov.cn")
    hcp("items", "add", "license", "营业执照办理", "--department", "bureau")
    device = hcp("devices", "add", "1号窗口", "--department", "bureau", "--channel", "pc").split()[1]
    hcp("devices", "disable", device)
    hcp("devices", "enable", device)
    hcp("devices", "rotate-key", device)
    hcp("devices", "pair-code", device)
    hcp("users", "add", "zhang", "--role", "handler", "--department", "bureau", stdin="long-enough-pw\n")
    hcp("users", "disable", "zhang")
    hcp("users", "enable", "zhang")
    hcp("users", "unlock", "zhang")
    hcp("users", "password-link", "zhang")
    hcp("users", "move", "zhang", "--department", "tax")
    hcp("calendar", "add-holiday", "2027-01-04", "--note", "补休")
    hcp("calendar", "remove", "2027-01-04")
    hcp("reasons", "import", str(reasons))
    hcp("exchange", "requeue")
    client = hcp("clients", "add", "审批系统", "--kind", "approval", "--department", "bureau").split()[1]
    hcp("clients", "disable", client)

    entries = query(lambda s: [(e.actor, e.action, e.target, e.before, e.after)
                               for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))])
    assert {actor for actor, *_ in entries} == {f"cli:{getpass.getuser()}"}
    assert [action for _, action, *_ in entries] == [
        "department.add", "department.rename", "department.add", "department.move", "department.credit_code",
        "department.notify", "item.add", "device.add", "device.disable", "device.enable", "device.rotate_key",
        "device.pair_code", "user.add", "user.disable", "user.enable", "user.unlock", "user.password_link",
        "user.move", "calendar.holiday", "calendar.remove", "reasons.import", "exchange.requeue",
        "client.add", "client.disable"]
    by_action = {action: (target, before, after) for _, action, target, before, after in entries}
    assert by_action["department.rename"] == ("部门 bureau", {"名称": "市场监管局"}, {"名称": "区市场监管局"})
    assert by_action["department.move"] == ("部门 bureau", {"上级": "hall"}, {"上级": "tax"})
    assert by_action["device.disable"][1:] == ({"启用": True}, {"启用": False})
    assert by_action["user.move"][1:] == ({"部门": "bureau"}, {"部门": "tax"})
    assert by_action["calendar.remove"] == ("2027-01-04", {"kind": "holiday", "note": "补休"}, None)
    assert by_action["client.disable"][1:] == ({"启用": True}, {"启用": False})
    # Nothing secret: no key, password or set-password link in any entry.
    assert "long-enough-pw" not in str(entries) and "hcpd_" not in str(entries) and "set-password" not in str(entries)


def test_a_refused_hcp_command_leaves_no_entry(app, staff, query):
    from sqlalchemy import func, select

    from models import AuditEntry
    from service.cli import main

    result = app.test_cli_runner().invoke(main, ["departments", "move", "hall", "--parent", "hall"])
    assert result.exit_code != 0
    assert query(lambda s: s.scalar(select(func.count()).select_from(AuditEntry))) == 0
