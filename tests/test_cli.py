"""The ``hcp`` command (SPEC §5): the console script itself, and its commands run in-process."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from models import Case, CalendarOverride, Department, Device, Rating, User
from service.privacy import key_digest
from tests.support import bearer, hcp, rating_body, wait_for


def test_help_lists_the_commands():
    out = hcp("--help").stdout
    for command in ("departments", "items", "devices", "users", "calendar", "demo", "run", "db"):
        assert command in out


def test_newcomer_flow(app, worker, client, query):
    """Department, device and handler with the CLI; a 非常不满意 rating; its assigned case."""
    hcp("departments", "add", "district", "区政务服务中心")
    hcp("departments", "add", "bureau", "市场监管局", "--parent", "district")
    hcp("items", "add", "license", "营业执照办理", "--department", "bureau")
    key = hcp("devices", "add", "1号窗口", "--department", "district", "--channel", "hall_terminal",
              "--window", "1").stdout.strip()
    assert key.startswith("hcpd_")
    hcp("users", "add", "zhang", "--role", "handler", "--department", "bureau", stdin="s3cret-pass\n")

    stored = query(lambda s: s.scalar(select(Device.key_hash)))
    assert stored == key_digest(key) and key not in stored
    assert query(lambda s: s.scalar(select(User.password_hash))).count("s3cret-pass") == 0
    assert query(lambda s: s.scalar(select(Department.path).where(Department.code == "bureau"))).count("/") == 3

    resp = client.post("/api/v1/ratings", json=rating_body(level=1, item_code="license"), headers=bearer(key))
    assert resp.status_code == 201
    case = wait_for(lambda: query(lambda s: s.scalar(select(Case).where(Case.rating_id == resp.get_json()["id"]))),
                    message="case")
    token = client.post("/api/v1/auth/token", json={"username": "zhang", "password": "s3cret-pass"}).get_json()["token"]
    detail = client.get(f"/api/v1/cases/{case.id}", headers=bearer(token)).get_json()
    assert detail["assignee"] == "zhang" and detail["status"] == "assigned"


def test_cli_refuses_bad_input(app, shell):
    assert shell("departments", "add", "x", "X", "--parent", "nope", check=False).returncode != 0
    shell("departments", "add", "x", "X")
    assert "already exists" in shell("departments", "add", "x", "Y", check=False).stderr
    assert shell("devices", "add", "k", "--department", "x", "--channel", "fax", check=False).returncode != 0
    assert shell("devices", "add", "k", "--department", "x", "--channel", "pc", "--rate-limit", "lots",
               check=False).returncode != 0
    assert "8 characters" in shell("users", "add", "u", "--role", "handler", "--department", "x",
                                 stdin="short\n", check=False).stderr


def test_calendar_commands(app, query, shell):
    assert shell("calendar", "due", "2021-09-30", "--working-days", "1").stdout.strip() == "2021-10-08"
    assert shell("calendar", "due", "2021-09-30T10:00:00+08:00", "--working-days", "15").stdout.strip() == "2021-10-27"
    assert shell("calendar", "due", "2026-12-20", "--working-days", "15").stdout.strip() == "2027-01-08"
    shell("calendar", "add-holiday", "2027-01-01", "--note", "元旦")
    assert shell("calendar", "due", "2026-12-20", "--working-days", "15").stdout.strip() == "2027-01-11"
    shell("calendar", "add-workday", "2027-01-09")
    assert query(lambda s: s.get(CalendarOverride, date(2027, 1, 9)).kind) == "workday"
    assert shell("calendar", "due", "not-a-date", "-n", "1", check=False).returncode != 0


def test_demo_loads_and_routes(app, worker, query, shell):
    out = shell("demo", "--ratings", "60").stdout
    assert "handler" in out and "hcpd_" in out
    total = query(lambda s: s.scalar(select(Rating.id).order_by(Rating.id.desc()).limit(1)))
    assert total
    bad = query(lambda s: s.scalars(select(Rating.id).where(Rating.negative.is_(True))).all())
    assert bad and f"{len(bad)} bad" in out  # 60 ratings at seed 2021 include bad ones
    routed = lambda: set(query(lambda s: s.scalars(select(Case.rating_id)).all()))  # noqa: E731
    wait_for(lambda: routed() == set(bad), message="demo cases")
    assert shell("demo", check=False).returncode != 0  # only once
    # Applications with invitations in every state: rated, followed up, defaulted, pending.
    assert "7 applications (2 rated, 1 followed_up, 2 defaulted, 2 pending; 2 default ratings)" in out
    by_assess = query(lambda s: sorted(s.execute(select(Rating.assess_number, Rating.is_default).where(
        Rating.invitation_id.is_not(None))).all()))
    assert by_assess == [(1, False)] * 3 + [(1, True)] * 2 + [(2, False)]


def test_disabled_device_and_user_are_refused_until_enabled(app, client, query, monkeypatch, shell):
    from tests.web_support import login

    monkeypatch.setattr(app.config["HCP_SETTINGS"], "device_cache_seconds", 1.0)
    shell("departments", "add", "district", "区政务服务中心")
    key = shell("devices", "add", "1号窗口", "--department", "district", "--channel", "hall_terminal").stdout.strip()
    shell("users", "add", "zhang", "--role", "handler", "--department", "district", stdin="s3cret-pass\n")
    device_id = query(lambda s: s.scalar(select(Device.id)))

    def post():
        return client.post("/api/v1/ratings", json=rating_body(level=5), headers=bearer(key)).status_code

    assert post() == 201
    assert "refuses its key within" in shell("devices", "disable", str(device_id)).stdout
    wait_for(lambda: post() == 401, timeout=10, message="the disabled key to be refused")
    shell("devices", "enable", str(device_id))
    wait_for(lambda: post() == 201, timeout=10, message="the enabled key to be taken again")

    token = client.post("/api/v1/auth/token", json={"username": "zhang", "password": "s3cret-pass"}).get_json()["token"]
    login(client, "zhang", "s3cret-pass")
    assert client.get("/cases").status_code == 200
    shell("users", "disable", "zhang")
    assert client.get("/api/v1/cases", headers=bearer(token)).status_code == 401
    assert client.get("/cases").status_code == 302  # the web session ends too
    assert client.post("/api/v1/auth/token", json={"username": "zhang", "password": "s3cret-pass"}).status_code == 401
    shell("users", "enable", "zhang")
    assert client.post("/api/v1/auth/token", json={"username": "zhang", "password": "s3cret-pass"}).status_code == 201
    assert "no device 999" in shell("devices", "disable", "999", check=False).stderr
