"""组织机构 in the console (SPEC §12): departments added, renamed and moved (paths below
follow, figures stay exact), items per department, notification targets and 发送测试消息
against a robot played by a small HTTP server; all recorded in the 操作日志."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditEntry, Department, ServiceItem
from tests.support import RobotServer, bearer, rating_body
from tests.web_support import add_staff, csrf_token, login


@pytest.fixture
def tree(app, org):
    east = org.department("east", "东区")
    west = org.department("west", "西区")
    bureau = org.department("bureau", "市场监管局", parent=east)
    section = org.department("section", "登记注册科", parent=bureau)
    add_staff(app, [("admin", "admin", east, "管理员"), ("manager", "manager", east, "王局长"),
                    ("handler", "handler", section, "张三")])
    return east, west, bureau, section


def post(client, path, page, **data):
    return client.post(path, data={"csrf_token": csrf_token(client.get(page).get_data(as_text=True)), **data})


def test_add_a_department_and_an_item(app, tree, client, query):
    login(client, "admin")
    resp = post(client, "/admin/org/departments", "/admin/org", **{"dept-code": "license", "dept-name": "证照科",
                                                                  "dept-parent": "bureau"})
    assert resp.status_code == 302
    path = query(lambda s: s.scalar(select(Department.path).where(Department.code == "license")))
    bureau = query(lambda s: s.scalar(select(Department).where(Department.code == "bureau")))
    assert path.startswith(bureau.path) and path.count("/") == bureau.path.count("/") + 1
    resp = post(client, "/admin/org/items", "/admin/org/license",
                **{"item-code": "biz-license", "item-name": "营业执照", "item-department": "license"})
    assert resp.status_code == 302
    assert "营业执照" in client.get("/admin/org/license").get_data(as_text=True)
    assert query(lambda s: s.scalar(select(ServiceItem.department_id))) == \
        query(lambda s: s.scalar(select(Department.id).where(Department.code == "license")))
    actions = query(lambda s: s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all())
    assert actions == ["department.add", "item.add"]


def test_bad_input_is_answered_beside_the_field(app, tree, client, query):
    login(client, "admin")
    resp = post(client, "/admin/org/departments", "/admin/org", **{"dept-code": "bureau", "dept-name": "重复的局"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "该代码已被使用，请换一个" in page and 'value="重复的局"' in page
    resp = post(client, "/admin/org/departments", "/admin/org", **{"dept-code": "有 空格", "dept-name": ""})
    page = resp.get_data(as_text=True)
    assert "只能包含字母、数字" in page and "请填写部门名称" in page and 'value="有 空格"' in page
    resp = post(client, "/admin/org/items", "/admin/org", **{"item-code": "x1", "item-name": "事项"})
    assert resp.status_code == 422 and "请选择所属部门" in resp.get_data(as_text=True)
    assert query(lambda s: s.scalar(select(AuditEntry.id))) is None


def test_moving_a_department_carries_its_subtree_and_the_figures(app, tree, client, org, query):
    east, west, bureau, section = tree
    _, key = org.device(section, name="科室评价器")
    for level in (5, 4, 1):
        assert client.post("/api/v1/ratings", json=rating_body(level=level), headers=bearer(key)).status_code == 201
    admin_token = client.post("/api/v1/auth/token", json={"username": "admin", "password": "correct-horse-9"}
                              ).get_json()["token"]

    def total(dept):
        resp = client.get(f"/api/v1/stats/summary?from=2026-11-01&to=2026-11-30&department={dept}",
                          headers=bearer(admin_token))
        return resp.get_json()["total"], resp.get_json()["bad"]

    assert total("east") == (3, 1) and total("west") == (0, 0)
    login(client, "admin")
    assert post(client, "/admin/org/bureau/move", "/admin/org/bureau", **{"move-parent": "west"}).status_code == 302
    paths = query(lambda s: dict(s.execute(select(Department.code, Department.path)).all()))
    assert paths["section"].startswith(paths["bureau"]) and paths["bureau"].startswith(paths["west"])
    assert total("east") == (0, 0) and total("west") == (3, 1) and total("bureau") == (3, 1)
    entry = query(lambda s: s.scalar(select(AuditEntry).where(AuditEntry.action == "department.move")))
    assert (entry.before, entry.after) == ({"上级": "east"}, {"上级": "west"})

    resp = post(client, "/admin/org/bureau/move", "/admin/org/bureau", **{"move-parent": "section"})
    assert resp.status_code == 422 and "不能移到本部门或其下级部门之下" in resp.get_data(as_text=True)
    assert query(lambda s: s.scalar(select(Department.path).where(Department.code == "bureau"))) == paths["bureau"]
    assert post(client, "/admin/org/bureau/rename", "/admin/org/bureau", **{"rename-name": "区市场监管局"}
                ).status_code == 302
    assert query(lambda s: s.scalar(select(Department.name).where(Department.code == "bureau"))) == "区市场监管局"


def test_notification_targets_and_a_test_message(app, tree, client, query):
    robot = RobotServer()
    try:
        login(client, "admin")
        bad = post(client, "/admin/org/bureau/notify", "/admin/org/bureau",
                   **{"notify-webhook": "ftp://robot", "notify-email": "not-an-address"})
        page = bad.get_data(as_text=True)
        assert bad.status_code == 422 and "请填写以 http:// 或 https:// 开头的网址" in page
        assert 'value="ftp://robot"' in page
        bad = post(client, "/admin/org/bureau/notify", "/admin/org/bureau",
                   **{"notify-webhook": robot.url("bureau"), "notify-email": "not-an-address"})
        assert bad.status_code == 422 and "邮箱格式有误" in bad.get_data(as_text=True)

        ok = post(client, "/admin/org/bureau/notify", "/admin/org/bureau",
                  **{"notify-webhook": robot.url("bureau"), "notify-secret": "SECabc123",
                     "notify-email": "scj@example.gov.cn"})
        assert ok.status_code == 302
        entry = query(lambda s: s.scalar(select(AuditEntry).where(AuditEntry.action == "department.notify")))
        assert entry.after["加签"] is True
        assert "SECabc123" not in str(entry.after) and "secret-bureau" not in str(entry.after)

        resp = post(client, "/admin/org/bureau/notify/test", "/admin/org/bureau")
        page = client.get(resp.headers["Location"]).get_data(as_text=True)
        assert "测试消息已发送，机器人回复成功（errcode 0，ok）" in page
        assert "测试消息" in robot.texts("bureau")[0]
        path = robot.posts[0][0]
        assert "sign=" in path and "timestamp=" in path  # signed with the 加签 secret

        robot.fail["/hook/bureau"] = 1
        resp = post(client, "/admin/org/bureau/notify/test", "/admin/org/bureau")
        assert "测试消息未送达" in client.get(resp.headers["Location"]).get_data(as_text=True)
    finally:
        robot.stop()


@pytest.mark.parametrize("role,status", [("handler", 403), ("manager", 403), ("admin", 200)])
def test_only_admins_change_the_organisation(app, tree, client, role, status):
    login(client, role)
    assert client.get("/admin/org").status_code == status
    assert client.get("/admin/org/bureau").status_code == status
    page = client.get("/cases").get_data(as_text=True)
    resp = client.post("/admin/org/bureau/rename", data={"csrf_token": csrf_token(page), "rename-name": "x"})
    assert resp.status_code == (403 if status == 403 else 302)
