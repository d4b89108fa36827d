"""Outbox records stored coded by their writers (SPEC §8): on PostgreSQL every writer stores
each upstream record's JSON text as the push would code it now, the push sends that text,
and a record whose stored text no longer matches (another profile or HCP_AREA_CODE, a
credit code or an item's code changed, a rating changed) is coded again when claimed."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text, update

from models import Department, OutboxRecord, Rating, ServiceItem, rating_record_id
from tests.support import bearer, rating_body
from tests.test_citizen import invited  # noqa: F401 — the fixture
from tests.test_default_ratings import expire
from tests.test_exchange_outbox import MEASURES, _act, _case
from tests.test_exchange_push import hall, rate, run_push, settings_as  # noqa: F401 — hall: the fixture

CREDIT, CREDIT_2 = "11330106002482000B", "91330106MA2B3C4D5D"  # well-formed unified social credit codes


def python_coded(app, **overrides) -> dict[str, dict | None]:
    """Each record as Python's encoder codes it now (None: held), by record id."""
    from service.exchange import profiles, records
    from service.exchange.profiles import Held
    from service.extensions import db

    with settings_as(app, **overrides) as settings, app.app_context():
        profile = profiles.load(settings.exchange_profile)
        recs = db.session.scalars(select(OutboxRecord)).all()
        neutral = records.neutral(db.session, recs, settings.area_code)
        out = {}
        for rec in recs:
            try:
                out[rec.record_id] = json.loads(json.dumps(records.shaped(profile, rec, neutral[rec.id]),
                                                           ensure_ascii=False, default=str))
            except Held:
                out[rec.record_id] = None
        return out


def stored(query) -> dict[str, OutboxRecord]:
    return {r.record_id: r for r in query(lambda s: s.scalars(select(OutboxRecord)).all())}


def current_for(app) -> str:
    from service.exchange import pgcode
    from service.extensions import db

    settings = app.config["HCP_SETTINGS"]
    made = pgcode.coding(settings.exchange_profile, settings.area_code)
    with app.app_context():
        return db.session.scalar(text(f"SELECT {made.coded_for()}"))


def sent_data(platform) -> dict[str, dict]:
    return {r["id"]: r for _, body in platform.batches for r in body["records"]}


@pytest.mark.postgres_only
def test_every_writer_stores_its_records_coded_as_the_push_would_code_them(app, client, hall, org, query,  # noqa: F811
                                                                          invited, shell):  # noqa: F811
    rate(client, hall[1], 3)  # the batch intake
    client.post("/api/v1/ratings", json=rating_body(level=5, comment='引号 " 反斜杠 \\ 换行\n'),
                headers=bearer(hall[1]))  # the single intake
    token = invited("P-1")
    assert client.post(f"/r/{token}", data={"level": "4"}).status_code == 303  # the citizen page
    invited("P-2")
    expire(app)
    shell("ratings", "run-defaults")  # a default rating, by the sweep's one statement (another process)
    case_id = _case(app, hall, client, org)  # the rating's record, then its case's
    _act(app, case_id, "h", "verify")
    _act(app, case_id, "h", "rectify", measures=MEASURES)
    _act(app, case_id, "h", "feedback", contacted=True, satisfied=True)
    coded, now = python_coded(app), current_for(app)
    recs = stored(query)
    assert {r.kind for r in recs.values()} == {"rating", "case"} and len(recs) == 8
    assert any(r.coded and json.loads(r.coded)["data"]["满意度代码"] == "5" for r in recs.values())
    assert sum(1 for c in coded.values() if c is None) == 1  # the default rating: no code in gbt39046
    for record_id, rec in recs.items():
        assert (json.loads(rec.coded) if rec.coded else None) == coded[record_id], record_id
        assert rec.coded_for == (now if rec.coded else None), record_id


@pytest.mark.postgres_only
def test_the_push_sends_the_stored_text(app, client, hall, platform, query):  # noqa: F811
    ids = rate(client, hall[1], 2)
    marked = json.dumps({"id": rating_record_id(ids[0]), "type": "rating", "data": {"stored": "as stored"}})
    with app.app_context():
        from service.extensions import db

        db.session.execute(update(OutboxRecord).where(OutboxRecord.rating_id == ids[0]).values(coded=marked))
        db.session.commit()
    assert run_push(app).sent == 2
    assert sent_data(platform)[rating_record_id(ids[0])]["data"] == {"stored": "as stored"}


