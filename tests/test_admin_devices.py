"""The console's 设备 page and tablet pairing (SPEC §12): add (key once, a pairing code and
its QR), pair through ``POST /api/v1/devices/pair``, disable/enable, a new key, last seen,
ratings today, the silent flag in working hours (the application's clock set, never
slept), the morning's 设备静默提醒, ``hcp devices list|pair-code`` and who may do what."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from models import AuditEntry, CalendarOverride, Device, Notification, Rating
from models.types import utcnow
from tests.support import bearer, rating_body
from tests.web_support import add_staff, csrf_token, login

SH = ZoneInfo("Asia/Shanghai")
CODE_RE = re.compile(r'id="pair-code">([A-Z0-9]{6})<')
KEY_RE = re.compile(r'id="device-key">(hcpd_[\w-]+)<')


@pytest.fixture
def hall(app, org):
    district = org.department("district", "示范区政务服务中心")
    hall = org.department("hall", "区政务大厅", parent=district)
    other = org.department("other", "区民政局", parent=district)
    add_staff(app, [("admin", "admin", district, "管理员"), ("manager", "manager", hall, "王主任"),
                    ("handler", "handler", hall, "张三"), ("supervisor", "supervisor", hall, "李科长")])
    return district, hall, other


def _forget_cached_keys(app):
    """This process's device cache (HCP_DEVICE_CACHE_SECONDS): other processes follow within it."""
    app.extensions.get("hcp_device_cache", {}).clear()


def add_device(client, **fields):
    page = client.get("/admin/devices").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "name": "5号窗口平板", "department": "hall",
            "channel": "hall_tablet", "window": "5", "rate_limit": ""}
    data.update(fields)
    return client.post("/admin/devices", data=data)


def test_add_shows_the_key_once_a_pairing_code_and_a_qr(app, hall, client, query):
    login(client, "admin")
    resp = add_device(client)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    page = resp.get_data(as_text=True)
    key, code = KEY_RE.search(page).group(1), CODE_RE.search(page).group(1)
    assert "<svg" in page and "扫码配对" in page
    stored = query(lambda s: [(d.name, d.channel, d.window, d.department.code) for d in s.scalars(select(Device))])
    assert stored == [("5号窗口平板", "hall_tablet", "5", "hall")]
    assert key not in str(query(lambda s: s.scalar(select(Device.key_hash))))
    listing = client.get("/admin/devices").get_data(as_text=True)
    assert key not in listing and code not in listing and "从未上报" in listing
    entry = query(lambda s: s.scalar(select(AuditEntry).where(AuditEntry.action == "device.add")))
    assert entry.actor == "admin" and entry.after["名称"] == "5号窗口平板" and key not in str(entry.after)
    assert client.post("/api/v1/ratings", json=rating_body(level=5), headers=bearer(key)).status_code == 201


def test_a_hall_qr_added_in_the_console_shows_the_code_to_print_not_a_key(app, hall, client, query):
    """A qrcode device is its printed code: the page shows that QR (opening /q/CODE) and
    offers its SVG; no key and no pairing code, and pairing it is refused."""
    login(client, "admin")
    resp = add_device(client, name="5号窗口扫码", channel="qrcode")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    code = query(lambda s: s.scalar(select(Device.qr_code)))
    assert code and f"/q/{code}" in page and f"/q/{code}/qr.svg" in page
    assert "<svg" in page and "扫码评价" in page
    assert not KEY_RE.search(page) and not CODE_RE.search(page)
    assert client.get(f"/q/{code}/qr.svg").status_code == 200
    listing = client.get("/admin/devices").get_data(as_text=True)
    row = listing.split(f'id="device-{query(lambda s: s.scalar(select(Device.id)))}"')[1].split("</tr>")[0]
    assert f'href="/q/{code}/qr.svg"' in row and "配对码" not in row
    device_id = query(lambda s: s.scalar(select(Device.id)))
    assert client.post(f"/admin/devices/{device_id}/pair",
                       data={"csrf_token": csrf_token(listing)}).status_code == 409


def test_bad_input_is_answered_beside_the_field_with_what_was_typed(app, hall, client, query):
    login(client, "admin")
    resp = add_device(client, name="", window="W" * 65, rate_limit="fast please", department="")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "请填写设备名称" in page and "请选择所属部门" in page and "限速格式应如 5/minute" in page
    assert 'value="fast please"' in page and "不能超过64字" in page
    assert query(lambda s: s.scalar(select(Device.id))) is None
    assert query(lambda s: s.scalar(select(AuditEntry.id))) is None
    page = client.get("/admin/devices").get_data(as_text=True)
    assert client.post("/admin/devices", data={"name": "x", "department": "hall", "channel": "pc"}).status_code == 400
    assert add_device(client, department="nowhere").status_code == 422
    assert add_device(client, channel="default").status_code == 422


