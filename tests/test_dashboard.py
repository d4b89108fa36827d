"""The managers' dashboard: login, pickers, and non-empty ECharts charts on demo data."""
from __future__ import annotations

import math
import os
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from models import Case, Department, Rating, User
from service.cases.warnings import Cards
from tests.support import free_port


@pytest.fixture
def demo(app):
    """``hcp demo`` data with every bad rating routed, a few cases closed and two warnings."""
    from service.cases.routing import route
    from service.cases.workflow import apply
    from service.extensions import db

    from service.cli.demo import demo as demo_command

    result = app.test_cli_runner().invoke(demo_command, ["--ratings", "300"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        for rid in db.session.scalars(select(Rating.id).where(Rating.negative.is_(True))):
            route(db.session, rid)
        db.session.commit()
        cases = list(db.session.scalars(select(Case).where(Case.assignee_id.is_not(None)).order_by(Case.id)))
        assert len(cases) >= 5
        for case in cases[:3]:
            handler = db.session.get(User, case.assignee_id)
            apply(db.session, case, handler, "verify", {"contacted": True})
            apply(db.session, case, handler, "rectify", {"measures": {"cause": "窗口少", "action": "增开窗口"}})
            apply(db.session, case, handler, "feedback", {"contacted": True, "satisfied": True})
        # a red and a yellow card, as computed today: past the closure deadline, and at it
        today = Cards.now(db.session).today
        for case, due in ((cases[3], today - timedelta(days=3)), (cases[4], today)):
            apply(db.session, case, db.session.get(User, case.assignee_id), "verify", {"contacted": True})
            case.close_due = due
        db.session.commit()
        # 300 kiosk ratings plus those of the demo's applications (rated, followed up, defaulted)
        return db.session.scalar(select(func.count()).select_from(Rating))


@pytest.fixture
def live_server(app):
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=10)


def test_dashboard_needs_a_viewer(client, org):
    dept = org.department("district", "示范区")
    org.user("handler", "handler", dept, password="pw-handler-1")
    org.user("manager", "manager", dept, password="pw-manager-1")
    resp = client.get("/dashboard")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]

    def login(username, password):
        import re
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get("/login").get_data(as_text=True))
        return client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token.group(1)})

    login("handler", "pw-handler-1")
    assert client.get("/dashboard").status_code == 403
    client.post("/logout", data={})
    client.delete_cookie("session")
    login("manager", "pw-manager-1")
    page = client.get("/dashboard")
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    html = page.get_data(as_text=True)
    assert "好差评统计分析" in html and "vendor/echarts/echarts.min.js" in html and "示范区" in html
    assert client.get("/static/vendor/echarts/echarts.min.js").status_code == 200


def test_the_yellow_card_definition_counts_in_the_deadline_unit(app, client, org):
    """The dashboard's 黄牌 definition says HCP_YELLOW_CLOSE_DAYS in HCP_DEADLINE_UNIT's label
    (service.cases.deadlines.unit_label): 个工作日, or 天 where limits count natural days."""
    import re

    dept = org.department("district", "示范区")
    org.user("manager", "manager", dept, password="pw-manager-1")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": "manager", "password": "pw-manager-1", "csrf_token": token.group(1)})

    def yellow():
        html = client.get("/dashboard").get_data(as_text=True)
        return re.search(r'id="kpi-yellow".*?<small class="def">([^<]*)</small>', html, re.S).group(1)

    assert yellow() == "回访期限当天、或距办结期限不足3个工作日的工单"
    settings = app.config["HCP_SETTINGS"]
    saved = settings.deadline_unit, settings.yellow_close_days
    settings.deadline_unit, settings.yellow_close_days = "natural", 5
    try:
        assert yellow() == "回访期限当天、或距办结期限不足5天的工单"
    finally:
        settings.deadline_unit, settings.yellow_close_days = saved


