"""The push (上报, SPEC §8) against the fake platform (tests/fake_platform.py): batches,
the profile's shape, the token, backoff with jitter on 5xx and timeouts, per-record
rejections, held records, stable record ids, one sender per record."""
from __future__ import annotations

import random
import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from models import OutboxRecord, rating_record_id
from models.types import utcnow
from service.exchange import push
from tests.support import bearer, rating_body, wait_for


@pytest.fixture
def hall(org):
    dept = org.department("hall", "区政务服务中心")
    _, key = org.device(dept)
    return dept, key


@contextmanager
def settings_as(app, **values):
    settings = app.config["HCP_SETTINGS"]
    saved = {k: getattr(settings, k) for k in values}
    for k, v in values.items():
        setattr(settings, k, v)
    try:
        yield settings
    finally:
        for k, v in saved.items():
            setattr(settings, k, v)


def rate(client, key, n: int = 1, **extra) -> list[int]:
    """n ratings through the batch endpoint; their ids."""
    ids = []
    for start in range(0, n, 500):
        bodies = [rating_body(level=4, **extra) for _ in range(min(500, n - start))]
        answer = client.post("/api/v1/ratings/batch", json={"ratings": bodies}, headers=bearer(key)).get_json()
        ids += [r["id"] for r in answer["results"]]
    return ids


def run_push(app, **overrides):
    from service.extensions import db

    with settings_as(app, **overrides) as settings, app.app_context():
        return push.push(db.session, settings)


def outbox(query):
    return {r.record_id: r for r in query(lambda s: s.scalars(select(OutboxRecord)).all())}


def test_pending_records_go_in_batches_of_100_in_the_profiles_shape_with_the_token(app, client, hall, platform,
                                                                                   query):
    ids = rate(client, hall[1], 250)
    done = run_push(app, exchange_senders=1)  # one claimer: the batches' sizes are exact
    assert (done.sent, done.failed, done.held) == (250, 0, 0)
    assert sorted(len(body["records"]) for _, body in platform.batches) == [50, 100, 100]
    assert set(platform.auth) == {"Bearer platform-token"}
    assert sorted(platform.received) == sorted(rating_record_id(i) for i in ids)
    first = platform.batches[0][1]
    assert (first["profile"], first["version"]) == ("gbt39046", "GB/T 39046-2020")
    record = first["records"][0]
    assert record["type"] == "rating"
    assert record["data"]["满意度代码"] == "2" and record["data"]["满意度"] == "满意"  # level 4 in 1-best codes
    assert record["data"]["评价时间"] == "20261120T093000" and record["data"]["行政区划"] == "330106"
    assert {r.status for r in outbox(query).values()} == {"sent"}
    assert run_push(app).handled == 0  # nothing twice


def test_a_5xx_backs_off_exponentially_with_jitter_then_delivers(app, client, hall, platform, query, clock):
    rate(client, hall[1], 3)
    now = utcnow()
    clock.set(now)
    platform.fail_next = [500, 502]
    done = run_push(app)
    assert (done.sent, done.failed) == (0, 3) and "HTTP 500" in done.errors[0]
    recs = outbox(query).values()
    base = app.config["HCP_SETTINGS"].exchange_backoff_seconds
    waits = [(r.due_at - now).total_seconds() for r in recs]
    assert all(base / 2 <= w <= base for w in waits) and {r.attempts for r in recs} == {1}
    assert {r.reason for r in recs} == {"HTTP 500 from the receiver"}
    assert run_push(app).handled == 0  # not due yet

    clock.set(now + timedelta(seconds=base))
    assert run_push(app).failed == 3  # the 502
    waits = [(r.due_at - now - timedelta(seconds=base)).total_seconds() for r in outbox(query).values()]
    assert all(base <= w <= 2 * base for w in waits)  # doubled

    clock.set(now + timedelta(seconds=10 * base))
    assert run_push(app).sent == 3
    assert {r.status for r in outbox(query).values()} == {"sent"} and platform.duplicates() == 0


def test_the_backoff_doubles_up_to_its_most_and_jitters():
    from config import load_settings

    settings = load_settings({"HCP_EXCHANGE_BACKOFF_SECONDS": "4", "HCP_EXCHANGE_BACKOFF_MAX_SECONDS": "60"})
    rand = random.Random(7)
    caps = [4, 8, 16, 32, 60, 60]
    for attempts, cap in enumerate(caps, start=1):
        waits = {push.backoff(settings, attempts, rand).total_seconds() for _ in range(20)}
        assert all(cap / 2 <= w <= cap for w in waits) and len(waits) > 1


