"""The exchange outbox (SPEC §8): every stored rating and every closed case writes its 上报
record in the same transaction as the change; a rollback leaves none."""
from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from models import Case, Department, OutboxRecord, Rating, User, rating_record_id
from models.types import utcnow
from tests.support import bearer, rating_body
from tests.test_citizen import invited  # noqa: F401 — the fixture
from tests.test_default_ratings import expire

MEASURES = {"cause": "材料清单未一次性告知", "action": "窗口张贴清单"}


@pytest.fixture
def hall(org):
    dept = org.department("hall", "区政务服务中心")
    _, key = org.device(dept)
    return dept, key


def records(query, **where):
    return query(lambda s: s.scalars(select(OutboxRecord).filter_by(**where).order_by(OutboxRecord.id)).all())


def test_a_single_rating_writes_its_record(client, hall, query):
    resp = client.post("/api/v1/ratings", json=rating_body(level=4), headers=bearer(hall[1]))
    assert resp.status_code == 201
    rid = resp.get_json()["id"]
    [rec] = records(query)
    assert (rec.record_id, rec.kind, rec.rating_id, rec.status, rec.attempts) == (
        rating_record_id(rid), "rating", rid, "pending", 0)
    assert rec.due_at == rec.created_at == query(lambda s: s.get(Rating, rid).received_at)


def test_a_batch_writes_one_record_per_created_rating_and_a_replay_none(client, hall, query):
    bodies = [rating_body(level=level) for level in (1, 3, 5)]
    answer = client.post("/api/v1/ratings/batch", json={"ratings": bodies + [{"level": 9}]}, headers=bearer(hall[1]))
    ids = [r["id"] for r in answer.get_json()["results"] if r["status"] == "created"]
    assert len(ids) == 3
    again = client.post("/api/v1/ratings/batch", json={"ratings": bodies}, headers=bearer(hall[1]))
    assert {r["status"] for r in again.get_json()["results"]} == {"duplicate"}
    assert sorted(r.rating_id for r in records(query)) == sorted(ids)
    assert {r.record_id for r in records(query)} == {rating_record_id(i) for i in ids}


@contextmanager
def outbox_off(app):
    settings = app.config["HCP_SETTINGS"]
    settings.exchange_outbox = False
    try:
        yield
    finally:
        settings.exchange_outbox = True


def test_with_the_outbox_off_ratings_write_none(app, client, hall, query):
    with outbox_off(app):
        assert client.post("/api/v1/ratings", json=rating_body(), headers=bearer(hall[1])).status_code == 201
        client.post("/api/v1/ratings/batch", json={"ratings": [rating_body(), rating_body()]},
                    headers=bearer(hall[1]))
    assert query(lambda s: s.scalar(select(func.count(Rating.id)))) == 3
    assert records(query) == []


class Boom(Exception):
    pass


def _device(app):
    from models import Device
    from service.extensions import db

    row = db.session.scalar(select(Device))
    device = SimpleNamespace(id=row.id, department_id=row.department_id, channel=row.channel, window=row.window)
    db.session.commit()  # the session's transaction ends before the intake's connection writes
    return device


def _next_rating_id(conn) -> int:
    if conn.dialect.name == "postgresql":
        last, called = conn.execute(text("SELECT last_value, is_called FROM ratings_id_seq")).one()
        return last + 1 if called else last
    return (conn.scalar(text("SELECT seq FROM sqlite_sequence WHERE name = 'ratings'")) or 0) + 1


def test_a_rolled_back_intake_leaves_neither_rating_nor_record(app, hall, query):
    from service.extensions import db
    from service.ratings.intake import store
    from service.ratings.schemas import RatingIn

    with app.app_context():
        device = _device(app)
        bodies = [RatingIn().load(rating_body(level=level)) for level in (1, 5)]
        for many in (bodies[:1], bodies):
            with pytest.raises(Boom):
                with db.engine.begin() as conn:  # a transaction (the PostgreSQL intake autocommits)
                    assert {o.status for o in store(conn, device, many)} == {"created"}
                    raise Boom
    assert query(lambda s: s.scalar(select(func.count(Rating.id)))) == 0
    assert records(query) == []


