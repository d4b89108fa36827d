"""POST /api/v1/ratings and /batch: validation, idempotency, auth, rate limits (SPEC §4)."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from models import Rating
from service.privacy import mask_phone
from tests.support import bearer, rating_body


@pytest.fixture
def kiosk(org):
    dept = org.department("d1", "政务服务中心")
    device, key = org.device(dept, channel="hall_terminal", window="3")
    return dept, device, key


def count_ratings(app) -> int:
    from service.extensions import db
    with app.app_context():
        return db.session.scalar(select(func.count(Rating.id)))


def test_created_answer_and_stored_fields(app, client, kiosk):
    dept, device, key = kiosk
    body = rating_body(level=2, comment="排队太久", tags=["wait"])
    resp = client.post("/api/v1/ratings", json=body, headers=bearer(key))
    assert resp.status_code == 201
    data = resp.get_json()
    assert set(data) == {"id", "client_id", "level", "negative", "received_at"}
    assert data["client_id"] == body["client_id"] and data["level"] == 2 and data["negative"] is True
    from service.extensions import db
    with app.app_context():
        row = db.session.get(Rating, data["id"])
        # channel, window and department come from the device, never from the body
        assert (row.channel, row.window, row.department_id) == ("hall_terminal", "3", dept.id)
        assert str(row.rated_date) == "2026-11-20"


def test_every_body_field_is_stored(app, client, kiosk, org):
    dept, device, key = kiosk
    bureau = org.department("bureau", parent=dept)
    item = org.item("it1", bureau)
    org.item("it2", dept)
    resp = client.post("/api/v1/ratings", json=full_body(rated_at="2026-11-20T00:30:00+08:00"),
                       headers={**bearer(key), "X-Request-ID": "req-1"})
    assert resp.status_code == 201
    from service.extensions import db
    from service.privacy import blind_index, decrypt
    with app.app_context():
        row = db.session.get(Rating, resp.get_json()["id"])
        assert (row.level, row.negative, row.device_id, row.item_id, row.department_id) == \
            (1, True, device.id, item.id, bureau.id)  # the item's department, not the device's
        assert (row.channel, row.window) == ("hall_terminal", "3")
        assert row.rated_at.isoformat() == "2026-11-19T16:30:00+00:00"
        assert str(row.rated_date) == "2026-11-20"  # the Shanghai date, not the UTC one
        assert (row.project_no, row.staff_no, row.comment) == ("P-2026-0001", "S001", "排队太久")
        assert (row.tags, row.reasons) == (["wait", "attitude"], ["off_att_rude", "off_eff_wait"])
        assert (row.real_name, row.rater_name_masked, row.rater_phone_masked) == (True, "陈**", mask_phone(PHONE))
        assert (decrypt(row.rater_name_enc), decrypt(row.rater_phone_enc)) == ("陈大文", PHONE)
        # the key the case search by phone looks up (service/cases/query.py), whatever the spelling
        assert row.rater_phone_index == blind_index("138-1234 5678") and PHONE not in row.rater_phone_index
        assert row.request_id == "req-1"
        # a device's rating: the first assessment, no invitation, not a default rating (默认评价)
        assert (row.invitation_id, row.assess_number, row.followup_of, row.is_default) == (None, 1, None, False)


def test_a_batch_stores_every_field_as_a_single_post_does(app, client, kiosk, org):
    """Two or more rows take another INSERT on PostgreSQL (one array per column)."""
    dept, _, key = kiosk
    org.item("it1", dept)
    org.item("it2", dept)
    bodies = [full_body(), {**full_body(), "tags": ["wait"], "reasons": ["off_eff_wait"], "comment": "没人理"}]
    resp = client.post("/api/v1/ratings/batch", json={"ratings": bodies}, headers=bearer(key))
    ids = [r["id"] for r in resp.get_json()["results"]]
    from service.extensions import db
    from service.privacy import decrypt
    with app.app_context():
        rows = [db.session.get(Rating, i) for i in ids]
        assert [(r.tags, r.reasons, r.comment) for r in rows] == [
            (["wait", "attitude"], ["off_att_rude", "off_eff_wait"], "排队太久"),
            (["wait"], ["off_eff_wait"], "没人理")]
        assert [(r.staff_no, r.project_no, decrypt(r.rater_phone_enc)) for r in rows] == [
            ("S001", "P-2026-0001", PHONE)] * 2


def test_good_rating_is_not_negative(client, kiosk):
    _, _, key = kiosk
    resp = client.post("/api/v1/ratings", json=rating_body(level=3), headers=bearer(key))
    assert resp.status_code == 201 and resp.get_json()["negative"] is False


BAD_BODIES = [
    ("client_id", {"client_id": "not-a-uuid"}),
    ("client_id", {"client_id": None}),
    ("level", {"level": 0}),
    ("level", {"level": 6}),
    ("level", {"level": "5"}),
    ("rated_at", {"rated_at": "2026-11-20T09:30:00"}),  # no offset
    ("rated_at", {"rated_at": "yesterday"}),
    ("rated_at", {"rated_at": "2099-01-01T00:00:00+08:00"}),  # future
    ("comment", {"comment": "长" * 501}),
    ("tags", {"tags": "wait"}),
    ("rater", {"rater": {"real_name": True, "phone": "138-abc"}}),
    ("rater", {"rater": {"real_name": False, "phone": "13812345678"}}),
    ("channel", {"channel": "pc"}),  # unknown field: channel comes from the device
    ("item_code", {"item_code": "no-such-item"}),
]


@pytest.mark.parametrize("field,change", BAD_BODIES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_BODIES)])
def test_bad_input_is_422_naming_the_field_and_stores_nothing(app, client, kiosk, field, change):
    _, _, key = kiosk
    body = {**rating_body(), **change}
    resp = client.post("/api/v1/ratings", json=body, headers=bearer(key))
    assert resp.status_code == 422, resp.get_json()
    assert field in str(resp.get_json()["errors"])
    assert count_ratings(app) == 0


@pytest.mark.parametrize("missing", ["client_id", "level", "rated_at"])
def test_required_fields(app, client, kiosk, missing):
    _, _, key = kiosk
    body = rating_body()
    del body[missing]
    resp = client.post("/api/v1/ratings", json=body, headers=bearer(key))
    assert resp.status_code == 422 and missing in resp.get_json()["errors"]["json"]
    assert count_ratings(app) == 0


def test_not_json_is_4xx(app, client, kiosk):
    _, _, key = kiosk
    resp = client.post("/api/v1/ratings", data="level=1", headers=bearer(key))
    assert 400 <= resp.status_code < 500
    assert count_ratings(app) == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer hcpd_wrong"},
                                     {"Authorization": "Basic abc"}])
def test_no_or_unknown_key_is_401(app, client, kiosk, headers):
    resp = client.post("/api/v1/ratings", json=rating_body(), headers=headers)
    assert resp.status_code == 401
    assert count_ratings(app) == 0


def test_staff_token_is_not_a_device_key(app, client, kiosk, org):
    dept, _, _ = kiosk
    token = org.token(org.user("h", "handler", dept))
    resp = client.post("/api/v1/ratings", json=rating_body(), headers=bearer(token))
    assert resp.status_code == 401


def test_disabled_device_is_401(app, client, kiosk):
    _, device, key = kiosk
    from service.extensions import db
    with app.app_context():
        db.session.get(type(device), device.id).active = False
        db.session.commit()
    assert client.post("/api/v1/ratings", json=rating_body(), headers=bearer(key)).status_code == 401


def test_device_disabled_after_use_is_refused_once_its_cached_row_expires(app, client, kiosk, monkeypatch):
    """Web processes keep a device's row HCP_DEVICE_CACHE_SECONDS; disabling takes effect after it."""
    _, device, key = kiosk
    monkeypatch.setattr(app.config["HCP_SETTINGS"], "device_cache_seconds", 1.0)
    assert client.post("/api/v1/ratings", json=rating_body(), headers=bearer(key)).status_code == 201
    from service.extensions import db
    with app.app_context():
        db.session.get(type(device), device.id).active = False
        db.session.commit()
    deadline = time.monotonic() + 10
    while (status := client.post("/api/v1/ratings", json=rating_body(), headers=bearer(key)).status_code) != 401:
        assert status == 201 and time.monotonic() < deadline, status
        time.sleep(0.1)


