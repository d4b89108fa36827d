"""Group commit (service/ratings/grouping.py): concurrent single ratings share an INSERT.

A test connection holds a lock that makes INSERTs into ``ratings`` wait, so the first
request's statement stays in flight while the others queue behind it; then it lets go.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select, text

from models import Device, Rating
from tests.support import bearer, rating_body, wait_for

pytestmark = pytest.mark.postgres_only


@contextmanager
def inserts_counted(app):
    """Counts the INSERT statements into ratings that the app sends (with their outbox rows,
    on PostgreSQL a ``WITH created AS (INSERT INTO ratings …)``)."""
    from service.pooling import intake_engine

    counted = []
    with app.app_context():
        engine = intake_engine()

    def count(conn, cursor, statement, *args):
        if statement.startswith(("INSERT INTO ratings", "WITH created AS (INSERT INTO ratings")):
            counted.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield counted
    finally:
        event.remove(engine, "before_cursor_execute", count)


@contextmanager
def inserts_held(app):
    """While inside, every INSERT into ratings waits for the lock this connection holds."""
    from service.extensions import db

    with app.app_context():
        conn = db.engine.connect()
    tx = conn.begin()
    conn.execute(text("LOCK TABLE ratings IN SHARE ROW EXCLUSIVE MODE"))
    try:
        yield conn
    finally:
        tx.commit()
        conn.close()


def post_in_threads(app, posts: list[tuple[str, dict]]) -> tuple[list, list[threading.Thread]]:
    """Start one thread per (key, body); answers land in the returned list, in order."""
    answers = [None] * len(posts)

    def post(n, key, body):
        try:
            resp = app.test_client().post("/api/v1/ratings", json=body, headers=bearer(key))
        except Exception as err:  # noqa: BLE001 — the app under test raised instead of answering
            answers[n] = ("raised", repr(err))
            return
        answers[n] = (resp.status_code, resp.get_json())

    threads = [threading.Thread(target=post, args=(n, key, body)) for n, (key, body) in enumerate(posts)]
    for t in threads:
        t.start()
    return answers, threads


def queued(app) -> int:
    group = app.extensions.get("hcp_insert_group")
    return group.waiting() if group is not None else 0


def test_ratings_queued_behind_an_insert_share_the_next_one_and_each_gets_its_own_answer(app, org, query):
    dept = org.department("d1")
    _, key = org.device(dept)
    first = rating_body(level=5)
    twin = rating_body(level=4)
    clash = rating_body(level=3)
    others = [rating_body(level=level) for level in (1, 2, 5, 5)]
    queued_posts = [(key, b) for b in others] + [(key, twin), (key, dict(twin)),
                                                 (key, clash), (key, {**clash, "level": 2})]
    with inserts_counted(app) as inserts:
        with inserts_held(app):
            lead, lead_threads = post_in_threads(app, [(key, first)])
            wait_for(lambda: len(inserts) == 1, timeout=10, message="the first INSERT to be sent")
            answers, threads = post_in_threads(app, queued_posts)
            wait_for(lambda: queued(app) == len(queued_posts), timeout=10, message="every other rating to queue")
        for t in lead_threads + threads:
            t.join(timeout=30)
    # One INSERT for the first rating, one for all that queued behind it.
    assert len(inserts) == 2
    assert lead[0][0] == 201
    stored = dict(query(lambda s: s.execute(select(Rating.client_id, Rating.id)).all()))
    for (_, body), (status, answer) in zip(queued_posts[:4], answers[:4]):
        assert status == 201 and answer["id"] == stored[body["client_id"]]
    # The same body twice: one created, one a replay with the same answer.
    assert sorted(a[0] for a in answers[4:6]) == [200, 201] and answers[4][1] == answers[5][1]
    # The same client_id with another body: one created, one conflict.
    assert sorted(a[0] for a in answers[6:8]) == [201, 409]
    assert query(lambda s: s.scalar(select(func.count(Rating.id)))) == 1 + 4 + 1 + 1


def test_a_row_that_fails_the_shared_insert_costs_the_others_nothing(app, org, query):
    dept = org.department("d1")
    _, key = org.device(dept)
    doomed, doomed_key = org.device(dept, window="9")
    good = [rating_body(level=5) for _ in range(3)]
    # Each device posts once first, so its row sits in the web process's device cache.
    warm, warm_threads = post_in_threads(app, [(key, rating_body(level=5)), (doomed_key, rating_body(level=5))])
    for t in warm_threads:
        t.join(timeout=30)
    with inserts_counted(app) as inserts:
        with inserts_held(app) as lock:
            lead, lead_threads = post_in_threads(app, [(key, rating_body(level=5))])
            wait_for(lambda: len(inserts) == 1, timeout=10, message="the first INSERT to be sent")
            answers, threads = post_in_threads(app, [(key, b) for b in good] + [(doomed_key, rating_body())])
            wait_for(lambda: queued(app) == 4, timeout=10, message="the four ratings to queue")
            # The device goes while its rating waits: that row now breaks the foreign key.
            lock.execute(text("DELETE FROM ratings WHERE device_id = :d"), {"d": doomed.id})
            lock.execute(text("DELETE FROM devices WHERE id = :d"), {"d": doomed.id})
        for t in lead_threads + threads:
            t.join(timeout=30)
    assert lead[0][0] == 201
    assert [a[0] for a in answers[:3]] == [201, 201, 201]
    # Its own row failed (its device is gone): 503 with Retry-After, never a 500; a retry
    # is checked afresh.
    assert answers[3][0] == 503 and answers[3][1]["message"] == "data changed meanwhile, retry later", answers[3]
    ids = set(query(lambda s: s.scalars(select(Rating.client_id)).all()))
    assert {b["client_id"] for b in good} <= ids
    assert query(lambda s: s.scalar(select(func.count(Device.id)))) == 1