@pytest.mark.parametrize("size", [1, 3])
def test_an_outbox_row_that_cannot_be_written_fails_the_rating_with_it(app, hall, query, size):
    """The intake's own connection (autocommit on PostgreSQL): rating and record are one statement."""
    from service.pooling import intake_engine
    from service.ratings.intake import store
    from service.ratings.schemas import RatingIn

    with app.app_context():
        device = _device(app)
        with intake_engine().begin() as conn:
            taken = _next_rating_id(conn)
            conn.execute(OutboxRecord.__table__.insert(), [  # squat on the record ids the ratings will get
                {"record_id": rating_record_id(taken + n), "kind": "rating", "rating_id": 0, "status": "sent",
                 "created_at": utcnow(), "due_at": utcnow()} for n in range(size)])
        with pytest.raises(IntegrityError):
            with intake_engine().begin() as conn:
                store(conn, device, [RatingIn().load(rating_body()) for _ in range(size)])
    assert query(lambda s: s.scalar(select(func.count(Rating.id)))) == 0


def test_the_citizen_page_and_default_ratings_write_records_once(app, client, invited, query, shell):  # noqa: F811
    token = invited("P-1")
    assert client.post(f"/r/{token}", data={"level": "4"}).status_code == 303
    invited("P-2")
    invited("P-3")
    expire(app)
    shell("ratings", "run-defaults")
    shell("ratings", "run-defaults")
    ratings = query(lambda s: s.scalars(select(Rating.id)).all())
    assert len(ratings) == 3
    assert sorted(r.rating_id for r in records(query)) == sorted(ratings)


def _case(app, hall, client, org, real_name=False):
    """A bad rating routed to handler h of the hall; (case id, handler, supervisor)."""
    from service.cases.routing import route
    from service.extensions import db

    dept, key = hall
    org.user("h", "handler", dept)
    org.user("s", "supervisor", dept)
    body = rating_body(level=1, project_no="P-9")
    rid = client.post("/api/v1/ratings", json=body, headers=bearer(key)).get_json()["id"]
    with app.app_context():
        case_id = route(db.session, rid)
        db.session.commit()
    return case_id


def _act(app, case_id, username, action, **data):
    from service.cases import workflow
    from service.extensions import db

    with app.app_context():
        case = db.session.get(Case, case_id)
        user = db.session.scalar(select(User).where(User.username == username))
        workflow.apply(db.session, case, user, action, data)
        db.session.commit()


def test_a_case_closing_writes_its_result_and_reopening_then_closing_another(app, client, hall, org, query):
    case_id = _case(app, hall, client, org)
    _act(app, case_id, "h", "verify")
    _act(app, case_id, "h", "rectify", measures=MEASURES)
    assert records(query, kind="case") == []  # not closed yet
    _act(app, case_id, "h", "feedback", contacted=True, satisfied=True)
    [rec] = records(query, kind="case")
    closed = query(lambda s: s.get(Case, case_id))
    assert rec.case_id == case_id and rec.rating_id == closed.rating_id and rec.client_id is None
    assert rec.payload == {"outcome": "rectified", "cause": MEASURES["cause"], "action": MEASURES["action"],
                           "contacted": True, "satisfied": True, "closed_at": closed.closed_at.isoformat()}

    _act(app, case_id, "s", "reopen", reason="群众再次投诉")
    _act(app, case_id, "h", "claim_invalid", reason="误评")
    _act(app, case_id, "s", "approve")  # four eyes: h claimed, s approves
    first, second = records(query, kind="case")
    assert first.record_id != second.record_id
    assert second.payload["outcome"] == "invalid" and second.payload["cause"] == "误评"


def test_a_rolled_back_closing_leaves_no_record(app, client, hall, org, query):
    from service.cases import workflow
    from service.extensions import db

    case_id = _case(app, hall, client, org)
    _act(app, case_id, "h", "verify")
    _act(app, case_id, "h", "rectify", measures=MEASURES)
    with app.app_context():
        case = db.session.get(Case, case_id)
        workflow.apply(db.session, case, db.session.scalar(select(User).where(User.username == "h")),
                       "feedback", {"contacted": False, "satisfied": None})
        db.session.flush()
        db.session.rollback()
    assert records(query, kind="case") == []
    assert query(lambda s: s.get(Case, case_id).status) == "feedback"


def test_departments_set_credit_code(app, hall, query, shell):
    out = shell("departments", "set", "hall", "--credit-code", "11330106002482000b").stdout
    assert "11330106002482000B" in out
    assert query(lambda s: s.scalar(select(Department.credit_code))) == "11330106002482000B"
    bad = shell("departments", "set", "hall", "--credit-code", "11330106002482000C", check=False)
    assert bad.returncode != 0 and "check character" in bad.stderr
    assert shell("departments", "set", "nowhere", "--credit-code", "", check=False).returncode != 0
    shell("departments", "set", "hall", "--credit-code", "")
    assert query(lambda s: s.scalar(select(Department.credit_code))) is None
