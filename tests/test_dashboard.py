"""The managers' dashboard: login, pickers, and non-empty ECharts charts on demo data."""
from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from models import Case, Rating, User
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
        cases[3].warning, cases[4].warning = "red", "yellow"
        db.session.commit()


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


@pytest.mark.browser
def test_manager_sees_rendered_charts(demo, live_server):
    from playwright.sync_api import sync_playwright

    from service.cli.demo import DEMO_PASSWORD

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(f"{live_server}/dashboard")
            assert "/login" in page.url
            page.fill("input[name=username]", "manager")
            page.fill("input[name=password]", DEMO_PASSWORD)
            page.click("button[type=submit], input[type=submit]")
            page.wait_for_url("**/dashboard")
            page.wait_for_selector("body[data-loaded=yes]", timeout=20000)
            assert page.locator("h1").inner_text() == "好差评统计分析"
            assert page.locator("#error").is_hidden()
            series = page.evaluate("""() => Object.fromEntries(Object.entries(window.hcpCharts).map(
                ([k, c]) => [k, c.getOption().series.map(s => s.data.length)]))""")
            assert all(n and all(series[k]) for k, n in series.items()), series
            assert page.locator("#chart-good-rate canvas").count() == 1
            assert page.locator("[data-key=total]").inner_text() == "300"
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
            browser.close()
