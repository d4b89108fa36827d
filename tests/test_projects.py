"""The application register (SPEC §7): PUT is an idempotent upsert whose stage only moves
forward, the applicant is encrypted and blind-indexed, GET is for staff in scope."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from models import Project
from service.privacy import blind_index
from tests.support import bearer, concurrently, rating_body

PHONE = "13812345678"


@pytest.fixture
def world(app, org):
    from service.clients.registry import add_client
    from service.extensions import db

    district = org.department("district", "区政务服务中心")
    market = org.department("market", "区市场监管局", parent=district)
    other = org.department("other", "区教育局", parent=district)
    org.item("license", market)
    org.item("school", other)
    _, approval = org._build(lambda: add_client("审批系统", "approval", db.session.merge(market)))
    _, upstream = org._build(lambda: add_client("省平台", "upstream", db.session.merge(market)))
    return {"market": market, "other": other, "approval": approval, "upstream": upstream, "org": org}


def body(stage="accepted", **extra):
    out = {"item_code": "license", "stage": stage, "accepted_at": "2026-11-20T09:00:00+08:00",
           "applicant": {"kind": "person", "name": "陈小明", "phone": PHONE}, "staff_no": "A01"}
    if stage == "done":
        out["done_at"] = "2026-11-21T16:00:00+08:00"
    out.update(extra)
    return out


def test_put_is_an_idempotent_upsert(world, client, query, app):
    key = bearer(world["approval"])
    first = client.put("/api/v1/projects/P2026-0001", json=body(), headers=key)
    assert first.status_code == 201
    out = first.get_json()
    assert out["stage"] == "accepted" and out["stage_label"] == "受理" and out["department"] == "market"
    assert out["applicant"] == {"kind": "person", "name": "陈**", "phone": "138******78"}
    again = client.put("/api/v1/projects/P2026-0001", json=body(), headers=key)
    assert again.status_code == 200 and again.get_json() == out
    assert query(lambda s: s.scalar(select(func.count(Project.id)))) == 1

    done = client.put("/api/v1/projects/P2026-0001", json=body("done"), headers=key)
    assert done.status_code == 200 and done.get_json()["stage"] == "done"
    back = client.put("/api/v1/projects/P2026-0001", json=body("accepted"), headers=key)
    assert back.status_code == 409 and "forward" in back.get_json()["message"]
    # A done PUT without accepted_at keeps the one stored.
    kept = client.put("/api/v1/projects/P2026-0001", json={k: v for k, v in body("done").items()
                                                            if k != "accepted_at"}, headers=key)
    assert kept.status_code == 200 and kept.get_json()["accepted_at"] == out["accepted_at"]

    with app.app_context():
        expected = blind_index(PHONE)
    row = query(lambda s: s.scalar(select(Project)))
    assert row.applicant_phone_index == expected and row.stage == "done"
    dump = query(lambda s: " ".join(str(v) for r in s.execute(text("SELECT * FROM projects")) for v in r))
    assert PHONE not in dump and "陈小明" not in dump


def test_bad_input_is_a_4xx_naming_the_field(world, client, query):
    key = bearer(world["approval"])
    cases = [
        ("P1", body(item_code="nope"), 422, "item_code"),
        ("P1", body(item_code="school"), 422, "item_code"),  # an item outside the client's departments
        ("P1", body("done", done_at=None), 422, "done_at"),
        ("P1", body(stage="archived"), 422, "stage"),
        ("P1", body(accepted_at="2026-11-20T09:00:00"), 422, "accepted_at"),
        ("P1", body(accepted_at="1999-12-31T09:00:00+08:00"), 422, "accepted_at"),
        ("P1", body("done", done_at="2026-11-19T09:00:00+08:00"), 422, "done_at"),
        ("P1", body(applicant={"kind": "robot", "name": "x"}), 422, "applicant"),
        ("P1", body(applicant={"kind": "person", "name": "x", "phone": "call me"}), 422, "applicant"),
        ("P1", body(extra="x"), 422, "extra"),
        ("P%201", body(), 422, "project_no"),
    ]
    for no, payload, status, field in cases:
        payload = {k: v for k, v in payload.items() if v is not None}
        resp = client.put(f"/api/v1/projects/{no}", json=payload, headers=key)
        assert resp.status_code == status, (payload, resp.get_json())
        assert field in str(resp.get_json()["errors"]), resp.get_json()
    assert query(lambda s: s.scalar(select(func.count(Project.id)))) == 0


def test_who_may_put_and_get(world, client):
    org = world["org"]
    _, device_key = org.device(world["market"])
    handler = org.token(org.user("h1", "handler", world["market"]))
    outsider = org.token(org.user("h2", "handler", world["other"]))
    no = "/api/v1/projects/P-7"
    assert client.put(no, json=body(), headers=bearer(device_key)).status_code == 401
    assert client.put(no, json=body(), headers=bearer(handler)).status_code == 401
    assert client.put(no, json=body(), headers=bearer(world["upstream"])).status_code == 403
    assert client.put(no, json=body(), headers=bearer(world["approval"])).status_code == 201

    got = client.get(no, headers=bearer(handler))
    assert got.status_code == 200 and got.get_json()["applicant"]["phone"] == "138******78"
    assert client.get(no, headers=bearer(outsider)).status_code == 404
    assert client.get(no, headers=bearer(world["approval"])).status_code == 401
    assert client.get(no, headers=bearer(device_key)).status_code == 401
    assert client.get("/api/v1/projects/nope", headers=bearer(handler)).status_code == 404

    # Ratings that name the project are listed with it.
    rated = client.post("/api/v1/ratings", json=rating_body(level=4, project_no="P-7"), headers=bearer(device_key))
    assert rated.status_code == 201
    ratings = client.get(no, headers=bearer(handler)).get_json()["ratings"]
    assert [r["id"] for r in ratings] == [rated.get_json()["id"]]


def test_concurrent_first_puts_store_one(world, app, query):
    key = bearer(world["approval"])
    statuses = concurrently(8, lambda: app.test_client().put(
        "/api/v1/projects/P-RACE", json=body(), headers=key).status_code)
    assert sorted(statuses) == [200] * 7 + [201]
    assert query(lambda s: s.scalar(select(func.count(Project.id)))) == 1


@pytest.mark.postgres_only  # the fast path's own psycopg connection (service.pooling.driver_connection)
def test_a_connection_dropped_under_the_fast_path_is_503_then_replaced(world, client, app, query):
    """The first PUT of a project_no runs on a pooled connection's psycopg connection itself:
    when PostgreSQL drops it, the client gets the database's 503 with Retry-After (not a 500),
    nothing is half-stored, and the broken connections are not pooled again: the next PUT,
    which would otherwise draw another one PostgreSQL dropped, is stored."""
    from service.pooling import intake_engine

    key = bearer(world["approval"])
    assert client.put("/api/v1/projects/P-DROP-0", json=body("done"), headers=key).status_code == 201
    with app.app_context():
        engine = intake_engine()
        # Every connection the pool holds (earlier tests' concurrent PUTs left several), all
        # checked out at once and just returned, so none is pinged first.
        held = [engine.connect() for _ in range(max(1, engine.pool.checkedin()))]
        pids = {conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() for conn in held}
        for conn in held:
            conn.close()
    with app.app_context():
        from service.extensions import db

        for pid in pids:
            db.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        db.session.commit()
    dropped = client.put("/api/v1/projects/P-DROP-1", json=body("done"), headers=key)
    assert dropped.status_code == 503 and dropped.headers.get("Retry-After")
    assert query(lambda s: s.scalar(select(func.count(Project.id)).where(Project.project_no == "P-DROP-1"))) == 0
    again = client.put("/api/v1/projects/P-DROP-1", json=body("done"), headers=key)
    assert again.status_code == 201
