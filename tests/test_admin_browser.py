"""The admin console in headless Chromium against hcp under gunicorn: an admin adds a
device, a tablet in a second browser context pairs with the code, posts a rating and its
last seen moves; disabled, the tablet is refused. The pages fit 1366×768 and 390 px."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Rating
from tests import support
from tests.support import wait_for
from tests.web_support import LiveServer, add_staff, shot, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(app, hcp_env):
    """gunicorn of this module's own, refusing a disabled key at once (no device cache)."""
    port = support.free_port()
    live = LiveServer({**hcp_env, "HCP_DEVICE_CACHE_SECONDS": "0", "HCP_PUBLIC_URL": f"http://127.0.0.1:{port}"},
                      port)
    live.start()
    yield live
    live.stop()


@pytest.fixture
def desk(browser):
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    ctx.set_default_timeout(15000)
    yield ctx
    ctx.close()


@pytest.fixture
def tablet(browser):
    ctx = browser.new_context(viewport={"width": 1024, "height": 768}, locale="zh-CN", has_touch=True)
    ctx.set_default_timeout(15000)
    yield ctx
    ctx.close()


@pytest.fixture
def phone(browser):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True, has_touch=True)
    ctx.set_default_timeout(15000)
    yield ctx
    ctx.close()


@pytest.fixture
def hall(app, org):
    district = org.department("district", "示范区政务服务中心")
    hall = org.department("hall", "区政务大厅", parent=district)
    add_staff(app, [("admin", "admin", district, "系统管理员")])
    return hall


def _row(page, name: str):
    return page.locator("table.devices tr", has_text=name)


def test_add_a_device_and_pair_a_tablet_with_its_code(server, desk, tablet, hall, query):
    page = desk.new_page()
    sign_in(page, server, "admin")
    page.click("text=系统管理")
    page.wait_for_selector("h1:has-text('组织机构')")
    page.click("nav.subnav >> text=设备")
    page.wait_for_selector("h1:has-text('设备')")
    page.fill("input[name=name]", "8号窗口平板")
    page.select_option("select[name=department]", "hall")
    page.select_option("select[name=channel]", "hall_tablet")
    page.fill("input[name=window]", "8")
    page.click("button:has-text('添加设备')")
    code = page.inner_text("#pair-code").strip()
    assert re.fullmatch(r"[A-Z2-9]{6}", code) and page.is_visible(".qr svg")
    shot(page, "admin-device-added.png")

    kiosk = tablet.new_page()
    kiosk.goto(server.url + "/kiosk")
    kiosk.wait_for_selector("#screen-setup:not([hidden])")
    kiosk.fill("#setup-key", "WRONG2")
    kiosk.click("#setup-form button")
    kiosk.wait_for_selector("#setup-state:has-text('配对码无效')")
    kiosk.fill("#setup-key", code.lower())
    kiosk.click("#setup-form button")
    kiosk.wait_for_selector("#screen-faces:not([hidden])")
    kiosk.click(".face[data-level='5']")
    kiosk.wait_for_selector("#screen-thanks:not([hidden])")
    wait_for(lambda: query(lambda s: s.scalar(select(func.count(Rating.id)))) == 1, message="the tablet's rating")
    kiosk.click("#screen-thanks")

    page.goto(server.url + "/admin/devices")
    row = _row(page, "8号窗口平板")
    assert "从未上报" not in row.locator(".last-seen").inner_text()
    assert row.locator(".today").inner_text() == "1"
    row.locator("button:has-text('停用')").click()
    page.wait_for_selector(".flash.success")
    assert "停用" in _row(page, "8号窗口平板").inner_text()

    kiosk.wait_for_selector("#screen-faces:not([hidden])")
    kiosk.click(".face[data-level='4']")
    kiosk.wait_for_selector("#key-problem:not([hidden])", timeout=30000)  # refused: 401
    assert kiosk.get_attribute("#kiosk", "data-pending") == "1"  # kept on the tablet, not lost
    assert query(lambda s: s.scalar(select(func.count(Rating.id)))) == 1

    actions = query(lambda s: s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all())
    assert actions == ["device.add", "device.paired", "device.disable"]
    page.click("text=操作日志")
    assert "停用设备" in page.inner_text("table.audit") and "设备完成配对" in page.inner_text("table.audit")


