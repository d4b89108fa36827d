"""Rater data and secrets never in clear at rest or in logs; every reveal is in the history.

hcp runs here as in production — gunicorn, a Celery worker and Redis, processes of the
test's own — and is driven over HTTP with real-name ratings (single, batch, replay,
conflict, invalid), staff sign-ins and phone reveals. Then every text-like column of
every table in the database (read from the catalogue, so tables added later are scanned
too), every value in the broker, and every line the web and worker processes logged are
searched for the rater names and phones, device keys, staff tokens and passwords.
"""
from __future__ import annotations

import json
import re

import psycopg
import pytest
import redis as redis_client
import requests

from tests import support
from tests.faults.load import post_until_answered, Tally
from tests.stack import Stack

pytestmark = pytest.mark.postgres_only

PASSWORD = "S3cret-pass-word!"
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea", "ARRAY")


@pytest.fixture
def deployment(tmp_path):
    redis = support.RedisServer(tmp_path / "redis")
    redis.workdir.mkdir()
    redis.start()
    (tmp_path / "var").mkdir()
    stack = Stack(tmp_path / "var", redis)
    try:
        yield stack, redis
    finally:
        stack.stop()
        redis.stop()


def raters(n: int) -> list[tuple[str, str]]:
    """Distinct names and phones that occur nowhere else in hcp's data or logs."""
    return [(f"钟离{'甲乙丙丁戊己庚辛壬癸'[i % 10]}{'子丑寅卯辰巳午未申酉'[i // 10]}", f"1390{7000000 + i * 7919:07d}")
            for i in range(n)]


def text_values(dsn: str) -> list[tuple[str, str, str]]:
    """(table, column, value) for every text-like column of every table of the database."""
    out = []
    with psycopg.connect(dsn) as conn:
        cols = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type = ANY(%s)", (list(TEXT_TYPES),)).fetchall()
        for table, column in cols:
            for (value,) in conn.execute(f'SELECT "{column}"::text FROM "{table}" WHERE "{column}" IS NOT NULL'):
                out.append((table, column, value))
    assert {t for t, _, _ in out} >= {"ratings", "users", "devices", "api_tokens", "case_history"}
    return out


def broker_values(url: str) -> list[str]:
    r = redis_client.Redis.from_url(url)
    out = []
    for key in r.scan_iter():
        kind = r.type(key)
        if kind == b"string":
            out.append(r.get(key))
        elif kind == b"list":
            out += r.lrange(key, 0, -1)
        elif kind == b"hash":
            out += r.hvals(key)
        elif kind == b"zset":
            out += [m for m, _ in r.zrange(key, 0, -1, withscores=True)]
        elif kind == b"set":
            out += list(r.smembers(key))
    return [v.decode(errors="replace") for v in out]


