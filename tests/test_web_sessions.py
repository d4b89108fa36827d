"""Web sessions end on the server and cookie-signed API calls need the page's CSRF token
(SPEC §11, issue 11 #4 and #5)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from models import ApiToken
from models.types import utcnow
from tests.support import bearer
from tests.web_support import PHONE, build_team, csrf_token, login, make_case


@pytest.fixture
def team(org):
    return build_team(org)


def _copy_cookies(source, target) -> None:
    for cookie in source._cookies.values():
        target.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)


def test_a_cookie_copied_before_sign_out_is_dead_after_it(app, client, team):
    login(client, "super")
    thief = app.test_client()
    _copy_cookies(client, thief)
    assert thief.get("/cases").status_code == 200
    page = client.get("/cases").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 302
    assert thief.get("/cases").status_code == 302  # back to the sign-in page
    assert thief.get("/api/v1/cases").status_code == 401


def test_disabling_a_user_ends_their_sessions_for_good(app, client, team, shell):
    login(client, "super")
    assert client.get("/cases").status_code == 200
    shell("users", "disable", "super")
    assert client.get("/cases").status_code == 302
    shell("users", "enable", "super")
    assert client.get("/cases").status_code == 302  # enabling again does not revive the old session
    login(client, "super")
    assert client.get("/cases").status_code == 200


def test_a_session_lives_at_most_token_hours(app, client, query, team):
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=app.config["HCP_SETTINGS"].token_hours)
    login(client, "super")
    assert client.get("/cases").status_code == 200

    def expire(session):
        session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    query(expire)
    assert client.get("/cases").status_code == 302


def test_a_web_session_secret_is_no_bearer_token(app, client, team):
    login(client, "super")
    with client.session_transaction() as sess:
        raw = sess["hcp_session"]
    assert raw.startswith("hcps_")
    other = app.test_client()
    assert other.get("/api/v1/cases", headers=bearer(raw)).status_code == 401


def test_cookie_signed_api_calls_that_change_something_need_the_page_csrf_token(app, client, team):
    case_id = make_case(app, team.device)
    login(client, "super")
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    token = csrf_token(page)
    # What another page could make the browser send: the cookie, no token.
    assert client.post(f"/api/v1/cases/{case_id}/reveal").status_code == 401
    assert client.post(f"/api/v1/cases/{case_id}/reveal", headers={"X-CSRFToken": "forged"}).status_code == 401
    assert client.post(f"/api/v1/cases/{case_id}/actions", json={"action": "assign", "assignee": "handler2"}
                       ).status_code == 401
    resp = client.post(f"/api/v1/cases/{case_id}/reveal", headers={"X-CSRFToken": token})
    assert resp.status_code == 200 and resp.get_json()["phone"] == PHONE
    # Reading needs no token: the dashboard's figures and its export links are plain GETs.
    assert client.get("/api/v1/cases").status_code == 200


def test_bearer_tokens_need_no_csrf_token(client, org, team):
    token = org.token(org.user("super3", "supervisor", team.bureau))
    case_id = make_case(org.app, team.device)
    assert client.post(f"/api/v1/cases/{case_id}/reveal", headers=bearer(token)).status_code == 200


def test_the_pages_carry_the_csrf_token_for_scripts(client, team):
    login(client, "manager")
    page = client.get("/dashboard").get_data(as_text=True)
    assert 'name="csrf-token" content="' in page