def test_a_code_pairs_once_within_ten_minutes_and_replaces_the_key(app, hall, client, clock, org):
    device, first_key = org.device(hall[1], channel="hall_tablet", window="3", name="3号平板")
    login(client, "admin")
    page = client.post(f"/admin/devices/{device.id}/pair", data={
        "csrf_token": csrf_token(client.get("/admin/devices").get_data(as_text=True))}).get_data(as_text=True)
    code = CODE_RE.search(page).group(1)
    assert f"/kiosk#pair={code}" in page

    tablet = app.test_client()
    assert tablet.post("/api/v1/devices/pair", json={"code": "ZZZZZZ"}).status_code == 404
    resp = tablet.post("/api/v1/devices/pair", json={"code": code.lower()[:3] + " " + code.lower()[3:]})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["device"] == {"id": device.id, "name": "3号平板", "channel": "hall_tablet", "window": "3",
                              "department": "hall"}
    again = tablet.post("/api/v1/devices/pair", json={"code": code})
    assert again.status_code == 404 and "配对码无效、已使用或已过期" in again.get_json()["message"]
    _forget_cached_keys(app)
    assert tablet.post("/api/v1/ratings", json=rating_body(), headers=bearer(body["key"])).status_code == 201
    assert tablet.post("/api/v1/ratings", json=rating_body(), headers=bearer(first_key)).status_code == 401

    # A code not used within 10 minutes is refused.
    from service.devices import registry
    from service.extensions import db
    with app.app_context():
        late, _ = registry.issue_pair_code(db.session, db.session.get(Device, device.id), "admin")
        db.session.commit()
    clock.set(utcnow() + timedelta(minutes=10, seconds=1))
    assert tablet.post("/api/v1/devices/pair", json={"code": late}).status_code == 404
    assert tablet.post("/api/v1/devices/pair", json={}).status_code == 422


def test_pairing_attempts_are_limited_per_address(app, hall, client):
    tablet = app.test_client()
    answers = [tablet.post("/api/v1/devices/pair", json={"code": "AAAAAA"}).status_code for _ in range(11)]
    assert answers[:10] == [404] * 10 and answers[10] == 429


def test_disable_enable_and_a_new_key(app, hall, client, org, query):
    device, key = org.device(hall[1], channel="hall_terminal", name="1号评价器")
    login(client, "admin")
    token = csrf_token(client.get("/admin/devices").get_data(as_text=True))
    assert client.post(f"/admin/devices/{device.id}/disable", data={"csrf_token": token}).status_code == 302
    _forget_cached_keys(app)
    assert client.post("/api/v1/ratings", json=rating_body(), headers=bearer(key)).status_code == 401
    assert "停用" in client.get("/admin/devices").get_data(as_text=True)
    client.post(f"/admin/devices/{device.id}/enable", data={"csrf_token": token})
    _forget_cached_keys(app)
    assert client.post("/api/v1/ratings", json=rating_body(), headers=bearer(key)).status_code == 201
    page = client.post(f"/admin/devices/{device.id}/rotate", data={"csrf_token": token}).get_data(as_text=True)
    new_key = KEY_RE.search(page).group(1)
    _forget_cached_keys(app)
    assert client.post("/api/v1/ratings", json=rating_body(), headers=bearer(key)).status_code == 401
    assert client.post("/api/v1/ratings", json=rating_body(), headers=bearer(new_key)).status_code == 201
    actions = query(lambda s: s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all())
    assert actions == ["device.disable", "device.enable", "device.rotate_key"]
    disabled = query(lambda s: s.scalar(select(AuditEntry).where(AuditEntry.action == "device.disable")))
    assert (disabled.before, disabled.after) == ({"启用": True}, {"启用": False})
    assert client.post(f"/admin/devices/{device.id}/disable").status_code == 400  # no CSRF token


def test_last_seen_and_ratings_today_follow_the_device(app, hall, client, org, clock, query):
    device, key = org.device(hall[1], name="2号评价器")
    moment = datetime(2026, 11, 18, 10, 15, tzinfo=SH)  # a Wednesday
    clock.set(moment)
    body = rating_body(rated_at=moment.isoformat())
    assert client.post("/api/v1/ratings", json=body, headers=bearer(key)).status_code == 201
    assert query(lambda s: s.get(Device, device.id).last_seen_at) == moment
    login(client, "admin")
    row = re.search(rf'<tr id="device-{device.id}">(.*?)</tr>', client.get("/admin/devices").get_data(as_text=True),
                    re.S).group(1)
    assert "2026-11-18 10:15" in row and re.search(r'class="today">1<', row) and "正常" in row


def _silent_on_page(client, device_id: int) -> bool:
    page = client.get("/admin/devices").get_data(as_text=True)
    return "静默：" in re.search(rf'<tr id="device-{device_id}">(.*?)</tr>', page, re.S).group(1)


