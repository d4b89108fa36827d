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
from service.org import add_department, add_device, add_item, add_user
from service.extensions import db
from service.insights import counting
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
ITEMS = [("license", "营业执照办理", "market-license"), ("marriage", "结婚登记", "civil-marriage")]
# The 一事一评 loop (docs/applications.md): applications done n days ago, and what happens to
# each invitation: rated, rated and followed up, left to default, or still pending.
APPLICATIONS = [("rated", 2), ("rated", 3), ("followed_up", 4), ("defaulted", 10), ("defaulted", 12),
                ("pending", 1), ("pending", 0)]


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
    # Counted in the loading transaction: the demo's hot spots are there when it returns.
    counting.count(db.session, [o.rating["id"] for o in outcomes if o.status == "created"])
    db.session.commit()
    route_created(outcomes)
    made = _applications(depts, rng)
    # A hall QR (扫码评价) at the marriage registry's window 2, with no ratings yet.
    hall_qr, _ = add_device("婚姻登记2号窗口扫码评价", depts["civil-marriage"], "qrcode", "2", None)
    db.session.commit()
    bad = sum(1 for o in outcomes if o.rating["negative"])
    click.echo(f"demo loaded: {len(outcomes)} ratings, {bad} bad (routed by the worker); "
               f"{len(APPLICATIONS)} applications ({made})")
    click.echo(f"staff logins (password {DEMO_PASSWORD}): " + ", ".join(u for u, *_ in STAFF))
    for device, key in keys:
        click.echo(f"device {device.name} ({device.channel}) key: {key}")
    from service.citizen.hall import link
    click.echo(f"hall QR {hall_qr.name}: {link(hall_qr)}")


def _applications(depts: dict, rng: random.Random) -> str:
    """Items, an approval client and applications with invitations in every state."""
    from models import Invitation
    from service.clients.registry import add_client
    from service.invitations import defaults, rate
    from service.projects import register
    from service.projects.schemas import ProjectIn

    for code, name, dept in ITEMS:
        add_item(code, name, depts[dept])
    client, _ = add_client("区审批系统（示例）", "approval", depts["district"])
    db.session.commit()
    now = utcnow()
    for n, (state, days) in enumerate(APPLICATIONS, start=1):
        done_at = now - timedelta(days=days, hours=1)
        body = ProjectIn().load({
            "item_code": ITEMS[n % len(ITEMS)][0], "stage": "done", "staff_no": f"A{n:02d}",
            "accepted_at": (done_at - timedelta(days=1)).isoformat(), "done_at": done_at.isoformat(),
            "applicant": {"kind": "person", "name": "周申请", "phone": f"139{rng.randint(0, 99999999):08d}"}})
        project_id = register.upsert(db.session, client, f"DEMO-{n:04d}", body).project.id
        db.session.commit()
        if state not in ("rated", "followed_up"):
            continue
        invitation = db.session.scalar(select(Invitation).where(Invitation.project_id == project_id))
        rate.submit(db.session, invitation, None, rng.choice([5, 4, 3]), [], "等候稍久，其余顺利")
        if state == "followed_up":
            rate.submit(db.session, db.session.merge(invitation), "app", 5, [], "问题已解决")
    made = defaults.run(db.session)
    states = [state for state, _ in APPLICATIONS]
    return ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states)) + f"; {made} default ratings"
