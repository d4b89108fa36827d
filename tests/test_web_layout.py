"""Every staff page, the hall tablet page and the error pages at 1366×768 and at 390×844.

On each, nothing scrolls sideways (the page is no wider than the window) and the
controls a person needs there are on screen: 退出登录 on one line, the case page's
columns side by side or stacked but never overlapping, all five faces of the tablet.
"""
from __future__ import annotations

import pytest

from tests.web_support import build_team, make_case, shot, sign_in

pytestmark = pytest.mark.browser

SIZES = {"desktop": (1366, 768), "phone": (390, 844)}
LONG_COMMENT = "窗口工作人员让我来回跑了三趟，材料清单和网上公布的不一致，" * 4


@pytest.fixture(params=list(SIZES))
def size(request):
    return request.param


@pytest.fixture
def screen(browser, size):
    width, height = SIZES[size]
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    ctx.set_default_timeout(15000)
    page = ctx.new_page()
    yield page
    ctx.close()


@pytest.fixture
def team(app, org):
    team = build_team(org)
    team.case_id = make_case(app, team.device)
    make_case(app, team.device, assignee=None)
    team.claim_id = make_case(app, team.device, status="invalid_review")
    return team


def fits(page) -> None:
    """Nothing is wider than the window: no sideways scrolling."""
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"the page is {width}px wide in a {inner}px window"


def on_screen(page, selector: str, vertical: bool = False) -> dict:
    """The element is visible and lies inside the window (horizontally; ``vertical`` too)."""
    el = page.locator(selector).first
    assert el.is_visible(), f"{selector} is not visible"
    box = el.bounding_box()
    inner_w, inner_h = page.evaluate("[window.innerWidth, window.innerHeight]")
    assert box["x"] >= 0 and box["x"] + box["width"] <= inner_w + 0.5, (selector, box, inner_w)
    if vertical:
        assert box["y"] >= 0 and box["y"] + box["height"] <= inner_h + 0.5, (selector, box, inner_h)
    return box


def one_line(page, selector: str) -> None:
    lines = page.evaluate("""s => { const r = document.createRange();
        r.selectNodeContents(document.querySelector(s)); return r.getClientRects().length; }""", selector)
    assert lines == 1, f"{selector} wraps onto {lines} lines"


def top_bar(page) -> None:
    fits(page)
    on_screen(page, ".topbar .brand")
    on_screen(page, ".topbar button:has-text('退出登录')")
    one_line(page, ".topbar button.link")
    on_screen(page, ".mainnav a:has-text('我的工单')")


def test_login_page(live_server, screen, size):
    screen.goto(live_server.url + "/login")
    fits(screen)
    for selector in ("input[name=username]", "input[name=password]", "button[type=submit]"):
        on_screen(screen, selector)
    shot(screen, f"login-{size}.png")


def test_worklist(live_server, screen, size, team):
    sign_in(screen, live_server, "super")
    top_bar(screen)
    for selector in ("input[name=q]", ".filters button[type=submit]", "#batch button[type=submit]",
                     f"input[name=ids][value='{team.case_id}']", f"table.cases a[href='/cases/{team.case_id}']"):
        on_screen(screen, selector)
    on_screen(screen, "table.cases .level")
    shot(screen, f"worklist-{size}.png")


def long_comments(session):
    from sqlalchemy import update

    from models import Rating

    session.execute(update(Rating).values(comment=LONG_COMMENT))
    session.commit()


def test_case_page(live_server, screen, size, team, query):
    query(long_comments)
    sign_in(screen, live_server, "handler")
    screen.goto(f"{live_server.url}/cases/{team.case_id}")
    top_bar(screen)
    info = on_screen(screen, ".case-info")
    actions = on_screen(screen, ".case-actions")
    overlap_x = min(info["x"] + info["width"], actions["x"] + actions["width"]) - max(info["x"], actions["x"])
    overlap_y = min(info["y"] + info["height"], actions["y"] + actions["height"]) - max(info["y"], actions["y"])
    assert overlap_x <= 0 or overlap_y <= 0, ("the columns overlap", info, actions)
    for selector in ("#form-verify button[type=submit]", "#form-claim_invalid textarea", "section.history"):
        on_screen(screen, selector)
    shot(screen, f"case-{size}.png")


def test_queue(live_server, screen, size, team):
    sign_in(screen, live_server, "super")
    screen.goto(live_server.url + "/queue")
    top_bar(screen)
    on_screen(screen, f"#claims a[href='/cases/{team.claim_id}']")
    on_screen(screen, "#unassigned table.cases")
    shot(screen, f"queue-{size}.png")


def test_dashboard(live_server, screen, size, team):
    sign_in(screen, live_server, "manager")
    screen.goto(live_server.url + "/dashboard")
    screen.wait_for_selector("body[data-loaded=yes]")
    top_bar(screen)
    for selector in ("#pickers button[type=submit]", "#export-xlsx", "[data-key=disposal_rate]",
                     "#chart-bad canvas", "table.warnings"):
        on_screen(screen, selector)
    shot(screen, f"dashboard-{size}.png")


def test_kiosk_shows_all_five_faces(live_server, screen, size, team):
    screen.goto(f"{live_server.url}/kiosk")  # no key yet: the setup screen
    screen.wait_for_selector("#screen-setup:not([hidden])")
    fits(screen)
    on_screen(screen, "#setup-key", vertical=True)
    on_screen(screen, "#setup-form button", vertical=True)
    screen.fill("#setup-key", team.key)
    screen.click("#setup-form button")
    screen.wait_for_selector("#screen-faces:not([hidden])")
    fits(screen)
    for level in (5, 4, 3, 2, 1):
        on_screen(screen, f".face[data-level='{level}']", vertical=True)
    shot(screen, f"kiosk-{size}.png")
    screen.click(".face[data-level='1']")
    screen.wait_for_selector("#screen-details:not([hidden])")
    fits(screen)
    for selector in (".tag[data-reason='off_eff_wait']", "#comment", "#details-submit", "#details-skip"):
        on_screen(screen, selector, vertical=True)
    shot(screen, f"kiosk-details-{size}.png")


@pytest.mark.parametrize("who, path, title", [
    ("handler", "/queue", "没有权限"),
    ("handler", "/cases/999999999", "页面不存在"),
    ("handler", "/no-such-page", "页面不存在"),
    (None, "/no-such-page", "页面不存在"),
])
def test_error_pages(live_server, screen, size, team, who, path, title):
    if who:
        sign_in(screen, live_server, who)
    resp = screen.goto(live_server.url + path)
    assert resp.status in (403, 404)
    assert screen.inner_text("h1") == title
    fits(screen)
    on_screen(screen, "a:has-text('返回首页')")
    if who:
        top_bar(screen)
    shot(screen, f"error-{resp.status}-{size}.png")
