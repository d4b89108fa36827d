"""Error pages in Chinese for the web pages, JSON errors for the API, and the favicon."""
from __future__ import annotations

import pytest

from tests.web_support import build_team, login


@pytest.fixture
def team(org):
    return build_team(org)


def test_unknown_page_is_a_chinese_404(client):
    resp = client.get("/no-such-page")
    assert resp.status_code == 404 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "页面不存在" in html and "返回首页" in html and "Not Found" not in html


def test_case_outside_scope_and_forbidden_page_in_chinese(client, team):
    login(client, "handler")
    missing = client.get("/cases/999999999")
    assert missing.status_code == 404 and "不在您的管辖范围内" in missing.get_data(as_text=True)
    forbidden = client.get("/queue")
    assert forbidden.status_code == 403
    html = forbidden.get_data(as_text=True)
    assert "没有权限" in html and "Forbidden" not in html
    assert "退出登录" in html  # a signed-in person keeps the top bar on a 4xx page


def test_wrong_method_is_a_chinese_405_with_allow(client, team):
    login(client, "handler")
    resp = client.delete("/cases")
    assert resp.status_code == 405 and "请求方式不支持" in resp.get_data(as_text=True)
    assert "GET" in resp.headers["Allow"]


def test_api_errors_stay_json(client):
    resp = client.get("/api/v1/no-such-thing")
    assert resp.status_code == 404 and resp.is_json
    resp = client.get("/api/v1/cases")
    assert resp.status_code == 401 and resp.is_json


def _unhandled(app, path):
    """What the app answers when a view raises: ``handle_exception`` as in production
    (tests otherwise let exceptions propagate)."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        with app.test_request_context(path):
            return app.handle_exception(RuntimeError("boom"))
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None


def test_server_error_page_is_chinese_and_needs_no_database(app):
    resp = _unhandled(app, "/cases/1")
    assert resp.status_code == 500 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "系统出错了" in html and "返回首页" in html and "boom" not in html
    assert "退出登录" not in html  # drawn without the signed-in bar (no user lookup)
    api = _unhandled(app, "/api/v1/cases/1")
    assert api.status_code == 500 and api.is_json


def test_favicon(client):
    ico = client.get("/favicon.ico")
    assert ico.status_code == 200 and ico.data[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert client.get("/static/favicon.svg").status_code == 200
    html = client.get("/login").get_data(as_text=True)
    assert 'rel="icon" href="/static/favicon.svg"' in html and 'href="/favicon.ico"' in html
