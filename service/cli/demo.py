"""``hcp demo``: a small district with devices, staff and a month of ratings to try hcp on."""
from __future__ import annotations

import random
import uuid
from datetime import timedelta

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from models import Department
from models.types import utcnow
from service.org import add_department, add_device, add_user
from service.extensions import db
from service.ratings.intake import route_created, store

DEMO_PASSWORD = "demo-pass-2024"
TREE = [
    ("district", "示范区政务服务中心", None),
    ("civil", "区民政局", "district"),
    ("civil-marriage", "婚姻登记科", "civil"),
    ("market", "区市场监管局", "district"),
    ("market-license", "登记注册科", "market"),
]
STAFF = [
    ("admin", "admin", "district", "系统管理员"),
    ("manager", "manager", "district", "王局长"),
    ("supervisor", "supervisor", "market", "李科长"),
    ("handler", "handler", "market-license", "张三"),
    ("handler2", "handler", "market-license", "赵四"),
    ("civil-handler", "handler", "civil-marriage", "刘五"),
]
DEVICES = [("1号窗口评价器", "market-license", "hall_terminal", "1"),
           ("2号窗口平板", "civil-marriage", "hall_tablet", "2"),
           ("网上办事大厅", "district", "pc", None)]
COMMENTS = ["等候时间太长", "工作人员态度不好", "材料要求没有一次性告知", "系统故障无法办理"]


@click.command()
@click.option("--ratings", default=300, show_default=True, help="how many ratings to make")
@click.option("--seed", default=2021, show_default=True)
@with_appcontext
def demo(ratings, seed):
    """Load demo departments, staff, devices and ratings (once; bad ones are routed)."""
    if db.session.scalar(select(Department.id).where(Department.code == "district")):
        raise click.ClickException("demo data is already loaded")
    rng = random.Random(seed)
    depts = {}
    for code, name, parent in TREE:
        depts[code] = add_department(code, name, depts.get(parent))
    for username, role, dept, name in STAFF:
        add_user(username, DEMO_PASSWORD, role, depts[dept], name)
    keys = []
    for name, dept, channel, window in DEVICES:
        device, key = add_device(name, depts[dept], channel, window, None)
        keys.append((device, key))
    db.session.flush()

    now = utcnow()
    outcomes = []
    for device, _ in keys:
        bodies = []
        for _ in range(ratings // len(keys)):
            level = rng.choices([5, 4, 3, 2, 1], weights=[80, 10, 4, 3, 3])[0]
            body = {"client_id": uuid.UUID(int=rng.getrandbits(128), version=4), "level": level,
                    "rated_at": now - timedelta(minutes=rng.randint(5, 60 * 24 * 30))}
            if level <= 2:
                body["comment"] = rng.choice(COMMENTS)
                body["rater"] = {"real_name": True, "name": "陈先生",
                                 "phone": f"138{rng.randint(0, 99999999):08d}"}
            bodies.append(body)
        outcomes += store(db.session.connection(), device, bodies)
    db.session.commit()
    route_created(outcomes)
    bad = sum(1 for o in outcomes if o.rating["negative"])
    click.echo(f"demo loaded: {len(outcomes)} ratings, {bad} bad (routed by the worker)")
    click.echo(f"staff logins (password {DEMO_PASSWORD}): " + ", ".join(u for u, *_ in STAFF))
    for device, key in keys:
        click.echo(f"device {device.name} ({device.channel}) key: {key}")