@pytest.mark.browser
def test_manager_sees_rendered_charts(demo, live_server, browser):
    ctx, page = _signed_in_dashboard(browser, live_server, 1400, 1600)
    try:
        assert page.locator("h1").inner_text() == "好差评统计分析"
        assert page.locator("#error").is_hidden()
        series = page.evaluate("""() => Object.fromEntries(Object.entries(window.hcpCharts).map(
            ([k, c]) => [k, c.getOption().series.map(s => s.data.length)]))""")
        assert all(n and all(series[k]) for k, n in series.items()), series
        assert page.locator("#chart-good-rate canvas").count() == 1
        assert demo > 300 and page.locator("[data-key=total]").inner_text() == str(demo)
        # the 一事一评 figures (SPEC §7): the demo's applications, some rated, some defaulted
        for key in ("good_rate_rated", "active_rating_rate", "rated_projects_rate"):
            assert page.locator(f"[data-key={key}]").inner_text().endswith("%"), key
        rated, projects = page.inner_text("#kpi-rated_projects_rate .parts").split(" / ")
        assert 0 < int(rated) < int(projects)
        assert page.evaluate("window.hcpCharts.projects.getOption().yAxis[0].data.length") >= 1
        assert page.locator("#warning-rows tr.warn-red").count() == 1
        assert page.locator("#warning-rows tr.warn-yellow").count() == 1
        href = page.get_attribute("#export-xlsx", "href")
        assert "format=xlsx" in href and "department=district" in href
        with page.expect_download() as dl:
            page.click("#export-xlsx")
        assert dl.value.suggested_filename.endswith(".xlsx")
        # a narrower department changes the figures
        page.select_option("select[name=department]", "civil")
        page.evaluate("document.body.dataset.loaded = ''")
        page.click("form#pickers button[type=submit]")
        page.wait_for_selector("body[data-loaded=yes]")
        assert int(page.locator("[data-key=total]").inner_text()) < 300
        if os.environ.get("HCP_DASHBOARD_SHOT"):  # a picture for a person to look at
            page.screenshot(path=os.environ["HCP_DASHBOARD_SHOT"], full_page=True)
    finally:
        ctx.close()


def _signed_in_dashboard(browser, live_server, width=1366, height=900):
    """A manager signed in (the login page, then back to the dashboard), the figures drawn."""
    from service.cli.demo import DEMO_PASSWORD

    # Reduced motion: the charts are drawn without their growing animation, so a click
    # lands on the bar or slice it aims at (a slice still sweeping round is another's place).
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN", accept_downloads=True,
                              reduced_motion="reduce")
    ctx.set_default_timeout(20000)
    page = ctx.new_page()
    page.goto(f"{live_server}/dashboard")
    assert "/login" in page.url
    page.fill("input[name=username]", "manager")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    page.wait_for_selector("body[data-loaded=yes]")
    return ctx, page


def _drill_args(url):
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    assert parts.path == "/cases", url
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


def _click_until_it_drills(page, chart, point):
    """Click ``chart`` at ``point()`` (canvas pixels) until the page moves to the case list
    (a chart may still be being drawn: the click is repeated, within a deadline)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    canvas = page.locator(f"#{page.evaluate(f'window.hcpCharts.{chart}.getDom().id')} canvas")
    canvas.scroll_into_view_if_needed()
    for _ in range(20):
        x, y = point()
        box = canvas.bounding_box()
        page.mouse.click(box["x"] + x, box["y"] + y)
        try:
            page.wait_for_url("**/cases?**", timeout=1000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"clicking {chart} led nowhere")


def _click_chart(page, chart, value):
    """Click the point ``value`` (data coordinates) of a chart's first series."""
    _click_until_it_drills(page, chart, lambda: page.evaluate(
        f"v => window.hcpCharts.{chart}.convertToPixel({{seriesIndex: 0}}, v)", value))


def _click_slice(page, chart, index):
    """Click the middle of a pie slice's ring (its layout as ECharts drew it, in canvas pixels)."""
    def point():
        ring = page.evaluate(f"i => window.hcpCharts.{chart}.getModel().getSeriesByIndex(0).getData()"
                             ".getItemLayout(i)", index)
        middle, radius = (ring["startAngle"] + ring["endAngle"]) / 2, (ring["r"] + ring["r0"]) / 2
        return ring["cx"] + radius * math.cos(middle), ring["cy"] + radius * math.sin(middle)
    _click_until_it_drills(page, chart, point)