def test_rater_data_and_keys_never_in_clear(deployment):
    stack, redis = deployment
    app = stack.migrate()
    org = support.Org(app)
    district = org.department("district", "区政务服务中心")
    hall = org.department("hall", "政务服务大厅", parent=district)
    staff = {name: org.user(name, role, dept, password=PASSWORD) for name, role, dept in [
        ("h1", "handler", hall), ("h2", "handler", hall), ("s1", "supervisor", hall), ("m1", "manager", district)]}
    _, device_key = org.device(hall, name="kiosk-1")
    _, other_key = org.device(hall, name="kiosk-2")
    stack.start_web(workers=1, threads=4)
    stack.start_worker("w1")
    url = stack.web.url
    http = requests.Session()

    people = raters(30)
    bodies = [support.rating_body(level=1 if i % 2 else 4, comment="窗口服务态度差" if i % 2 else None,
                                  rater={"real_name": True, "name": name, "phone": phone})
              for i, (name, phone) in enumerate(people[:20])]
    bodies = [{k: v for k, v in b.items() if v is not None} for b in bodies]
    tally = Tally()
    for body in bodies:
        post_until_answered(http, url, device_key, body, tally, timeout=20)
    assert tally.unexpected == [], tally.unexpected
    batch = [support.rating_body(level=2, rater={"real_name": True, "name": n, "phone": p}) for n, p in people[20:28]]
    batch.append({**support.rating_body(level=9), "rater": {"real_name": True, "name": people[28][0],
                                                            "phone": people[28][1]}})  # invalid
    r = http.post(url + "/api/v1/ratings/batch", json={"ratings": batch}, headers=support.bearer(device_key))
    assert [x["status"] for x in r.json()["results"]] == ["created"] * 8 + ["invalid"]
    assert http.post(url + "/api/v1/ratings", json=bodies[1], headers=support.bearer(device_key)).status_code == 200
    conflict = {**bodies[1], "rater": {"real_name": True, "name": people[29][0], "phone": people[29][1]}}
    assert http.post(url + "/api/v1/ratings", json=conflict, headers=support.bearer(other_key)).status_code == 409
    bad_phone = support.rating_body(rater={"real_name": True, "name": "钟离无效", "phone": "139-0000-ABCD"})
    assert http.post(url + "/api/v1/ratings", json=bad_phone, headers=support.bearer(device_key)).status_code == 422

    tokens = {}
    for name in staff:
        r = http.post(url + "/api/v1/auth/token", json={"username": name, "password": PASSWORD})
        assert r.status_code == 201, r.text
        tokens[name] = r.json()["token"]
    assert http.post(url + "/api/v1/auth/token", json={"username": "h1", "password": PASSWORD + "x"}).status_code == 401

    bad_count = 10 + 8
    support.wait_for(lambda: http.get(url + "/api/v1/cases?per_page=100", headers=support.bearer(tokens["s1"]))
                     .json()["total"] == bad_count, timeout=60, message="every bad rating routed")
    cases = http.get(url + "/api/v1/cases?per_page=100", headers=support.bearer(tokens["s1"])).json()["items"]

    # Reveals: the assignee and the supervisor see the phone; the other handler and the manager may not.
    clear = {p for _, p in people}
    allowed = {}
    for case in cases:
        for who in ("h1", "h2", "s1", "m1"):
            r = http.post(f"{url}/api/v1/cases/{case['id']}/reveal", headers=support.bearer(tokens[who]))
            expect = 200 if who == "s1" or who == case["assignee"] else 403
            assert r.status_code == expect, (who, case["assignee"], r.status_code, r.text)
            if r.status_code == 200:
                assert r.json()["phone"] in clear and r.headers["Cache-Control"] == "no-store"
                allowed.setdefault(case["id"], []).append(who)
    for case in cases:
        detail = http.get(f"{url}/api/v1/cases/{case['id']}", headers=support.bearer(tokens["s1"])).json()
        reveals = [h["actor"] for h in detail["history"] if h["action"] == "reveal"]
        assert reveals == allowed[case["id"]], (case["id"], reveals)  # every reveal, and only those
        assert not any(p in str(detail) for p in clear)  # the case itself shows the rater masked
        assert re.fullmatch(r"139\*{6}\d{2}", detail["rating"]["rater"]["phone"])

    secrets = ([n for n, _ in people] + [p for _, p in people] + ["钟离无效", "139-0000-ABCD"]
               + [device_key, other_key, PASSWORD, PASSWORD + "x", *tokens.values(),
                  stack.env["HCP_DATA_KEY"], stack.env["HCP_SECRET_KEY"]])

    # Also as a JSON log line would escape them, should a formatter ever escape non-ASCII.
    secrets += [json.dumps(s)[1:-1] for s in secrets if json.dumps(s)[1:-1] != s]

    def leaks(values):
        return [(where, s) for where, v in values for s in secrets if s in v]

    db_values = [(f"{t}.{c}", v) for t, c, v in text_values(stack.env["HCP_DATABASE_URL"])]
    log_text = stack.logs()
    log_lines = [("log", line) for line in log_text.splitlines()]
    assert len(db_values) > 100 and len(log_lines) > 50, (len(db_values), len(log_lines))
    assert '"path": "/api/v1/ratings"' in log_text and "route" in log_text  # the logs were captured
    assert leaks(db_values) == []
    assert leaks([("broker", v) for v in broker_values(redis.url(0))]) == []
    assert leaks(log_lines) == []
    print(f"\nscanned {len(db_values)} database values, {len(log_lines)} log lines; "
          f"{sum(len(v) for v in allowed.values())} reveals, all in the case history")
