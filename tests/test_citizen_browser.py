"""The whole 一事一评 loop in headless Chromium at 390×844: the approval system registers
a done application, the link arrives at a fake SMS gateway, the citizen rates 2 with a
reason, the case appears, the citizen follows up, and an expired link says 评价已截止."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from models import Case, Invitation, Rating
from models.types import utcnow
from tests import support
from tests.support import bearer, wait_for
from tests.test_invitations import recent
from tests.web_support import LiveServer

pytestmark = pytest.mark.browser
LINK = re.compile(r"(http://\S+/r/[A-Za-z0-9_-]{24})")


# What the page shows a citizen, measured in the browser: visible text below 4.5:1 contrast
# against the background it sits on (WCAG's relative luminance), form controls without a
# label, and controls whose target (a radio's or checkbox's is its label) is under 44×44 px.
ACCESSIBILITY = """() => {
  const rgb = s => s.match(/[\\d.]+/g).map(Number);
  const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const background = el => { for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor); if (c.length < 4 || c[3] > 0) return c; }
    return [255, 255, 255]; };
  const shown = el => { const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none"; };
  const low = [], small = [], unlabelled = [];
  for (const el of document.querySelectorAll("body *")) {
    if (!shown(el) || ![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const f = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(f, b) + 0.05) / (Math.min(f, b) + 0.05);
    if (ratio < 4.5) low.push(`${el.tagName} ${el.textContent.trim().slice(0, 12)} ${ratio.toFixed(2)}`);
  }
  for (const el of document.querySelectorAll("button, input, textarea, select")) {
    if (el.type === "hidden") continue;
    const label = el.labels && el.labels[0];
    if (el.tagName !== "BUTTON" && !label && !el.getAttribute("aria-label")) unlabelled.push(el.name || el.type);
    const target = ["radio", "checkbox"].includes(el.type) && label ? label : el;
    if (!shown(target)) continue;
    const r = target.getBoundingClientRect();
    if (r.width < 44 || r.height < 44)
      small.push(`${el.name || el.tagName} ${r.width.toFixed(0)}×${r.height.toFixed(0)}`);
  }
  return {low, small, unlabelled};
}"""


@pytest.fixture(scope="module")
def gateway():
    server = support.RobotServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(app, hcp_env, gateway):
    """gunicorn and a worker of this module's own queue, with HCP_SMS_URL and HCP_PUBLIC_URL set."""
    port = support.free_port()
    env = {**hcp_env, "HCP_INSTANCE": hcp_env["HCP_INSTANCE"] + "-citizen", "HCP_SMS_URL": gateway.url("sms"),
           "HCP_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    server = LiveServer(env, port)
    server.start()
    worker = support.CeleryWorker(env, beat=False, name="citizen")
    worker.start()
    yield server
    worker.stop()
    server.stop()


@pytest.fixture
def phone_page(browser):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True,
                              has_touch=True)
    ctx.set_default_timeout(15000)
    yield ctx, ctx.new_page()
    ctx.close()


def sms_link(gateway, project_no: str) -> str:
    def found():
        with gateway.lock:
            texts = [b["text"] for path, b in gateway.posts if path.startswith("/hook/sms")]
        return texts[-1] if len(texts) >= int(project_no.split("-")[1]) else None
    return LINK.search(wait_for(found, timeout=60, message=f"the SMS of {project_no}")).group(1)


def test_the_loop_on_a_phone(app, org, stack, gateway, phone_page, query):
    from service.clients.registry import add_client
    from service.extensions import db

    gateway.posts.clear()
    market = org.department("market", "区市场监管局")
    org.item("license", market)
    org.user("h1", "handler", market)
    _, key = org._build(lambda: add_client("审批系统", "approval", db.session.merge(market)))
    assert requests.put(stack.url + "/api/v1/projects/P-1", json=recent("done"), headers=bearer(key),
                        timeout=10).status_code == 201
    link = sms_link(gateway, "P-1")

    ctx, page = phone_page
    page.goto(link)
    assert page.locator("h1").inner_text() == "请对本次服务作出评价"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    assert not page.is_visible("text=态度生硬")  # reasons appear once a level is chosen
    page.get_by_label("不满意", exact=True).check()
    assert page.is_visible("text=态度生硬") and not page.is_visible("text=热情周到")
    assert page.evaluate(ACCESSIBILITY) == {"low": [], "small": [], "unlabelled": []}
    page.get_by_role("button", name="提交评价").click()
    assert "请至少选择一项原因" in page.get_by_role("alert").inner_text()  # checked in the page first
    page.get_by_label("态度生硬、言语不文明").check()
    page.get_by_role("button", name="提交评价").click()
    page.wait_for_selector("h1:has-text('已评价')")
    assert "不满意" in page.inner_text("section.given")

    first = query(lambda s: s.scalar(select(Rating).where(Rating.project_no == "P-1")))
    assert (first.channel, first.level, first.reasons) == ("sms", 2, ["off_att_rude"])
    wait_for(lambda: query(lambda s: s.scalar(select(Case.id).where(Case.rating_id == first.id))),
             timeout=60, message="the case of the bad rating")

    page.get_by_label("满意", exact=True).check()
    page.get_by_role("button", name="提交追评").click()
    page.wait_for_selector("text=您的追评")
    follow = query(lambda s: s.scalar(select(Rating).where(Rating.assess_number == 2)))
    assert follow.followup_of == first.id and follow.level == 4
    assert ctx.cookies() == []  # nothing set along the way

    assert requests.put(stack.url + "/api/v1/projects/P-2", json=recent("done"), headers=bearer(key),
                        timeout=10).status_code == 201
    late = sms_link(gateway, "P-2")
    with app.app_context():
        db.session.execute(update(Invitation).where(Invitation.id != first.invitation_id)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    page.goto(late)
    assert page.locator("h1").inner_text() == "评价已截止"

    size = sum(len(requests.get(f"{stack.url}/static/{name}", timeout=10).content)
               for name in ("citizen.js", "citizen.css"))
    assert size <= 50 * 1024
