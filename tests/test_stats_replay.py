"""A district's year replayed through the public batch API reproduces its reported figures.

The seed's district reported, for 2021 up to 7 Dec: 64,339 ratings, 64,152 good, 187 bad,
差评处置率 100 %, 差评整改率 100 %.
"""
from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from models import Case, Rating, User
from tests.support import bearer

SH = timezone(timedelta(hours=8))
TOTAL, GOOD, BAD = 64_339, 64_152, 187


# 129 batch posts: the intake's per-batch statement building dominates, which is minutes
# on a busy SQLite laptop run; the PostgreSQL run covers it.
@pytest.mark.postgres_only
def test_district_year_through_the_batch_api(app, client, org):
    root = org.department("district", "示范区政务服务中心")
    hall = org.department("hall", "综合窗口", parent=root)
    keys = [org.device(hall, channel=ch, window=w, name=ch)[1]
            for ch, w in (("hall_terminal", "1"), ("hall_tablet", "2"), ("pc", None), ("mobile", None))]
    org.user("handler", "handler", hall)
    manager = org.user("manager", "manager", root)

    rng = random.Random(2021)
    start, days = datetime(2021, 1, 1, tzinfo=SH), (date(2021, 12, 7) - date(2021, 1, 1)).days + 1
    levels = [rng.choice((1, 2)) for _ in range(BAD)] + [rng.choice((3, 4, 5, 5, 5)) for _ in range(GOOD)]
    rng.shuffle(levels)
    bodies = [{"client_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "level": level,
               # any second of the local year to 7 Dec, midnight ends included
               "rated_at": (start + timedelta(seconds=rng.randrange(days * 86400))).isoformat()}
              for level in levels]
    for n, i in enumerate(range(0, TOTAL, 500)):
        resp = client.post("/api/v1/ratings/batch", json={"ratings": bodies[i:i + 500]},
                           headers=bearer(keys[n % len(keys)]))
        assert resp.status_code == 200
        assert {r["status"] for r in resp.get_json()["results"]} == {"created"}

    from service.cases.routing import route
    from service.cases.workflow import apply
    from service.extensions import db

    with app.app_context():
        bad_ids = list(db.session.scalars(select(Rating.id).where(Rating.negative.is_(True))))
        assert len(bad_ids) == BAD
        for rid in bad_ids:
            route(db.session, rid)
        db.session.commit()
        handler = db.session.scalar(select(User).where(User.username == "handler"))
        for case in db.session.scalars(select(Case)):
            apply(db.session, case, handler, "verify", {"contacted": True})
            apply(db.session, case, handler, "rectify", {"measures": {"cause": "流程不清", "action": "一次性告知"}})
            apply(db.session, case, handler, "feedback", {"contacted": True, "satisfied": True})
        db.session.commit()

    token = org.token(manager)
    got = client.get("/api/v1/stats/summary", query_string={"from": "2021-01-01", "to": "2021-12-07"},
                     headers=bearer(token)).get_json()
    assert (got["total"], got["good"], got["bad"]) == (TOTAL, GOOD, BAD)
    assert (got["disposal_rate"], got["rectification_rate"]) == (1.0, 1.0)
    assert got["open"] == 0
    by_month = client.get("/api/v1/stats/breakdown", headers=bearer(token),
                          query_string={"from": "2021-01-01", "to": "2021-12-07", "by": "month"}).get_json()
    assert len(by_month["groups"]) == 12 and sum(g["total"] for g in by_month["groups"]) == TOTAL
