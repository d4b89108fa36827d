"""人员 in the console (SPEC §12): a user added with a one-time set-password link (the
admin never handles the password), disable/enable, unlock, and a move to another
department that returns open cases outside the new scope to 待分派, in their history."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models import AuditEntry, Case, CaseEvent, User
from tests.web_support import PASSWORD, add_staff, csrf_token, login, make_case

LINK_RE = re.compile(r'id="password-link">http://[^/<]+(/set-password/[\w-]+)<')


@pytest.fixture
def tree(app, org):
    district = org.department("district", "示范区政务服务中心")
    bureau = org.department("bureau", "区市场监管局", parent=district)
    section = org.department("section", "登记注册科", parent=bureau)
    section2 = org.department("section2", "信用监管科", parent=bureau)
    add_staff(app, [("admin", "admin", district, "管理员"), ("manager", "manager", district, "王局长"),
                    ("handler", "handler", section, "张三"), ("supervisor", "supervisor", bureau, "李科长")])
    return district, bureau, section, section2


def post(client, path, **data):
    return client.post(path, data={"csrf_token": csrf_token(client.get("/admin/staff").get_data(as_text=True)),
                                   **data})


def test_a_new_user_sets_their_own_password_through_the_link(app, tree, client, query):
    login(client, "admin")
    resp = post(client, "/admin/staff", **{"user-username": "zhao", "user-display_name": "赵六",
                                           "user-role": "handler", "user-department": "section",
                                           "user-email": "zhao@example.gov.cn"})
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    link = LINK_RE.search(resp.get_data(as_text=True)).group(1)
    user = query(lambda s: s.scalar(select(User).where(User.username == "zhao")))
    assert (user.role, user.email, user.display_name) == ("handler", "zhao@example.gov.cn", "赵六")

    person = app.test_client()
    page = person.get(link)
    assert page.status_code == 200 and "zhao" in page.get_data(as_text=True)
    short = person.post(link, data={"csrf_token": csrf_token(page.get_data(as_text=True)), "password": "short",
                                    "confirm": "short"})
    assert short.status_code == 422 and "密码至少8位" in short.get_data(as_text=True)
    token = csrf_token(short.get_data(as_text=True))
    differ = person.post(link, data={"csrf_token": token, "password": "long-enough-1", "confirm": "long-enough-2"})
    assert "两次输入的密码不一致" in differ.get_data(as_text=True)
    done = person.post(link, data={"csrf_token": token, "password": "zhao-pass-2026", "confirm": "zhao-pass-2026"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    login(person, "zhao", "zhao-pass-2026")
    assert app.test_client().get(link).status_code == 404  # once
    entries = query(lambda s: [(e.actor, e.action) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))])
    assert entries == [("admin", "user.add"), ("zhao", "user.password_set")]
    assert "zhao-pass-2026" not in str(query(lambda s: s.scalars(select(AuditEntry.after)).all()))


def test_bad_input_is_answered_beside_the_field(app, tree, client, query):
    login(client, "admin")
    resp = post(client, "/admin/staff", **{"user-username": "handler", "user-role": "handler",
                                           "user-department": "section", "user-email": "x@"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "邮箱格式有误" in page and 'value="x@"' in page
    resp = post(client, "/admin/staff", **{"user-username": "handler", "user-role": "handler",
                                           "user-department": "section"})
    assert resp.status_code == 422 and "该用户名已被使用" in resp.get_data(as_text=True)
    resp = post(client, "/admin/staff", **{"user-username": "new one", "user-role": "", "user-department": ""})
    page = resp.get_data(as_text=True)
    assert "请选择角色" in page and "请选择所属部门" in page and "只能包含字母" in page
    assert query(lambda s: s.scalar(select(AuditEntry.id))) is None


def test_disable_enable_and_unlock(app, tree, client, query):
    handler = app.test_client()
    login(handler, "handler")
    login(client, "admin")
    assert post(client, "/admin/staff/handler/disable").status_code == 302
    assert handler.get("/cases").status_code == 302  # signed out everywhere
    token = csrf_token(app.test_client().get("/login").get_data(as_text=True))
    refused = app.test_client()
    refused.get("/login")
    assert refused.post("/login", data={"username": "handler", "password": PASSWORD,
                                        "csrf_token": csrf_token(refused.get("/login").get_data(as_text=True))}
                        ).status_code == 401
    assert token
    post(client, "/admin/staff/handler/enable")
    login(app.test_client(), "handler")

    from service.auth import api as auth_api, ratelimit
    with app.test_request_context():
        settings = app.config["HCP_SETTINGS"]
        ratelimit.hit(ratelimit.limit(auth_api._ACCOUNT), auth_api.ACCOUNT_CAP, settings.instance, "login",
                      "handler")
    row = re.search(r'<tr id="user-handler">(.*?)</tr>', client.get("/admin/staff").get_data(as_text=True), re.S)
    assert "已锁定" in row.group(1)
    assert post(client, "/admin/staff/handler/unlock").status_code == 302
    assert "已锁定" not in client.get("/admin/staff").get_data(as_text=True)
    login(app.test_client(), "handler")
    actions = query(lambda s: s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all())
    assert actions == ["user.disable", "user.enable", "user.unlock"]


def test_moving_a_handler_returns_cases_outside_the_new_scope(app, tree, client, org, query):
    district, bureau, section, section2 = tree
    section_device, _ = org.device(section, name="科室评价器")
    bureau_device, _ = org.device(bureau, name="局评价器")
    stays_out = make_case(app, section_device, assignee="handler")  # 登记注册科's case
    stays_in = make_case(app, bureau_device, assignee="handler")  # the bureau's: 信用监管科 is under it
    login(client, "admin")
    assert post(client, "/admin/staff/handler/move", **{"move-department": "section2"}).status_code == 302
    cases = query(lambda s: {c.id: (c.status, c.assignee_id is None) for c in s.scalars(select(Case))})
    assert cases[stays_out] == ("unassigned", True) and cases[stays_in] == ("assigned", False)
    event = query(lambda s: s.scalar(select(CaseEvent).where(CaseEvent.case_id == stays_out,
                                                             CaseEvent.action == "unassign")))
    assert event.from_status == "assigned" and event.to_status == "unassigned" and "信用监管科" in event.note
    assert "退回待分派" in client.get(f"/cases/{stays_out}").get_data(as_text=True)
    entry = query(lambda s: s.scalar(select(AuditEntry).where(AuditEntry.action == "user.move")))
    assert entry.before["部门"] == "section" and entry.after["部门"] == "section2"
    assert entry.after["退回待分派工单"] == f"#{stays_out}"


@pytest.mark.parametrize("role,status", [("handler", 403), ("supervisor", 403), ("manager", 403), ("admin", 200)])
def test_only_admins_manage_staff(app, tree, client, role, status):
    login(client, role)
    assert client.get("/admin/staff").status_code == status
    token = csrf_token(client.get("/cases").get_data(as_text=True))
    resp = client.post("/admin/staff/handler/unlock", data={"csrf_token": token})
    assert resp.status_code == (403 if status == 403 else 302)


def test_the_cli_calls_the_same_functions(app, tree, org, query, shell):
    district, bureau, section, section2 = tree
    device, _ = org.device(section, name="科室评价器")
    case_id = make_case(app, device, assignee="handler")
    link = shell("users", "password-link", "handler").stdout.strip()
    path = link[link.index("/set-password/"):]
    assert app.test_client().get(path).status_code == 200
    out = shell("users", "move", "handler", "--department", "section2").stdout
    assert f"1 open case(s) returned to unassigned: {case_id}" in out
    assert query(lambda s: s.get(Case, case_id).status) == "unassigned"
    assert "unlocked" in shell("users", "unlock", "handler").stdout
