"""Rate limits count ratings, not requests (SPEC §11, issue 11 #6), and an unreachable
limit store fails open with one warning per interval, no traceback per request."""
from __future__ import annotations

import logging

import pytest

from models import Rating
from tests.support import bearer, free_port, rating_body


def count_ratings(query) -> int:
    return query(lambda s: s.query(Rating).count())


def batch(client, key, n):
    return client.post("/api/v1/ratings/batch", json={"ratings": [rating_body(level=5) for _ in range(n)]},
                       headers=bearer(key))


def test_a_batch_spends_one_per_rating(client, query, org):
    _, key = org.device(org.department("d"), rate_limit="5/minute")
    assert batch(client, key, 3).status_code == 200
    resp = batch(client, key, 3)  # 6 > 5: the whole batch is refused
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert count_ratings(query) == 3
    assert client.post("/api/v1/ratings", json=rating_body(), headers=bearer(key)).status_code == 429


def test_two_large_batches_cannot_store_a_thousand_under_five_a_minute(client, query, org):
    _, key = org.device(org.department("d"), rate_limit="5/minute")
    codes = [batch(client, key, 500).status_code for _ in range(2)]
    assert codes == [429, 429]
    assert count_ratings(query) == 0


def test_singles_and_a_batch_share_the_limit(client, query, org):
    _, key = org.device(org.department("d"), rate_limit="5/minute")
    assert [client.post("/api/v1/ratings", json=rating_body(level=5), headers=bearer(key)).status_code
            for _ in range(2)] == [201, 201]
    assert batch(client, key, 3).status_code == 200
    assert batch(client, key, 1).status_code == 429
    assert count_ratings(query) == 5


def test_an_invalid_batch_spends_nothing(client, org):
    _, key = org.device(org.department("d"), rate_limit="5/minute")
    resp = client.post("/api/v1/ratings/batch", json={"ratings": []}, headers=bearer(key))
    assert resp.status_code == 422
    assert batch(client, key, 5).status_code == 200


@pytest.fixture
def app_without_its_redis(hcp_env):
    """hcp whose rate-limit store is a port nobody listens on."""
    from service import create_app

    app = create_app({**hcp_env, "HCP_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    app.config["TESTING"] = True
    yield app
    with app.app_context():
        from service.extensions import db
        db.engine.dispose()


def test_an_unreachable_limit_store_fails_open_and_warns_once(app, app_without_its_redis, org, query, caplog):
    _, key = org.device(org.department("d"), rate_limit="1/minute")
    client = app_without_its_redis.test_client()
    caplog.set_level(logging.WARNING, logger="service.auth.ratelimit")
    codes = [client.post("/api/v1/ratings", json=rating_body(level=5), headers=bearer(key)).status_code
             for _ in range(5)]
    codes.append(batch(client, key, 3).status_code)
    assert codes == [201] * 5 + [200]  # fail open: every rating taken
    assert count_ratings(query) == 8
    warnings = [r for r in caplog.records if r.name == "service.auth.ratelimit"]
    assert len(warnings) == 1 and "not limited" in warnings[0].getMessage()
    assert warnings[0].exc_info is None
