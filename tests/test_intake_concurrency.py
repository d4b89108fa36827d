"""Batches that overlap, posted at once in different orders: no deadlock, each rating once.

Found by the kiosk retry-storm fault test: two batches inserting the same client_ids in
different orders each waited for the other's uncommitted row (PostgreSQL reported a
deadlock, the intake answered 503). Rows are now inserted in client_id order.
"""
from __future__ import annotations

import random
import threading

import pytest
from sqlalchemy import func, select

from models import Rating
from tests.support import bearer, rating_body

pytestmark = pytest.mark.postgres_only


def test_overlapping_batches_in_any_order_do_not_deadlock(app, org, query):
    dept = org.department("d1")
    _, key = org.device(dept)
    items = [rating_body(level=random.Random(n).choice([1, 4, 5])) for n in range(300)]
    clients = 8
    barrier = threading.Barrier(clients)
    statuses, results = [], []

    def post(n):
        order = items[:]
        random.Random(n).shuffle(order)
        client = app.test_client()
        barrier.wait()
        for start in range(0, len(order), 100):
            resp = client.post("/api/v1/ratings/batch", json={"ratings": order[start:start + 100]},
                               headers=bearer(key))
            statuses.append(resp.status_code)
            if resp.status_code == 200:
                results.extend(resp.get_json()["results"])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) == {200}, statuses
    created = [r["client_id"] for r in results if r["status"] == "created"]
    assert sorted(created) == sorted(b["client_id"] for b in items)  # each created exactly once
    assert {r["status"] for r in results} == {"created", "duplicate"}
    assert query(lambda s: s.scalar(select(func.count(Rating.id)))) == len(items)
