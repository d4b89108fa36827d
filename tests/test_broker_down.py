"""The broker is down when a bad rating arrives: it is stored, answered 201, and its case
appears once the broker is back, through the beat sweep (SPEC §2, "never zero")."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Case, Rating
from tests.support import bearer, rating_body, wait_for

pytestmark = pytest.mark.postgres_only  # the embedded broker is a file and cannot go down


def test_redis_stopped_then_back(worker, redis_server, client, query, org):
    dept = org.department("d1")
    org.user("h1", "handler", dept)
    _, key = org.device(dept)
    redis_server.stop()
    try:
        resp = client.post("/api/v1/ratings", json=rating_body(level=1), headers=bearer(key))
        assert resp.status_code == 201
        rid = resp.get_json()["id"]
        assert query(lambda s: s.get(Rating, rid)) is not None
        assert query(lambda s: s.scalar(select(Case).where(Case.rating_id == rid))) is None
    finally:
        redis_server.start()
    case = wait_for(lambda: query(lambda s: s.scalar(select(Case).where(Case.rating_id == rid))),
                    timeout=60, message="the sweep to route the rating once Redis is back")
    assert case.status == "assigned"
