"""The pages in headless Chromium (Playwright) against hcp running under gunicorn.

A handler closes a case through the pages; a supervisor approves an invalid claim; the
hall tablet page posts ratings, and ratings tapped while the server is stopped arrive
once it is back, each exactly once.
"""
from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import func, select

from models import Case, CaseEvent, Rating
from models.types import utcnow
from tests.support import bearer, rating_body, wait_for
from tests.web_support import PHONE, build_team, make_case, shot, sign_in

pytestmark = pytest.mark.browser



@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    ctx.set_default_timeout(15000)
    yield ctx
    ctx.close()


@pytest.fixture
def team(org):
    return build_team(org)


def sign_out(page):
    page.click("text=退出登录")
    page.wait_for_selector("h1:has-text('工作人员登录')")


def count_ratings(query, **where):
    return query(lambda s: s.scalar(select(func.count(Rating.id)).filter_by(**where)))


# ---------------------------------------------------------------- staff pages

def test_handler_closes_a_case_through_the_pages(live_server, context, team, query, worker):
    body = rating_body(level=1, comment="等了一个多小时", tags=["wait"],
                       rater={"real_name": True, "name": "陈先生", "phone": PHONE})
    body["rated_at"] = "2026-01-05T09:30:00+08:00"
    resp = requests.post(live_server.url + "/api/v1/ratings", json=body, headers=bearer(team.key), timeout=10)
    assert resp.status_code == 201
    case_id = wait_for(lambda: query(lambda s: s.scalar(select(Case.id))), timeout=60, message="the case")

    page = context.new_page()
    sign_in(page, live_server, "handler")
    row = page.locator(f"a[href='/cases/{case_id}']")
    assert row.is_visible()
    assert "待核实" in page.inner_text("table.cases")
    shot(page, "worklist.png")
    row.click()

    assert "138******78" in page.inner_text("#rater-phone")
    page.click("text=查看电话")
    assert page.inner_text("#rater-phone") == PHONE

    page.check("#verify-contacted")
    page.click("#form-verify button[type=submit]")
    page.wait_for_selector(".flash.success")
    assert "整改中" in page.inner_text("h1")

    page.fill("#rectify-cause", "上午窗口人手不足")
    page.fill("#rectify-measure", "高峰时段增开两个窗口")
    page.click("#form-rectify button[type=submit]")
    page.wait_for_selector("h1:has-text('待反馈')")

    page.check("#feedback-contacted")
    page.check("#feedback-satisfied-0")
    page.click("#form-feedback button[type=submit]")
    page.wait_for_selector("h1:has-text('已办结')")
    shot(page, "case.png")

    history = page.inner_text("section.history")
    for label in ("生成工单", "查看评价人电话", "回访核实", "整改", "反馈办结", "高峰时段增开两个窗口"):
        assert label in history
    assert query(lambda s: [e.action for e in s.scalars(select(CaseEvent).order_by(CaseEvent.id))]) == \
        ["route", "reveal", "verify", "rectify", "feedback"]
    case = query(lambda s: s.get(Case, case_id))
    assert (case.status, case.outcome, case.satisfied) == ("closed", "rectified", True)


def test_supervisor_approves_a_handlers_invalid_claim(app, live_server, context, team, query):
    case_id = make_case(app, team.device)
    page = context.new_page()
    sign_in(page, live_server, "handler")
    page.goto(f"{live_server.url}/cases/{case_id}")
    page.fill("#claim_invalid-reason", "评价人表示误触了按键")
    page.click("#form-claim_invalid button[type=submit]")
    page.wait_for_selector("h1:has-text('无效差评审核')")
    sign_out(page)

    sign_in(page, live_server, "super")
    page.click("text=审核队列")
    page.click(f"#claims a[href='/cases/{case_id}']")
    assert "评价人表示误触了按键" in page.inner_text("section.history")
    page.click("#form-approve button[type=submit]")
    page.wait_for_selector("h1:has-text('已办结')")
    assert "无效差评" in page.inner_text("h1")
    case = query(lambda s: s.get(Case, case_id))
    assert (case.status, case.outcome) == ("closed", "invalid")