def test_silent_counts_working_hours_of_the_deadlines_calendar(app, hall, client, org, clock, query):
    from service.extensions import db
    device, _ = org.device(hall[1], name="大厅评价器")
    relay, _ = org.device(hall[1], channel="qrcode", name="扫码")

    def seen(at):
        with app.app_context():
            db.session.get(Device, device.id).last_seen_at = at
            db.session.commit()

    login(client, "admin")
    seen(datetime(2026, 11, 18, 9, 0, tzinfo=SH))  # Wednesday
    clock.set(datetime(2026, 11, 18, 10, 30, tzinfo=SH))
    assert not _silent_on_page(client, device.id)  # 1.5 working hours
    clock.set(datetime(2026, 11, 18, 11, 30, tzinfo=SH))
    assert _silent_on_page(client, device.id)  # 2.5
    assert "1 台设备超过 2 个工作小时没有上报" in client.get("/admin/devices").get_data(as_text=True)
    assert not _silent_on_page(client, relay.id)  # not watched: rated through a public page

    seen(datetime(2026, 11, 18, 11, 30, tzinfo=SH))
    clock.set(datetime(2026, 11, 18, 14, 30, tzinfo=SH))
    assert not _silent_on_page(client, device.id)  # lunch break: 0.5 + 1.0

    seen(datetime(2026, 11, 20, 17, 0, tzinfo=SH))  # Friday afternoon
    clock.set(datetime(2026, 11, 23, 10, 30, tzinfo=SH))  # Monday
    assert not _silent_on_page(client, device.id)  # 0.5 on Friday, the weekend, 1.5 on Monday
    with app.app_context():
        db.session.add(CalendarOverride(day=datetime(2026, 11, 21).date(), kind="workday"))  # a 调休 Saturday
        db.session.commit()
    assert _silent_on_page(client, device.id)

    seen(datetime(2026, 9, 30, 16, 0, tzinfo=SH))  # before the National Day holiday
    clock.set(datetime(2026, 10, 8, 9, 30, tzinfo=SH))
    assert not _silent_on_page(client, device.id)  # 1.5 + 0.5: the holiday does not count


def test_the_morning_notice_names_silent_devices(app, hall, client, org, clock, query):
    from service.devices import health
    from service.extensions import db
    from tests.support import RobotServer

    robot = RobotServer()
    try:
        device, _ = org.device(hall[1], name="大厅评价器", window="7")
        org.device(hall[1], name="在线的评价器")
        with app.app_context():
            from models import Department
            db.session.scalar(select(Department).where(Department.code == "hall")).notify_webhook = robot.url("hall")
            db.session.commit()
        clock.set(datetime(2026, 11, 18, 8, 30, tzinfo=SH))
        with app.app_context():
            db.session.get(Device, device.id).last_seen_at = datetime(2026, 11, 17, 14, 0, tzinfo=SH)
            for d in db.session.scalars(select(Device).where(Device.id != device.id)):
                d.last_seen_at = datetime(2026, 11, 17, 17, 20, tzinfo=SH)
            ids = health.issue_silent_notice(db.session, clock.now().astimezone(SH).date())
            db.session.commit()
            assert health.issue_silent_notice(db.session, clock.now().astimezone(SH).date()) == []  # once a day
        rows = query(lambda s: s.scalars(select(Notification).where(Notification.id.in_(ids))).all())
        assert [r.kind for r in rows] == ["webhook"]
        text = rows[0].payload["content"]
        assert "设备静默提醒" in text and "大厅评价器（区政务大厅，7号窗口）" in text and "在线的评价器" not in text
    finally:
        robot.stop()


@pytest.mark.parametrize("role,status", [("handler", 403), ("supervisor", 403), ("manager", 200), ("admin", 200)])
def test_who_sees_the_devices(app, hall, client, org, role, status):
    mine, _ = org.device(hall[1], name="大厅平板")
    theirs, _ = org.device(hall[2], name="民政评价器")
    login(client, role)
    resp = client.get("/admin/devices")
    assert resp.status_code == status
    if status != 200:
        return
    page = resp.get_data(as_text=True)
    assert "大厅平板" in page
    assert ("民政评价器" in page) == (role == "admin")  # managers: their subtree only
    assert ("新增设备" in page) == (role == "admin")
    if role == "manager":
        token = csrf_token(page)
        assert client.post(f"/admin/devices/{mine.id}/disable", data={"csrf_token": token}).status_code == 403
        assert add_device(client).status_code == 403
        assert client.get("/admin/audit").status_code == 403


def test_cli_lists_last_seen_and_gives_pairing_codes(app, hall, org, query, shell):
    from service.extensions import db
    quiet, _ = org.device(hall[1], name="quiet-kiosk")
    busy, _ = org.device(hall[1], name="busy-kiosk")
    with app.app_context():
        db.session.get(Device, quiet.id).last_seen_at = utcnow() - timedelta(days=30)
        db.session.get(Device, busy.id).last_seen_at = utcnow()
        db.session.commit()
    lines = {line.split("\t")[1]: line.split("\t") for line in shell("devices", "list").stdout.splitlines()}
    assert lines["quiet-kiosk"][-1] == "SILENT" and lines["busy-kiosk"][-1] != "SILENT"
    assert lines["busy-kiosk"][6][:4].isdigit()  # the last-seen time
    code = shell("devices", "pair-code", str(busy.id)).stdout.strip()
    assert re.fullmatch(r"[A-Z2-9]{6}", code)
    assert app.test_client().post("/api/v1/devices/pair", json={"code": code}).status_code == 200
    assert query(lambda s: s.scalar(select(Rating.id))) is None