def test_replay_returns_first_answer_and_stores_nothing_new(app, client, kiosk):
    _, _, key = kiosk
    body = rating_body(level=1, rater={"real_name": True, "name": "陈大文", "phone": "13812345678"})
    first = client.post("/api/v1/ratings", json=body, headers=bearer(key))
    again = client.post("/api/v1/ratings", json=dict(reversed(list(body.items()))), headers=bearer(key))
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json() == first.get_json()
    assert count_ratings(app) == 1


def test_same_instant_in_another_offset_is_a_replay(client, kiosk):
    _, _, key = kiosk
    body = rating_body(rated_at="2026-11-20T09:30:00+08:00")
    assert client.post("/api/v1/ratings", json=body, headers=bearer(key)).status_code == 201
    body["rated_at"] = "2026-11-20T01:30:00+00:00"
    assert client.post("/api/v1/ratings", json=body, headers=bearer(key)).status_code == 200


def full_body(**extra) -> dict:
    """A bad rating with every optional field filled in (items it1 and it2 must exist)."""
    return rating_body(level=1, comment="排队太久", tags=["wait", "attitude"], item_code="it1",
                       reasons=["off_att_rude", "off_eff_wait"],
                       staff_no="S001", project_no="P-2026-0001",
                       rater={"real_name": True, "name": "陈大文", "phone": "13812345678"}, **extra)


