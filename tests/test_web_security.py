"""Pages: security headers everywhere (errors too), one lockout for web and API sign-in,
and out-of-range input refused without a 500."""
from __future__ import annotations

import re

import pytest

from tests.support import bearer
from tests.web_support import CSRF_RE, PASSWORD, build_team, make_case

HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}


@pytest.fixture
def team(org):
    return build_team(org)


def sign_in(client, username="manager", password=PASSWORD):
    csrf = CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(2)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf})


def test_every_page_carries_the_security_headers(app, client, team):
    case_id = make_case(app, team.device)
    pages = ["/login", "/kiosk", "/no-such-page"]
    for path in pages:
        _check(client.get(path), path)
    assert sign_in(client).status_code == 302
    for path in ["/cases", f"/cases/{case_id}", "/queue", "/cases/999999", "/cases?page=99999999999999999999"]:
        _check(client.get(path), path)


def _check(resp, path):
    assert resp.status_code < 500, (path, resp.status_code)
    for name, value in HEADERS.items():
        assert resp.headers.get(name) == value, (path, name)
    if resp.mimetype == "text/html":
        assert "frame-ancestors 'none'" in resp.headers.get("Content-Security-Policy", ""), path
        assert "charset=utf-8" in resp.headers["Content-Type"].lower(), path


def test_session_cookie_is_httponly_and_samesite(client, team):
    resp = sign_in(client)
    cookie = resp.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and re.search(r"SameSite=Lax", cookie, re.I), cookie


def test_web_and_api_sign_in_share_one_lockout(client, team):
    """Wrong passwords on the page lock the API too: no second door to guess through."""
    for _ in range(5):
        assert sign_in(client, password="wrong-password").status_code == 401
    locked = client.post("/api/v1/auth/token", json={"username": "manager", "password": PASSWORD})
    assert locked.status_code == 401
    assert sign_in(client).status_code == 401  # the right password is refused while locked


def test_staff_session_is_no_device_and_device_key_opens_no_page(app, client, team):
    assert sign_in(client).status_code == 302
    # a signed-in browser session cannot post ratings as a device
    assert client.post("/api/v1/ratings", json={"level": 5}).status_code == 401
    other = app.test_client()
    resp = other.get("/cases", headers=bearer(team.key))
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_no_open_redirect_after_sign_in(client, team, target):
    csrf = CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(2)
    resp = client.post(f"/login?next={target}", data={"username": "manager", "password": PASSWORD,
                                                        "csrf_token": csrf})
    assert resp.status_code == 302
    location = resp.headers["Location"]
    # a same-site path: a browser would not leave hcp (a backslash goes out percent-encoded)
    assert location.startswith("/") and not location.startswith("//") and "\\" not in location, location


def test_rater_comment_markup_is_escaped_on_pages(app, client, team):
    from sqlalchemy import update

    from models import Case, Rating
    from service.extensions import db

    case_id = make_case(app, team.device)
    with app.app_context():
        rating_id = db.session.get(Case, case_id).rating_id
        db.session.execute(update(Rating).where(Rating.id == rating_id)
                           .values(comment='<script>alert("x")</script><img src=x onerror=alert(1)>'))
        db.session.commit()
    assert sign_in(client).status_code == 302
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert" in page