def test_a_receiver_slower_than_the_timeout_is_a_failure_retried(app, client, hall, platform, query):
    rate(client, hall[1], 2)
    platform.slow_next = [2.0]
    done = run_push(app, exchange_timeout=0.3)
    assert done.failed == 2 and "unreachable" in done.errors[0]
    assert {r.status for r in outbox(query).values()} == {"pending"}


def test_a_rejected_record_keeps_its_reason_and_waits_for_a_requeue(app, client, hall, platform, query, clock):
    ids = rate(client, hall[1], 3)
    bad = rating_record_id(ids[1])
    platform.rejects = {bad: "办件编号不存在"}
    done = run_push(app)
    assert (done.sent, done.rejected) == (2, 1)
    rec = outbox(query)[bad]
    assert (rec.status, rec.reason) == ("rejected", "办件编号不存在")
    clock.set(utcnow() + timedelta(days=2))
    assert run_push(app).handled == 0  # never retried on its own


def test_a_value_the_profile_cannot_code_is_held_never_sent(app, client, org, platform, query):
    dept = org.department("hotline-dept")
    _, key = org.device(dept, channel="hotline", window=None)
    ids = rate(client, key, 2)
    done = run_push(app, exchange_profile="zhejiang")
    assert done.held == 2 and platform.batches == []
    rec = outbox(query)[rating_record_id(ids[0])]
    assert rec.status == "held"
    assert "channel hotline has no code in profile zhejiang" in rec.reason
    assert "credit_code is not set" in rec.reason


def test_one_claim_of_coded_held_and_rejected_records_settles_each(app, client, hall, platform, query):
    """On PostgreSQL the claim groups the records it coded into batch bodies and sends the rest
    (here one with no code) to Python: each is still settled as its own answer says."""
    from models import Rating
    from service.extensions import db

    ids = rate(client, hall[1], 5)
    with app.app_context():
        db.session.execute(update(Rating).where(Rating.id == ids[2]).values(channel="no-channel"))
        db.session.commit()
    platform.rejects = {rating_record_id(ids[3]): "办件编号不存在"}
    done = run_push(app, exchange_batch=3)
    assert (done.sent, done.rejected, done.held, done.failed) == (3, 1, 1, 0)
    sent = [[r["id"] for r in body["records"]] for _, body in platform.batches]
    assert sorted(sum(sent, [])) == sorted(rating_record_id(i) for i in ids[:2] + ids[3:])
    assert max(len(b) for b in sent) <= 3
    recs = outbox(query)
    assert [recs[rating_record_id(i)].status for i in ids] == ["sent", "sent", "held", "rejected", "sent"]
    assert "channel no-channel has no code" in recs[rating_record_id(ids[2])].reason


def test_a_record_whose_sender_died_is_resent_under_the_same_id(app, client, hall, platform, query, clock):
    """PostgreSQL: the claim is row locks, gone with the dead sender's transaction — the next
    push sends the record at once. SQLite: the claim is a committed lease, so it waits it out."""
    from service.extensions import db

    [rid] = rate(client, hall[1], 1)
    now = utcnow()
    clock.set(now)
    with app.app_context():  # a sender claims the record and dies before sending
        assert [r.record_id for r in push.claim(db.session, app.config["HCP_SETTINGS"], now)] == [
            rating_record_id(rid)]
        postgres = db.session.get_bind().dialect.name == "postgresql"
        db.session.rollback()  # what its connection's end does to its transaction
    if not postgres:
        assert run_push(app).handled == 0  # leased to the dead sender
        clock.set(now + push.lease(app.config["HCP_SETTINGS"]) + timedelta(seconds=1))
    assert run_push(app).sent == 1
    assert list(platform.received) == [rating_record_id(rid)]


def test_an_answer_without_a_records_result_leaves_it_pending(app, client, hall, platform, query):
    ids = rate(client, hall[1], 2)
    original = platform._answer
    kept = []

    def forgetful(path, auth, raw):
        status, answer, delay = original(path, auth, raw)
        answer["results"] = answer["results"][:1]
        kept.extend(r["id"] for r in answer["results"])
        return status, answer, delay

    platform._answer = forgetful
    try:
        done = run_push(app)
    finally:
        platform._answer = original
    assert (done.sent, done.failed) == (1, 1)
    [answered] = kept
    [unanswered] = {rating_record_id(i) for i in ids} - {answered}
    assert outbox(query)[unanswered].status == "pending" and outbox(query)[answered].status == "sent"


def test_without_an_exchange_url_nothing_is_sent(app, client, hall, platform):
    rate(client, hall[1], 1)
    assert run_push(app, exchange_url=None).handled == 0 and platform.batches == []