# ---------------------------------------------------------------- hall tablet page

def open_kiosk(context, server, key):
    page = context.new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{server.url}/kiosk#key={key}")
    page.wait_for_selector("#screen-faces:not([hidden])")
    assert "#key" not in page.url  # the key does not stay in the address bar
    return page


def tap(page, level, reasons=(), comment=None):
    """Tap a face; for a bad rating choose reasons and a comment (or skip); back to the faces."""
    page.click(f".face[data-level='{level}']")
    if level <= 2:
        page.wait_for_selector("#screen-details:not([hidden])")
        for code in reasons:
            page.click(f".tag[data-reason='{code}']")
        if comment:
            page.fill("#comment", comment)
        page.click("#details-submit" if (reasons or comment) else "#details-skip")
    page.wait_for_selector("#screen-thanks:not([hidden])")
    page.click("#screen-thanks")  # a tap returns at once instead of waiting for the countdown
    page.wait_for_selector("#screen-faces:not([hidden])")


def count_cases(query):
    return query(lambda s: s.scalar(select(func.count(Case.id))))


def test_kiosk_posts_ratings_with_its_device_key(live_server, context, team, query, worker):
    page = context.new_page()
    page.goto(f"{live_server.url}/kiosk")
    page.wait_for_selector("#screen-setup:not([hidden])")  # no key yet: the setup screen
    page.fill("#setup-key", team.key)
    page.click("#setup-form button")
    page.wait_for_selector("#screen-faces:not([hidden])")
    assert [page.inner_text(f".face[data-level='{n}'] span") for n in (5, 4, 3, 2, 1)] == \
        ["非常满意", "满意", "基本满意", "不满意", "非常不满意"]
    shot(page, "kiosk.png")

    tap(page, 4)
    wait_for(lambda: count_ratings(query) == 1, message="the rating")
    page.click(".face[data-level='1']")
    # the hall's reasons (评价指标) offered for 非常不满意, none of the good ones
    assert page.is_visible(".tag[data-reason='off_eff_wait']") and page.is_hidden(".tag[data-reason='off_att_warm']")
    page.click(".tag[data-reason='off_eff_wait']")
    page.click(".tag[data-reason='off_skill_untold']")
    page.fill("#comment", "取号机坏了，等了很久")
    shot(page, "kiosk-details.png")
    page.click("#details-submit")
    page.wait_for_selector("#screen-thanks:not([hidden])")
    assert "感谢您的评价" in page.inner_text("#screen-thanks")
    wait_for(lambda: count_ratings(query) == 2, message="the bad rating")
    rows = query(lambda s: [(r.level, r.channel, r.window, r.reasons, r.comment)
                            for r in s.scalars(select(Rating).order_by(Rating.level))])
    assert rows == [(1, "hall_tablet", "5", ["off_eff_wait", "off_skill_untold"], "取号机坏了，等了很久"),
                    (4, "hall_tablet", "5", None, None)]
    # the thank-you screen goes back to the faces by itself
    page.wait_for_selector("#screen-faces:not([hidden])", timeout=15000)
    assert page.get_attribute("#kiosk", "data-pending") == "0"
    # the bad rating from the tablet becomes a case like any other
    wait_for(lambda: count_cases(query) == 1, timeout=60, message="the bad rating's case")