@pytest.mark.parametrize("change", ["profile", "area_code", "credit_code", "item_code", "rating", "no_code"])
def test_a_record_coded_for_what_has_changed_since_is_sent_as_coded_now(app, client, org, platform, query, change):
    """Each change after the records were written (stored coded in zhejiang, or gbt39046 for
    the profile's change): they are sent as Python's encoder codes them at the push."""
    from service.extensions import db
    from service.org import set_credit_code

    dept = org.department("hall", "区政务服务中心")
    org.item("license", dept)
    _, key = org.device(dept)
    with app.app_context():
        set_credit_code(db.session.get(Department, dept.id), CREDIT)
        db.session.commit()
    written = {"exchange_profile": "gbt39046" if change == "profile" else "zhejiang"}
    with settings_as(app, **written):
        ids = rate(client, key, 3, item_code="license")
    if app.config["HCP_SETTINGS"].exchange_outbox and query(lambda s: s.get_bind().dialect.name) == "postgresql":
        assert all(r.coded for r in stored(query).values())
    pushed = {"exchange_profile": "zhejiang"}
    with app.app_context():
        if change == "area_code":
            pushed["area_code"] = "330108"
        elif change == "credit_code":
            set_credit_code(db.session.get(Department, dept.id), CREDIT_2)
        elif change == "item_code":
            db.session.execute(update(ServiceItem).values(code="license-2"))
        elif change == "rating":
            db.session.execute(update(Rating).where(Rating.id == ids[1]).values(comment="改过的评语"))
        elif change == "no_code":  # stored none: coded at the claim
            db.session.execute(update(OutboxRecord).values(coded=None))
        db.session.commit()
    expected = python_coded(app, **pushed)
    done = run_push(app, **pushed)
    assert (done.sent, done.held, done.failed) == (3, 0, 0)
    got = sent_data(platform)
    assert {i: json.loads(json.dumps(got[i], ensure_ascii=False)) for i in got} == expected
    data = got[rating_record_id(ids[1])]["data"]
    assert data["areaCode"] == ("330108" if change == "area_code" else "330106")
    assert data["deptCode"] == (CREDIT_2 if change == "credit_code" else CREDIT)
    assert data["taskCode"] == ("license-2" if change == "item_code" else "license")
    assert data["writingEvaluation"] == ("改过的评语" if change == "rating" else None)


def test_a_record_held_at_its_writing_is_sent_once_its_department_has_a_credit_code(app, client, org, platform,
                                                                                     query):
    from service.extensions import db
    from service.org import set_credit_code

    dept = org.department("hall", "区政务服务中心")
    _, key = org.device(dept)
    with settings_as(app, exchange_profile="zhejiang"):
        ids = rate(client, key, 2)
        assert all(r.coded is None for r in stored(query).values())  # held: no code stored
        with app.app_context():
            set_credit_code(db.session.get(Department, dept.id), CREDIT)
            db.session.commit()
        done = run_push(app)
    assert (done.sent, done.held) == (2, 0)
    assert sent_data(platform)[rating_record_id(ids[0])]["data"]["deptCode"] == CREDIT


@pytest.mark.postgres_only
def test_the_coding_epoch_moves_only_when_a_coded_value_changes(app, client, org, query):
    from service.extensions import db
    from service.org import set_credit_code

    def epoch() -> int:
        return query(lambda s: s.scalar(text("SELECT epoch FROM exchange_coding")))

    dept = org.department("hall", "区政务服务中心")
    _, key = org.device(dept)
    ids = rate(client, key, 1)
    first = epoch()
    with app.app_context():
        db.session.execute(update(Rating).where(Rating.id == ids[0]).values(excluded_at=None))  # not coded
        db.session.execute(update(Department).values(name="改名"))
        db.session.commit()
        assert epoch() == first
        set_credit_code(db.session.get(Department, dept.id), CREDIT)
        db.session.commit()
    assert epoch() == first + 1