@pytest.mark.postgres_only
def test_concurrent_senders_skip_each_others_records(app, client, hall, platform, query):
    """SKIP LOCKED: a claim in progress does not block another; the other takes different records."""
    from service.extensions import db

    rate(client, hall[1], 30)
    settings = app.config["HCP_SETTINGS"]
    with settings_as(app, exchange_batch=10), app.app_context():
        first = push.claim(db.session, settings, utcnow())  # not committed: rows locked
        got = {}

        def other():
            with app.app_context():
                got["ids"] = push.claim(db.session, settings, utcnow())
                db.session.commit()

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=20)
        assert not thread.is_alive(), "the second claim waited for the first's locks"
        db.session.commit()
    assert len(first) == len(got["ids"]) == 10 and not {r.id for r in first} & {r.id for r in got["ids"]}


def test_a_backlog_is_shared_by_the_pushs_sender_threads_each_record_once(app, client, hall, platform, query):
    """HCP_EXCHANGE_SENDERS: on PostgreSQL, after a full first batch, more senders join and
    SKIP LOCKED gives each its own records; SQLite (one writer) keeps one sender. The
    platform holds its second answer until another batch is in flight at the same time —
    which only concurrent senders can do (it gives up waiting after 5 s)."""
    from service.extensions import db

    ids = rate(client, hall[1], 1000)
    original, in_flight, calls, two = platform._answer, [0], [0], threading.Event()
    lock = threading.Lock()

    def overlapping(path, auth, raw):
        with lock:
            in_flight[0] += 1
            calls[0] += 1
            hold = calls[0] == 2  # the first batch is the push's own, before any helper starts
            if in_flight[0] >= 2:
                two.set()
        if hold:
            two.wait(timeout=5)
        try:
            return original(path, auth, raw)
        finally:
            with lock:
                in_flight[0] -= 1

    platform._answer = overlapping
    try:
        done = run_push(app, exchange_batch=50, exchange_senders=3)
    finally:
        platform._answer = original
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
    assert two.is_set() == postgres
    assert (done.sent, done.failed) == (1000, 0) and len(platform.batches) == 20
    assert sorted(platform.received) == sorted(rating_record_id(i) for i in ids) and platform.duplicates() == 0
    assert query(lambda s: s.scalar(select(func.count(OutboxRecord.id)).where(OutboxRecord.status == "sent"))) == 1000


@pytest.mark.postgres_only
def test_records_a_claimers_cursor_passed_by_are_sent_by_the_same_push(app, client, hall, platform, query):
    """Each claim of a drain starts where the one before ended (push._drain); the first ten
    records are locked elsewhere while the claims pass them, given back during the push, and
    still go out in it — by the last claim from the start — each once."""
    from service.extensions import db

    ids = rate(client, hall[1], 300)
    start = utcnow() - timedelta(hours=1)
    with app.app_context():  # one due_at each (a batch's records share theirs)
        for n, record_id in enumerate(sorted(ids)):
            db.session.execute(update(OutboxRecord).where(OutboxRecord.rating_id == record_id)
                               .values(due_at=start + timedelta(seconds=n)))
        db.session.commit()
        holder = db.engine.connect()
    holder.execute(select(OutboxRecord.id).order_by(OutboxRecord.due_at, OutboxRecord.id).limit(10)
                   .with_for_update())
    original, calls, released = platform._answer, [0], threading.Event()

    def give_back_on_the_fourth(path, auth, raw):
        calls[0] += 1
        if calls[0] == 4:
            holder.rollback()
            released.set()
        return original(path, auth, raw)

    platform._answer = give_back_on_the_fourth
    try:
        done = run_push(app, exchange_batch=50, exchange_senders=4)
    finally:
        platform._answer = original
        holder.close()
    assert released.is_set()
    assert (done.sent, done.failed) == (300, 0)
    assert sorted(platform.received) == sorted(rating_record_id(i) for i in ids) and platform.duplicates() == 0


def test_the_push_runs_in_the_celery_worker_and_beat_schedules_it(app, worker, client, hall, platform, query):
    from service import dispatch
    from workers.schedule import beat_schedule

    assert beat_schedule(app.config["HCP_SETTINGS"])["exchange-push"]["task"] == "workers.tasks.push_exchange"
    ids = rate(client, hall[1], 120)
    with app.app_context():
        dispatch.send("push_exchange")
    wait_for(lambda: len(platform.received) >= 120, timeout=60, message="the worker's push")
    assert sorted(platform.received) == sorted(rating_record_id(i) for i in ids)
    wait_for(lambda: query(lambda s: s.scalar(select(func.count(OutboxRecord.id))
                                             .where(OutboxRecord.status == "sent"))) == 120,
             message="the records marked sent")