def test_kiosk_ratings_made_while_the_server_is_down_arrive_once(live_server, context, team, query, worker):
    page = open_kiosk(context, live_server, team.key)
    live_server.stop()
    try:
        tap(page, 5)
        tap(page, 3)
        tap(page, 2, reasons=["off_att_rude"], comment="服务态度差")
        assert page.get_attribute("#kiosk", "data-pending") == "3"
        assert page.is_visible("#pending")
        queued = page.evaluate("JSON.parse(localStorage.getItem('hcp.kiosk.queue'))")
    finally:
        back_at = utcnow()
        live_server.start()
    assert count_ratings(query) == 0
    wait_for(lambda: count_ratings(query) == 3, timeout=90, message="the queued ratings to arrive")
    page.wait_for_selector("#kiosk[data-pending='0']")
    stored = query(lambda s: {r.client_id: (r.level, r.rated_at) for r in s.scalars(select(Rating))})
    assert set(stored) == {item["body"]["client_id"] for item in queued}
    assert sorted(level for level, _ in stored.values()) == [2, 3, 5]
    # rated_at is the moment of the tap, not of the delivery
    assert all(rated_at <= back_at for _, rated_at in stored.values())

    # A reply lost on the way looks, to the tablet, like a rating still queued: sending it
    # again is answered 200 (a replay) and it leaves the queue without a second row.
    page.evaluate("q => localStorage.setItem('hcp.kiosk.queue', JSON.stringify(q))", queued[:1])
    tap(page, 4)
    page.wait_for_selector("#kiosk[data-pending='0']")
    wait_for(lambda: count_ratings(query) == 4, message="the new rating")
    assert count_ratings(query, client_id=queued[0]["body"]["client_id"]) == 1
    assert json.loads(page.evaluate("localStorage.getItem('hcp.kiosk.rejected') || '[]'")) == []
    wait_for(lambda: count_cases(query) == 1, timeout=60, message="the bad rating's case")


def test_supervisor_searches_and_assigns_ticked_cases(app, live_server, context, team, query):
    wanted = make_case(app, team.device, assignee=None, rating={"project_no": "BJ2026-7788"})
    second = make_case(app, team.device, assignee=None)
    make_case(app, team.device, assignee=None)
    page = context.new_page()
    sign_in(page, live_server, "super")
    page.fill("input[name=q]", "BJ2026-7788")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/cases?**")
    assert page.locator("table.cases a[href^='/cases/']").all_inner_texts() == [f"#{wanted}"]

    page.goto(live_server.url + "/cases")
    page.check(f"input[name=ids][value='{wanted}']")
    page.check(f"input[name=ids][value='{second}']")
    assert page.inner_text("#batch-count") == "已选 2 件"
    page.select_option("#batch-action", "assign")
    page.select_option("#batch-assignee", "handler2")
    page.click("#batch button[type=submit]")
    page.wait_for_selector(".flash.success")
    assert "2 件已完成" in page.inner_text(".flash.success")
    shot(page, "batch-assigned.png")
    rows = query(lambda s: {c.id: (c.status, c.assignee.username if c.assignee else None)
                            for c in s.scalars(select(Case))})
    assert rows[wanted] == rows[second] == ("assigned", "handler2")
    assert sum(1 for status, _ in rows.values() if status == "unassigned") == 1


def test_kiosk_keeps_a_rating_whose_reason_was_withdrawn(live_server, context, team, query, tmp_path, shell):
    """The reason table replaced while the tablet's page is open: the server refuses the old
    code (422), and the tablet sends the rating again with the code as a free tag."""
    page = open_kiosk(context, live_server, team.key)
    table = tmp_path / "reasons.csv"
    table.write_text("code,label,dimension,scope,levels\noff_new_queue,取号难,服务效率,offline,12\n", encoding="utf-8")
    shell("reasons", "import", str(table))
    tap(page, 1, reasons=["off_eff_wait"])
    wait_for(lambda: count_ratings(query) == 1, message="the rating, without its withdrawn reason")
    [row] = query(lambda s: [(r.level, r.reasons, r.tags) for r in s.scalars(select(Rating))])
    assert row == (1, None, ["off_eff_wait"])
    page.wait_for_selector("#kiosk[data-pending='0']")
    assert page.evaluate("JSON.parse(localStorage.getItem('hcp.kiosk.rejected') || '[]')") == []