@pytest.mark.browser
def test_every_figure_leads_to_the_cases_behind_it(demo, live_server, browser, query):
    from datetime import date

    ctx, page = _signed_in_dashboard(browser, live_server)
    try:
        period = {"rated_from": page.input_value("input[name=from]"), "rated_to": page.input_value("input[name=to]"),
                  "department": "district", "scope": "dept"}
        expected = {"total": {"status": "all"}, "bad": {"status": "all"}, "disposal_rate": {"status": "closed"},
                    "open": {"status": "open"}, "overdue_open": {"status": "open", "overdue": "true"},
                    "red": {"status": "open", "warning": "red"}, "yellow": {"status": "open", "warning": "yellow"}}
        for key, filters in expected.items():
            assert _drill_args(page.get_attribute(f"#kpi-{key}", "href")) == {**period, **filters}, key
        # the list behind a count has that many cases
        figures = {key: int(page.inner_text(f"[data-key={key}]")) for key in ("bad", "open", "overdue_open", "red",
                                                                            "yellow")}
        for key, count in figures.items():
            page.click(f"#kpi-{key}")
            page.wait_for_url("**/cases?**")
            assert page.inner_text("h1 small") == f"共 {count} 件", key
            page.go_back()
            page.wait_for_selector("body[data-loaded=yes]")
        # the definition and the counts behind each rate stand beside the number
        disposal = page.inner_text("#kpi-disposal_rate")
        assert "已办结的差评工单 ÷ 差评数" in disposal
        bad = page.inner_text("[data-key=bad]")
        assert f"3 / {bad}" in disposal
        assert "整改后办结的工单 ÷（差评数 − 无效差评 − 解释说明办结）" in page.inner_text("#kpi-rectification_rate")

        # a narrower channel travels into every link
        page.select_option("select[name=channel]", "hall_tablet")
        page.evaluate("document.body.dataset.loaded = ''")
        page.click("form#pickers button[type=submit]")
        page.wait_for_selector("body[data-loaded=yes]")
        assert _drill_args(page.get_attribute("#kpi-red", "href"))["channel"] == "hall_tablet"
        page.select_option("select[name=channel]", "")
        page.evaluate("document.body.dataset.loaded = ''")
        page.click("form#pickers button[type=submit]")
        page.wait_for_selector("body[data-loaded=yes]")

        # a month's bar: the cases rated in that month (within the period)
        months = page.evaluate("window.hcpCharts.bad.getOption().xAxis[0].data")
        counts = page.evaluate("window.hcpCharts.bad.getOption().series[0].data")
        i = max(range(len(counts)), key=lambda n: counts[n])
        _click_chart(page, "bad", [i, counts[i] / 2])
        args = _drill_args(page.url)
        first = date.fromisoformat(months[i] + "-01")
        assert args["rated_from"] == max(first.isoformat(), period["rated_from"])
        assert args["rated_to"][:7] == months[i] and args["department"] == "district"
        page.go_back()
        page.wait_for_selector("body[data-loaded=yes]")

        # a department's bar: that department's cases
        labels = page.evaluate("window.hcpCharts.departments.getOption().yAxis[0].data")
        rates = page.evaluate("window.hcpCharts.departments.getOption().series[0].data")
        j = max(range(len(rates)), key=lambda n: rates[n] or 0)
        _click_chart(page, "departments", [rates[j] / 2, j])
        args = _drill_args(page.url)
        assert args["department"] != "district" and args["status"] == "all"
        name = query(lambda s: s.scalar(select(Department.name).where(Department.code == args["department"])))
        assert labels[j].startswith(name)
        page.go_back()
        page.wait_for_selector("body[data-loaded=yes]")

        # a channel's slice: that channel's cases
        slices = page.evaluate("window.hcpCharts.channels.getOption().series[0].data")
        _click_slice(page, "channels", 0)
        assert _drill_args(page.url)["channel"] == slices[0]["code"]
        page.go_back()
        page.wait_for_selector("body[data-loaded=yes]")

        # a warning row: the card leads to the list of that card, the number to the case
        row = page.locator("#warning-rows tr.warn-red")
        assert _drill_args(row.locator("td").nth(0).locator("a").get_attribute("href"))["warning"] == "red"
        case_href = row.locator("td").nth(1).locator("a").get_attribute("href")
        assert case_href.startswith("/cases/")
        assert _drill_args(page.get_attribute("#warnings-all", "href"))["warning"] == "any"
    finally:
        ctx.close()