def test_the_pages_fit_a_phone(server, phone, hall, org):
    org.device(hall, name="大厅评价器（一楼东侧）", window="12")
    page = phone.new_page()
    sign_in(page, server, "admin")
    for path in ("/admin/devices", "/admin/audit", "/admin/org", "/admin/org/hall", "/admin/staff", "/admin/calendar",
                 "/admin/reasons"):
        page.goto(server.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    page.goto(server.url + "/admin/devices")
    page.click("button:has-text('添加设备')")  # nothing filled: errors beside the fields
    assert page.is_visible("text=请填写设备名称")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "admin-devices-phone.png")


def test_add_a_department_and_an_item_through_the_pages(server, desk, hall, query):
    from models import Department, ServiceItem

    page = desk.new_page()
    sign_in(page, server, "admin")
    page.goto(server.url + "/admin/org")
    page.fill("#dept-code", "license")
    page.fill("#dept-name", "证照科")
    page.select_option("#dept-parent", "hall")
    page.click("button:has-text('新增部门')")
    page.wait_for_selector(".flash.success")
    page.click("table.org-tree a:has-text('证照科')")
    page.fill("#item-code", "biz-license")
    page.fill("#item-name", "营业执照办理")
    page.click("button:has-text('新增事项')")
    page.wait_for_selector("table.items:has-text('营业执照办理')")
    dept_id = query(lambda s: s.scalar(select(Department.id).where(Department.code == "license")))
    item_dept = query(lambda s: s.scalar(select(ServiceItem.department_id).where(ServiceItem.code == "biz-license")))
    assert item_dept == dept_id
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366


def test_add_a_user_who_sets_a_password_through_the_link(server, desk, browser, hall):
    page = desk.new_page()
    sign_in(page, server, "admin")
    page.goto(server.url + "/admin/staff")
    page.fill("#user-username", "qian")
    page.fill("#user-display_name", "钱七")
    page.select_option("#user-role", "handler")
    page.select_option("#user-department", "hall")
    page.click("button:has-text('添加用户')")
    link = page.inner_text("#password-link").strip()
    assert link.startswith(server.url + "/set-password/")

    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
    try:
        person = ctx.new_page()
        person.goto(link)
        person.fill("#password", "qian-pass-2026")
        person.fill("#confirm", "qian-pass-2026")
        person.click("button:has-text('设置密码')")
        person.wait_for_selector("text=密码已设置，请使用新密码登录")
        sign_in(person, server, "qian", "qian-pass-2026")
        assert "钱七" in person.inner_text(".whoami")
    finally:
        ctx.close()


def test_the_pages_fit_an_office_screen(server, desk, hall, org):
    org.device(hall, name="大厅评价器", window="3")
    page = desk.new_page()
    sign_in(page, server, "admin")
    for path in ("/admin/org", "/admin/org/hall", "/admin/devices", "/admin/staff", "/admin/calendar",
                 "/admin/reasons", "/admin/audit"):
        page.goto(server.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366, path
        assert page.is_visible("nav.subnav"), path


def test_a_holiday_entered_on_the_calendar_page_moves_the_next_deadline(server, desk, hall, app, org, clock):
    """The administrator enters a local holiday in the browser; the next bad rating's closure
    deadline is a working day later than the same rating's would have been before."""
    import uuid
    from datetime import datetime, timedelta, timezone

    from models import Case, Device
    from service.cases.routing import route
    from service.extensions import db
    from service.ratings.intake import store

    clock.set(datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc))  # Thursday 10:00 in Shanghai
    device, _ = org.device(hall, name="大厅评价器")

    def close_due_of_a_new_bad_rating():
        with app.app_context():
            [outcome] = store(db.session.connection(), db.session.get(Device, device.id),
                              [{"client_id": uuid.uuid4(), "level": 1, "rated_at": clock.now()}])
            db.session.commit()
            case_id = route(db.session, outcome.rating["id"])
            db.session.commit()
            return db.session.get(Case, case_id).close_due

    before = close_due_of_a_new_bad_rating()
    holiday = before - timedelta(days=7)  # a working day inside the 15-working-day window
    while holiday.weekday() >= 5:
        holiday -= timedelta(days=1)
    page = desk.new_page()
    sign_in(page, server, "admin")
    page.goto(server.url + "/admin/calendar?year=2026")
    page.fill("#cal-day", holiday.isoformat())
    page.select_option("#cal-kind", "holiday")
    page.fill("#cal-note", "地方节日")
    page.click("form.admin-form button:has-text('保存')")
    page.wait_for_selector(f"#day-{holiday.isoformat()}.override")
    after = close_due_of_a_new_bad_rating()
    nxt = before + timedelta(days=1)
    while nxt.weekday() >= 5:
        nxt += timedelta(days=1)
    assert after == nxt, (before, holiday, after)
