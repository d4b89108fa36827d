"""Staff bearer tokens (SPEC §4): sign in, expiry, revocation, lockout after wrong passwords."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from models import ApiToken, User
from models.types import utcnow
from service.auth.api import MAX_FAILURES
from tests.support import bearer

PASSWORD = "correct-horse-9"


@pytest.fixture
def staff(org):
    dept = org.department("d1", "政务服务中心")
    return org.user("zhang", "handler", dept, password=PASSWORD)


def sign_in(client, password=PASSWORD, username="zhang"):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def whoami(client, token):
    """Any staff-only call; 200 while the token is good, 401 after."""
    return client.get("/api/v1/cases", headers=bearer(token)).status_code


def web_sign_in(client, password=PASSWORD) -> int:
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    return client.post("/login", data={"username": "zhang", "password": password, "csrf_token": csrf}).status_code


def test_sign_in_gives_a_working_token_stored_only_as_a_hash(client, staff, query):
    resp = sign_in(client)
    assert resp.status_code == 201
    data = resp.get_json()
    assert (data["username"], data["role"]) == ("zhang", "handler") and data["token"].startswith("hcpt_")
    assert whoami(client, data["token"]) == 200
    hashes = query(lambda s: list(s.scalars(select(ApiToken.token_hash))))
    assert len(hashes) == 1 and data["token"] not in hashes[0]


def test_wrong_password_and_unknown_user_look_the_same(client, staff):
    wrong, unknown = sign_in(client, "nope"), sign_in(client, "nope", username="nobody")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json()["message"] == unknown.get_json()["message"]


def test_expired_token_is_401(client, staff, query):
    token = sign_in(client).get_json()["token"]
    assert whoami(client, token) == 200
    query(lambda s: (s.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1))), s.commit()))
    assert whoami(client, token) == 401


def test_token_expires_after_the_configured_hours(app, client, staff):
    data = sign_in(client).get_json()
    hours = app.config["HCP_SETTINGS"].token_hours
    left = datetime.fromisoformat(data["expires_at"]) - utcnow()
    assert timedelta(hours=hours) - timedelta(minutes=5) < left <= timedelta(hours=hours)


def test_revoked_token_is_401_and_other_tokens_live_on(client, staff):
    first, second = sign_in(client).get_json()["token"], sign_in(client).get_json()["token"]
    assert client.delete("/api/v1/auth/token", headers=bearer(first)).status_code == 204
    assert whoami(client, first) == 401
    assert client.delete("/api/v1/auth/token", headers=bearer(first)).status_code == 401
    assert whoami(client, second) == 200


def test_token_of_a_disabled_account_is_401(client, staff, query):
    token = sign_in(client).get_json()["token"]
    query(lambda s: (s.execute(update(User).values(active=False)), s.commit()))
    assert whoami(client, token) == 401
    assert sign_in(client).status_code == 401


def forget_failures(app):
    """The throttling window has passed (the counts live in the rate-limit store)."""
    from service.auth import ratelimit

    with app.app_context():
        ratelimit.reset()


def test_lockout_after_five_wrong_passwords(app, client, staff):
    for _ in range(MAX_FAILURES - 1):
        assert sign_in(client, "wrong").status_code == 401
    assert sign_in(client).status_code == 201  # four wrong are not yet a lock
    for _ in range(MAX_FAILURES):
        assert sign_in(client, "wrong").status_code == 401
    # throttled: even the right password is refused, on the API and on the web sign-in page
    assert sign_in(client).status_code == 401
    assert web_sign_in(client) == 401
    # once the window has passed, the right password works
    forget_failures(app)
    assert web_sign_in(client) == 302


def test_a_good_sign_in_resets_the_count(client, staff):
    for _ in range(MAX_FAILURES - 1):
        sign_in(client, "wrong")
    assert sign_in(client).status_code == 201
    for _ in range(MAX_FAILURES - 1):
        sign_in(client, "wrong")
    assert sign_in(client).status_code == 201


def test_parallel_wrong_passwords_all_count(app, staff):
    """Guesses sent at once must each count, or a script could guess past the limit."""
    barrier = threading.Barrier(MAX_FAILURES)
    codes = []

    def guess(i):
        c = app.test_client()
        barrier.wait()
        codes.append(sign_in(c, f"guess-{i}").status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(MAX_FAILURES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [401] * MAX_FAILURES
    assert sign_in(app.test_client()).status_code == 401, "five wrong passwords, sent together, throttle"


def from_address(client, address, password=PASSWORD):
    return client.post("/api/v1/auth/token", json={"username": "zhang", "password": password},
                       environ_base={"REMOTE_ADDR": address})


def test_a_guesser_elsewhere_cannot_lock_the_user_out(client, staff):
    """Issue 11 #9: throttling is per (user, address), so failures from one address do not
    shut the user out at another."""
    for _ in range(MAX_FAILURES + 3):
        assert from_address(client, "203.0.113.9", "wrong").status_code == 401
    assert from_address(client, "203.0.113.9").status_code == 401  # the guesser's address is held
    assert from_address(client, "198.51.100.20").status_code == 201  # the user's is not


def test_the_global_cap_stops_a_guesser_spread_over_many_addresses(client, org, staff):
    from service.auth.api import ACCOUNT_CAP

    org.user("li", "handler", org.department("d2"), password=PASSWORD)
    for i in range(ACCOUNT_CAP):
        assert from_address(client, f"10.0.{i // 4}.{i % 4}", "wrong").status_code == 401
    assert from_address(client, "198.51.100.20").status_code == 401  # the cap holds every address
    assert sign_in(client, username="li").status_code == 201  # other accounts are not held


def test_unknown_locked_and_real_users_cost_the_same_work(app, client, staff, monkeypatch):
    """One user lookup and one password hash for every answer (no timed assertion: the work is counted)."""
    from service.auth import api as auth_api

    hashed = []
    real = auth_api.check_password_hash
    monkeypatch.setattr(auth_api, "check_password_hash", lambda h, p: hashed.append(1) or real(h, p))

    def hashes(**kwargs):
        hashed.clear()
        sign_in(client, **kwargs)
        return len(hashed)

    assert hashes(password="wrong") == 1
    assert hashes(password="wrong", username="nobody") == 1
    for _ in range(MAX_FAILURES):
        sign_in(client, "wrong")
    assert hashes() == 1  # throttled, the right password: hashed all the same
    assert hashes(password="wrong") == 1


def test_device_key_is_not_a_staff_token(client, staff, org):
    _, key = org.device(org.department("d2"))
    assert whoami(client, key) == 401
    assert whoami(client, "hcpt_made-up") == 401


def test_behind_a_proxy_the_forwarded_address_is_the_client(hcp_env, staff):
    """With HCP_PROXY_HOPS=1 the throttled pair is the address the proxy saw, not the proxy's."""
    from service import create_app

    proxied = create_app({**hcp_env, "HCP_PROXY_HOPS": "1"})
    client = proxied.test_client()

    def via_proxy(address, password=PASSWORD):
        return client.post("/api/v1/auth/token", json={"username": "zhang", "password": password},
                           headers={"X-Forwarded-For": address})
    try:
        for _ in range(MAX_FAILURES):
            assert via_proxy("203.0.113.9", "wrong").status_code == 401
        assert via_proxy("203.0.113.9").status_code == 401
        assert via_proxy("198.51.100.20").status_code == 201
    finally:
        with proxied.app_context():
            from service.auth import ratelimit
            from service.extensions import db
            ratelimit.reset()
            db.engine.dispose()
