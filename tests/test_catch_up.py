"""The catch-up sweep: ratings whose after-commit tasks never ran (a broker down at intake)
get their term counts and the suspicious rules from beat, once, in bounded steps."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from models import InsightCounted, SweepWatermark
from tests.support import CeleryWorker, bearer, wait_for
from tests.test_stats import district  # noqa: F401 — fixture
from tests.test_suspicious import START, flags, good, store

GRACE = timedelta(seconds=120)
COMMENT = "不动产登记要跑两趟，材料不全"


def stored_without_tasks(app, device, specs) -> list[int]:
    """Stored and committed through the intake's code path, and no task ever run."""
    from models import Device
    from service.extensions import db
    from service.ratings.intake import store as intake_store

    with app.app_context():
        outcomes = intake_store(db.session.connection(), db.session.get(Device, device.id),
                                [{"client_id": uuid.uuid4(), **s} for s in specs])
        db.session.commit()
        return [o.rating["id"] for o in outcomes]


def catch_up(app) -> tuple[int, int, int]:
    from service.extensions import db
    from service.ratings import after_commit

    with app.app_context():
        out = after_commit.catch_up(db.session, GRACE)
        db.session.commit()
        return out


def test_catch_up_counts_and_checks_what_no_task_did_once(app, district, query, clock):  # noqa: F811
    from service.extensions import db
    from service.insights import counting

    now = datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)
    clock.set(now)
    devs = district["devices"]
    done = store(app, devs["b-hall"], [good(at=START, comment=COMMENT)])  # its tasks ran
    # a burst on one kiosk, each with its own words (so only the burst rule applies)
    burst = sorted(stored_without_tasks(app, devs["a1-hall"], [
        good(at=START + timedelta(seconds=i), comment=f"{COMMENT}，第{i}次") for i in range(12)]))
    with app.app_context():
        assert len(counting.differences(db.session)) > 0  # the burst's terms are missing
    assert flags(query, rule="burst") == []

    clock.set(now + GRACE / 2)  # within the grace its tasks may yet run: nothing done
    assert catch_up(app) == (0, 0, 0)
    clock.set(now + GRACE + timedelta(seconds=1))
    assert catch_up(app) == (13, 12, 12)
    with app.app_context():
        assert counting.differences(db.session) == []
    assert [(rule, ids) for rule, _d, _s, ids, _ in flags(query)] == [("burst", burst)]
    assert catch_up(app) == (0, 0, 0)  # the watermark moved past them

    # Walked again from the start: nothing is counted or flagged twice.
    with app.app_context():
        db.session.get(SweepWatermark, "after_commit").last_id = 0
        db.session.commit()
    assert catch_up(app) == (13, 0, 0)
    with app.app_context():
        assert counting.differences(db.session) == []
    assert [(rule, ids) for rule, _d, _s, ids, _ in flags(query)] == [("burst", burst)]
    assert query(lambda s: s.scalar(select(InsightCounted.rating_id).where(
        InsightCounted.rating_id == done[0]))) == done[0]


def test_catch_up_goes_in_bounded_steps(app, district, clock):  # noqa: F811
    from service.extensions import db
    from service.ratings import after_commit

    now = datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)
    clock.set(now)
    ids = stored_without_tasks(app, district["devices"]["root-pc"],
                               [good(at=START + timedelta(minutes=i)) for i in range(5)])
    clock.set(now + GRACE * 2)
    with app.app_context():
        steps = []
        while True:
            n, _, checked = after_commit.catch_up(db.session, GRACE, chunk=2)
            db.session.commit()
            if not n:
                break
            steps.append((n, checked))
        assert steps == [(2, 2), (2, 2), (1, 1)]
        assert db.session.get(SweepWatermark, "after_commit").last_id == max(ids)


@pytest.mark.postgres_only  # the embedded broker is a file and cannot go down
def test_redis_down_at_intake_then_beat_catches_up(app, hcp_env, redis_server, client, district, query):  # noqa: F811
    """Redis stopped while a kiosk posts a burst with comments: every rating is stored (201s),
    no task reaches a worker; once Redis is back, the worker's beat counts the terms and flags
    the burst."""
    from models import Device
    from service.auth.access import new_device_key
    from service.extensions import db
    from service.insights import counting
    from service.privacy import key_digest

    with app.app_context():
        key = new_device_key()
        db.session.get(Device, district["devices"]["b-hall"].id).key_hash = key_digest(key)
        db.session.commit()
    beat = CeleryWorker({**hcp_env, "HCP_CATCH_UP_SECONDS": "1", "HCP_CATCH_UP_GRACE_SECONDS": "2"},
                        beat=True, name="catch-up")
    beat.start()
    try:
        redis_server.stop()
        try:
            body = {"ratings": [{"client_id": str(uuid.uuid4()), "level": 5, "comment": COMMENT,
                                 "rated_at": (START + timedelta(seconds=i)).isoformat()} for i in range(12)]}
            resp = client.post("/api/v1/ratings/batch", json=body, headers=bearer(key))
            assert resp.status_code == 200
            ids = sorted(r["id"] for r in resp.get_json()["results"] if r["status"] == "created")
            assert len(ids) == 12
        finally:
            redis_server.start()
        wait_for(lambda: flags(query, rule="burst") and flags(query, rule="burst")[0][3] == ids,
                 timeout=60, message="beat's catch-up to flag the burst once Redis is back")

        def counted():
            with app.app_context():
                return counting.differences(db.session) == []
        wait_for(counted, timeout=30, message="the burst's terms counted")
    finally:
        beat.stop()
