"""Helpers for the web page tests: a department team, cases made directly, and form posting."""
from __future__ import annotations

import functools
import os
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from tests.support import Gunicorn

PASSWORD = "correct-horse-9"
PHONE = "13812345678"
SHOTS = os.environ.get("HCP_TEST_SCREENSHOTS")  # a directory to keep browser screenshots in, if set
CSRF_RE = re.compile(r'name="([\w-]*csrf_token)"[^>]*value="([^"]+)"')


@dataclass
class Team:
    """district → bureau → section, plus an unrelated department; staff and a tablet."""

    district: object
    bureau: object
    section: object
    other: object
    device: object
    key: str


def build_team(org) -> Team:
    district = org.department("district", "示范区政务服务中心")
    bureau = org.department("bureau", "区市场监管局", parent=district)
    section = org.department("section", "登记注册科", parent=bureau)
    other = org.department("other", "区民政局", parent=district)
    staff = [("handler", "handler", section, "张三"), ("handler2", "handler", section, "赵四"),
             ("super", "supervisor", bureau, "李科长"), ("super2", "supervisor", bureau, "钱科长"),
             ("manager", "manager", district, "王局长"), ("outsider", "handler", other, "刘五"),
             ("other-super", "supervisor", other, "孙科长"), ("admin", "admin", other, "系统管理员")]
    add_staff(org.app, staff)
    device, key = org.device(section, channel="hall_tablet", window="5", name="5号窗口平板")
    return Team(district, bureau, section, other, device, key)


@functools.lru_cache(maxsize=1)
def _password_hash() -> str:
    from werkzeug.security import generate_password_hash

    return generate_password_hash(PASSWORD)


def add_staff(app, staff) -> None:
    """Staff users sharing one password hash: a hash costs about a second on a busy machine."""
    from models import User
    from service.extensions import db

    with app.app_context():
        for username, role, dept, name in staff:
            db.session.add(User(username=username, display_name=name, role=role,
                                department_id=dept.id, password_hash=_password_hash()))
        db.session.commit()


def make_case(app, device, assignee: str | None = "handler", real_name: bool = True, level: int = 1,
              rating: dict | None = None, **columns) -> int:
    """A bad rating stored through intake and routed to its case; returns the case id.

    ``rating`` adds to or replaces fields of the intake body (``project_no``, ``comment``,
    ``rater``, ``rated_at`` …); ``columns`` are set on the case afterwards."""
    from sqlalchemy import select

    from models import Case, Device, User
    from models.types import utcnow
    from service.cases.routing import route
    from service.extensions import db
    from service.ratings.intake import store

    with app.app_context():
        body = {"client_id": uuid.uuid4(), "level": level, "rated_at": utcnow() - timedelta(minutes=5),
                "comment": "等候时间太长", "tags": ["wait", "attitude"]}
        if real_name:
            body["rater"] = {"real_name": True, "name": "陈先生", "phone": PHONE}
        body.update(rating or {})
        outcome = store(db.session.connection(), db.session.get(Device, device.id), [body])[0]
        case_id = route(db.session, outcome.rating["id"])
        case = db.session.get(Case, case_id)
        if assignee is not None:
            case.assignee_id = db.session.scalar(select(User.id).where(User.username == assignee))
            case.status = "assigned"
        elif "status" not in columns:
            case.assignee_id, case.status = None, "unassigned"
        for name, value in columns.items():
            setattr(case, name, value)
        db.session.commit()
        return case_id


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token on the page"
    return match.group(2)


def login(client, username: str, password: str = PASSWORD):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return resp


def post_form(client, case_id: int, action: str, fields: dict | None = None, version: int | None = None):
    """Post an action form the way the case page does: prefixed fields, version and token."""
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    data = {f"{action}-csrf_token": csrf_token(page)}
    if version is None:
        match = re.search(rf'name="{action}-version"[^>]*value="(\d+)"', page)
        version = int(match.group(1)) if match else 1
    data[f"{action}-version"] = str(version)
    for name, value in (fields or {}).items():
        data[f"{action}-{name}"] = value
    return client.post(f"/cases/{case_id}/actions/{action}", data=data)


class LiveServer(Gunicorn):
    """hcp under gunicorn in its own process, for the browser; stop() really cuts it off
    (open keep-alive connections included), start() brings it back on the same port."""

    def __init__(self, env: dict, port: int):
        super().__init__(env, port, workers=1, threads=4, log_name="gunicorn.log")


def shot(page, name: str) -> None:
    """Keep a full-page screenshot under $HCP_TEST_SCREENSHOTS, when it is set."""
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def sign_in(page, server, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form; staff land on 我的工单."""
    page.goto(server.url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/cases")