PHONE = "13812345678"
RATER = {"real_name": True, "name": "陈大文", "phone": PHONE}
# Each changes one field of full_body(); the same client_id with any of them is another rating.
CHANGED = {
    "level": {"level": 2},
    "comment": {"comment": "排队太久了"},
    "comment-dropped": {"comment": None},
    "tags": {"tags": ["wait"]},
    "reasons": {"reasons": ["off_eff_wait"]},
    "rater-name": {"rater": {**RATER, "name": "陈小文"}},
    "rater-phone": {"rater": {**RATER, "phone": "13812345679"}},
    "rater-anonymous": {"rater": {"real_name": False}},
    "item_code": {"item_code": "it2"},
    "staff_no": {"staff_no": "S002"},
    "project_no": {"project_no": "P-2026-0002"},
    "rated_at+1s": {"rated_at": "2026-11-20T09:30:01+08:00"},
    "rated_at-1s": {"rated_at": "2026-11-20T09:29:59+08:00"},
}


@pytest.mark.parametrize("change", CHANGED.values(), ids=CHANGED.keys())
def test_same_client_id_different_body_is_409(app, client, kiosk, org, change):
    dept, _, key = kiosk
    org.item("it1", dept)
    org.item("it2", dept)
    body = full_body()
    first = client.post("/api/v1/ratings", json=body, headers=bearer(key))
    assert first.status_code == 201, first.get_json()
    assert client.post("/api/v1/ratings", json=dict(body), headers=bearer(key)).status_code == 200
    other = {k: v for k, v in {**body, **change}.items() if v is not None}
    resp = client.post("/api/v1/ratings", json=other, headers=bearer(key))
    assert resp.status_code == 409, resp.get_json()
    batch = client.post("/api/v1/ratings/batch", json={"ratings": [other]}, headers=bearer(key))
    assert batch.get_json()["results"][0]["status"] == "conflict"
    assert count_ratings(app) == 1


def test_same_client_id_from_another_device_is_409(app, client, kiosk, org):
    dept, _, key = kiosk
    _, other_key = org.device(dept, name="other")
    body = rating_body()
    assert client.post("/api/v1/ratings", json=body, headers=bearer(key)).status_code == 201
    assert client.post("/api/v1/ratings", json=body, headers=bearer(other_key)).status_code == 409


def test_eight_concurrent_duplicates_store_one_row(app, kiosk):
    _, _, key = kiosk
    body = rating_body(level=1)
    barrier = threading.Barrier(8)
    statuses, answers = [], []

    def post():
        c = app.test_client()
        barrier.wait()
        r = c.post("/api/v1/ratings", json=body, headers=bearer(key))
        statuses.append(r.status_code)
        answers.append(r.get_json()["id"])

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 7 + [201]
    assert len(set(answers)) == 1
    assert count_ratings(app) == 1


def test_batch_mixed_items(app, client, kiosk):
    _, _, key = kiosk
    stored = rating_body(level=4)
    assert client.post("/api/v1/ratings", json=stored, headers=bearer(key)).status_code == 201
    new = rating_body(level=1)
    items = [
        new,
        {**rating_body(), "level": 9},  # invalid
        stored,  # duplicate of an earlier post
        {**stored, "level": 1},  # conflict
        new,  # same client_id twice in one batch: a duplicate of the first
        {"level": 1},  # invalid, no client_id
        {**rating_body(), "item_code": "nope"},  # invalid: unknown item
    ]
    resp = client.post("/api/v1/ratings/batch", json={"ratings": items}, headers=bearer(key))
    assert resp.status_code == 200
    results = resp.get_json()["results"]
    assert [r["status"] for r in results] == ["created", "invalid", "duplicate", "conflict",
                                              "duplicate", "invalid", "invalid"]
    assert results[0]["client_id"] == new["client_id"] and results[4]["id"] == results[0]["id"]
    assert [r["client_id"] for r in results[2:5]] == [stored["client_id"], stored["client_id"], new["client_id"]]
    assert "level" in results[1]["errors"] and "item_code" in results[6]["errors"]
    assert results[5]["client_id"] is None
    assert count_ratings(app) == 2


def test_invalid_items_first_in_a_batch_leave_the_rest_stored(app, client, kiosk):
    _, _, key = kiosk
    items = [{"level": 1}, {**rating_body(), "item_code": "nope"},
             rating_body(level=5, reasons=["off_att_rude"]), rating_body(level=2)]  # a bad rating's reason
    resp = client.post("/api/v1/ratings/batch", json={"ratings": items}, headers=bearer(key))
    assert resp.status_code == 200
    results = resp.get_json()["results"]
    assert [r["status"] for r in results] == ["invalid", "invalid", "invalid", "created"]
    assert [r["client_id"] for r in results] == [None] + [b["client_id"] for b in items[1:]]
    assert "item_code" in results[1]["errors"] and "reasons" in results[2]["errors"]
    assert count_ratings(app) == 1


def test_batch_limit_is_500(app, client, kiosk):
    _, _, key = kiosk
    ok = client.post("/api/v1/ratings/batch", json={"ratings": [rating_body(level=5) for _ in range(500)]},
                     headers=bearer(key))
    assert ok.status_code == 200 and {r["status"] for r in ok.get_json()["results"]} == {"created"}
    too_many = client.post("/api/v1/ratings/batch", json={"ratings": [rating_body() for _ in range(501)]},
                           headers=bearer(key))
    assert too_many.status_code == 422 and "ratings" in too_many.get_json()["errors"]["json"]
    assert count_ratings(app) == 500


def test_rate_limit_is_429_with_retry_after(app, client, org):
    dept = org.department("d1")
    _, key = org.device(dept, rate_limit="3/minute")
    codes = [client.post("/api/v1/ratings", json=rating_body(level=5), headers=bearer(key)).status_code
             for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    resp = client.post("/api/v1/ratings", json=rating_body(level=5), headers=bearer(key))
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert count_ratings(app) == 3


def test_get_rating_needs_staff_and_masks_rater(app, client, kiosk, org):
    dept, _, key = kiosk
    body = rating_body(level=2, rater={"real_name": True, "name": "陈大文", "phone": "13812345678"})
    rid = client.post("/api/v1/ratings", json=body, headers=bearer(key)).get_json()["id"]
    assert client.get(f"/api/v1/ratings/{rid}").status_code == 401
    assert client.get(f"/api/v1/ratings/{rid}", headers=bearer(key)).status_code == 401  # device key
    token = org.token(org.user("h", "handler", dept))
    data = client.get(f"/api/v1/ratings/{rid}", headers=bearer(token)).get_json()
    assert data["rater"] == {"real_name": True, "name": "陈**", "phone": "138******78"}
    assert data["channel"] == "hall_terminal" and data["department"] == "d1"
    other = org.department("d2")
    outsider = org.token(org.user("x", "manager", other))
    assert client.get(f"/api/v1/ratings/{rid}", headers=bearer(outsider)).status_code == 404


def test_item_decides_the_department(app, client, kiosk, org):
    dept, _, key = kiosk
    bureau = org.department("bureau", parent=dept)
    org.item("it1", bureau)
    rid = client.post("/api/v1/ratings", json=rating_body(item_code="it1"), headers=bearer(key)).get_json()["id"]
    from service.extensions import db
    with app.app_context():
        assert db.session.get(Rating, rid).department_id == bureau.id


def test_openapi_document_lists_the_intake(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/ratings" in doc["paths"] and "/api/v1/ratings/batch" in doc["paths"]
