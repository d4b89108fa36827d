"""Bad rating → exactly one assigned case, by a real Celery worker (SPEC §2)."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from models import Case, CaseEvent, Rating
from models.types import utcnow
from service.cases import routing
from tests.support import bearer, rating_body, wait_for


def case_of(query, rating_id):
    return query(lambda s: s.scalar(select(Case).where(Case.rating_id == rating_id)))


@pytest.fixture
def hall(org):
    district = org.department("district", "区政务服务中心")
    bureau = org.department("bureau", "市场监管局", parent=district)
    org.item("license", bureau)
    _, key = org.device(district, channel="hall_tablet", window="5")
    return district, bureau, key


def test_bad_rating_becomes_an_assigned_case(worker, client, query, org, hall):
    district, bureau, key = hall
    busy = org.user("busy", "handler", bureau)
    idle = org.user("idle", "handler", bureau)
    org.user("elsewhere", "handler", district)
    # both start with no case: the tie goes to the lower id; then "busy" holds one open case
    first = client.post("/api/v1/ratings", json=rating_body(level=2, item_code="license"), headers=bearer(key))
    first_case = wait_for(lambda: case_of(query, first.get_json()["id"]), message="first case")
    assert first_case.assignee_id == busy.id

    resp = client.post("/api/v1/ratings", json=rating_body(level=1, item_code="license"), headers=bearer(key))
    assert resp.status_code == 201
    case = wait_for(lambda: case_of(query, resp.get_json()["id"]), message="case routed by the worker")
    assert case.status == "assigned" and case.department_id == bureau.id
    assert case.assignee_id == idle.id  # the handler with the fewest open cases
    history = query(lambda s: s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)).all())
    assert [(e.action, e.from_status, e.to_status) for e in history] == [("route", None, "assigned")]


def test_no_handler_leaves_the_case_unassigned(worker, client, query, hall):
    district, _, key = hall
    resp = client.post("/api/v1/ratings", json=rating_body(level=1), headers=bearer(key))
    case = wait_for(lambda: case_of(query, resp.get_json()["id"]), message="case")
    assert case.status == "unassigned" and case.assignee_id is None and case.department_id == district.id


def test_good_rating_gets_no_case(worker, client, query, hall):
    _, _, key = hall
    good = client.post("/api/v1/ratings", json=rating_body(level=3), headers=bearer(key)).get_json()["id"]
    bad = client.post("/api/v1/ratings", json=rating_body(level=2), headers=bearer(key)).get_json()["id"]
    wait_for(lambda: case_of(query, bad), message="the bad rating's case")
    # the queue is FIFO with one worker: the good rating, posted first, was long decided
    assert case_of(query, good) is None
    assert query(lambda s: s.scalar(select(func.count(Case.id)))) == 1


def test_case_is_visible_through_the_api(worker, client, query, org, hall):
    _, bureau, key = hall
    handler = org.user("h1", "handler", bureau)
    rid = client.post("/api/v1/ratings", json=rating_body(level=1, item_code="license"),
                      headers=bearer(key)).get_json()["id"]
    case = wait_for(lambda: case_of(query, rid), message="case")
    token = org.token(handler)
    listed = client.get("/api/v1/cases?assignee=me", headers=bearer(token)).get_json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == case.id
    detail = client.get(f"/api/v1/cases/{case.id}", headers=bearer(token)).get_json()
    assert detail["assignee"] == "h1" and detail["status"] == "assigned" and detail["department"] == "bureau"
    assert detail["rating"]["id"] == rid and detail["history"][0]["action"] == "route"
    assert client.get(f"/api/v1/ratings/{rid}", headers=bearer(token)).get_json()["case_id"] == case.id


def test_routing_twice_makes_one_case(app, client, query, hall):
    _, _, key = hall
    rid = client.post("/api/v1/ratings", json=rating_body(level=1), headers=bearer(key)).get_json()["id"]
    from service.extensions import db
    with app.app_context():
        first = routing.route(db.session, rid)
        db.session.commit()
        second = routing.route(db.session, rid)
        db.session.commit()
    assert first == second
    assert query(lambda s: s.scalar(select(func.count(Case.id)))) == 1
    assert query(lambda s: s.scalar(select(func.count(CaseEvent.id)))) == 1


def test_routing_ignores_good_and_missing_ratings(app, client, hall):
    _, _, key = hall
    rid = client.post("/api/v1/ratings", json=rating_body(level=4), headers=bearer(key)).get_json()["id"]
    from service.extensions import db
    with app.app_context():
        assert routing.route(db.session, rid) is None
        assert routing.route(db.session, 10**9) is None


def test_sweep_finds_bad_ratings_without_a_case(app, query, org, hall):
    """Ratings stored but never sent (as when the broker was down) are found by the sweep."""
    from models import Device
    from service.extensions import db
    from service.ratings.intake import store

    district, _, _ = hall
    device, _ = org.device(district, name="offline")
    with app.app_context():
        outcomes = store(db.session.connection(), db.session.get(Device, device.id), [
            {"client_id": uuid.uuid4(), "level": level, "rated_at": utcnow()}
            for level in (1, 5)])
        bad = outcomes[0].rating["id"]
        # Received "in an hour": the session worker's own sweep (1 s grace) leaves it alone,
        # so only the calls below decide whether it is found.
        db.session.get(Rating, bad).received_at = utcnow() + timedelta(hours=1)
        db.session.commit()
        assert routing.unrouted(db.session, timedelta(hours=-2)) == [bad]
        assert routing.unrouted(db.session, timedelta(seconds=0)) == []  # not old enough
        routing.route(db.session, bad)
        db.session.commit()
        assert routing.unrouted(db.session, timedelta(hours=-2)) == []
    assert query(lambda s: s.scalar(select(func.count(Rating.id)))) == 2


def test_the_sweep_takes_the_oldest_ids_first_up_to_its_limit(app, org):
    from models import Device
    from service.extensions import db
    from service.ratings.intake import store

    dept = org.department("d1")
    device, _ = org.device(dept)
    with app.app_context():
        outcomes = store(db.session.connection(), db.session.get(Device, device.id), [
            {"client_id": uuid.uuid4(), "level": 1, "rated_at": utcnow()} for _ in range(3)])
        ids = sorted(o.rating["id"] for o in outcomes)
        for rid in ids:  # out of the session worker's reach, as above
            db.session.get(Rating, rid).received_at = utcnow() + timedelta(hours=1)
        db.session.commit()
        assert routing.unrouted(db.session, timedelta(hours=-2), limit=2) == ids[:2]
        assert routing.unrouted(db.session, timedelta(hours=-2)) == ids


def route_received(app, device_id: int, received_at, rated_at=None) -> Case:
    """Store a bad rating of a real-name rater (so it has a callback deadline) that reached
    hcp at ``received_at`` and route it at once.

    Rating and case are committed together, so the session worker's sweep never sees
    the rating without its case.
    """
    from models import Device
    from service.extensions import db
    from service.ratings.intake import store

    with app.app_context():
        outcomes = store(db.session.connection(), db.session.get(Device, device_id), [
            {"client_id": uuid.uuid4(), "level": 1, "rated_at": rated_at or received_at,
             "rater": {"real_name": True, "name": "陈先生", "phone": "13812345678"}}])
        rating = db.session.get(Rating, outcomes[0].rating["id"])
        rating.received_at = received_at
        case_id = routing.route(db.session, rating.id)
        db.session.commit()
        case = db.session.get(Case, case_id)
        db.session.expunge(case)
        return case


SH = ZoneInfo("Asia/Shanghai")


def test_routing_uses_the_calendar_the_admin_entered(app, org, shell):
    """``hcp calendar add-holiday`` / ``add-workday`` move the deadlines of cases routed after."""
    dept = org.department("d1")
    device, _ = org.device(dept)
    received = datetime(2026, 11, 26, 10, tzinfo=SH)  # a Thursday
    before = route_received(app, device.id, received)
    assert (before.callback_due, before.close_due) == (date(2026, 11, 27), date(2026, 12, 17))

    shell("calendar", "add-holiday", "2026-11-27", "--note", "区里放假")  # Friday off
    holiday = route_received(app, device.id, received)
    assert (holiday.callback_due, holiday.close_due) == (date(2026, 11, 30), date(2026, 12, 18))

    shell("calendar", "add-workday", "2026-11-28")  # ... made up on Saturday
    made_up = route_received(app, device.id, received)
    assert (made_up.callback_due, made_up.close_due) == (date(2026, 11, 28), date(2026, 12, 17))


def test_a_calendar_change_moves_the_deadlines_of_open_cases_across_it(app, org):
    """Cases already routed keep their number of working days, counted on the new calendar:
    those whose window holds the day move (history says so), the rest stay; removing the
    override moves them back. An extension's days stay added."""
    from service.cases.calendar_admin import remove_override, set_override
    from service.extensions import db

    dept = org.department("d1")
    device, _ = org.device(dept)
    open_case = route_received(app, device.id, datetime(2026, 11, 26, 10, tzinfo=SH))  # Thursday
    assert (open_case.callback_due, open_case.close_due) == (date(2026, 11, 27), date(2026, 12, 17))
    extended = route_received(app, device.id, datetime(2026, 11, 26, 11, tzinfo=SH))
    closed = route_received(app, device.id, datetime(2026, 11, 26, 12, tzinfo=SH))
    later = route_received(app, device.id, datetime(2026, 12, 7, 10, tzinfo=SH))  # received after the day
    with app.app_context():
        db.session.get(Case, extended.id).close_due = date(2026, 12, 24)  # 5 working days added
        db.session.get(Case, closed.id).status = "closed"
        db.session.commit()

    def dues():
        with app.app_context():
            return {c.id: (c.callback_due, c.close_due) for c in db.session.scalars(select(Case))}

    with app.app_context():
        change = set_override(db.session, date(2026, 12, 3), "holiday", "区里放假")  # a Thursday
        db.session.commit()
    assert change.moved == [open_case.id, extended.id]
    now = dues()
    assert now[open_case.id] == (date(2026, 11, 27), date(2026, 12, 18))  # callback before the day: stays
    assert now[extended.id] == (date(2026, 11, 27), date(2026, 12, 25))
    assert now[closed.id] == (date(2026, 11, 27), date(2026, 12, 17))
    assert now[later.id] == (later.callback_due, later.close_due)
    with app.app_context():
        event = db.session.scalar(select(CaseEvent).where(CaseEvent.case_id == open_case.id,
                                                          CaseEvent.action == "reschedule"))
        assert event.data == {"close_due": {"before": "2026-12-17", "after": "2026-12-18"}}
        assert event.from_status == event.to_status and "2026-12-03" in event.note

        change = set_override(db.session, date(2026, 11, 27), "holiday", None)  # the callback day itself
        db.session.commit()
    assert dues()[open_case.id] == (date(2026, 11, 30), date(2026, 12, 21))
    with app.app_context():
        remove_override(db.session, date(2026, 11, 27))
        assert remove_override(db.session, date(2026, 12, 3)).moved == [open_case.id, extended.id]
        db.session.commit()
    assert dues()[open_case.id] == (date(2026, 11, 27), date(2026, 12, 17))
    assert dues()[extended.id] == (date(2026, 11, 27), date(2026, 12, 24))


def test_an_offline_rating_routes_from_the_day_it_was_received(app, org):
    """A kiosk that was offline posts days later: deadlines count from receipt (SPEC §2)."""
    dept = org.department("d1")
    device, _ = org.device(dept)
    rated = datetime(2021, 9, 24, 15, tzinfo=SH)  # a Friday, a week before
    received = datetime(2021, 9, 30, 10, tzinfo=SH)
    case = route_received(app, device.id, received, rated_at=rated)
    assert (case.callback_due, case.close_due) == (date(2021, 10, 8), date(2021, 10, 27))


def test_an_anonymous_rating_has_no_callback_deadline(app, org):
    """Nobody to call back (SPEC §9): only the closure deadline."""
    from models import Device
    from service.extensions import db
    from service.ratings.intake import store

    dept = org.department("d1")
    device, _ = org.device(dept)
    received = datetime(2021, 9, 30, 10, tzinfo=SH)
    with app.app_context():
        outcome = store(db.session.connection(), db.session.get(Device, device.id),
                        [{"client_id": uuid.uuid4(), "level": 2, "rated_at": received}])[0]
        db.session.get(Rating, outcome.rating["id"]).received_at = received
        case = db.session.get(Case, routing.route(db.session, outcome.rating["id"]))
        db.session.commit()
        assert (case.callback_due, case.close_due) == (None, date(2021, 10, 27))


def test_routing_counts_from_the_shanghai_date(app, org):
    """Received 23:30 UTC on Friday 2021-10-08, i.e. Saturday 10-09, a make-up workday."""
    dept = org.department("d1")
    device, _ = org.device(dept)
    case = route_received(app, device.id, datetime(2021, 10, 8, 23, 30, tzinfo=timezone.utc))
    assert case.callback_due == date(2021, 10, 11)


def test_routing_in_process_picks_the_active_handler_with_fewest_open_cases(app, org):
    """routing.route itself (the worker tests above run it in the worker process)."""
    from models import User
    from service.extensions import db

    dept = org.department("d1")
    other = org.department("d2")
    empty = org.department("d3")
    # Made first, so each has a lower id than the handlers who should win.
    org.user("away", "handler", other)
    org.user("sup", "supervisor", dept)
    off = org.user("off", "handler", dept)
    a = org.user("a", "handler", dept)
    b = org.user("b", "handler", dept)
    with app.app_context():
        db.session.get(User, off.id).active = False
        db.session.commit()
    device, _ = org.device(dept)
    now = utcnow()

    first = route_received(app, device.id, now)
    assert (first.status, first.assignee_id) == ("assigned", a.id)  # a tie goes to the lower id
    assert first.version == 1  # the first version, as the API's expected_version counts it
    second = route_received(app, device.id, now)
    assert second.assignee_id == b.id  # a holds one open case
    with app.app_context():
        db.session.get(Case, second.id).status = "closed"  # closed cases do not count
        db.session.commit()
    assert route_received(app, device.id, now).assignee_id == b.id

    nobody, _ = org.device(empty, name="empty-hall")
    lone = route_received(app, nobody.id, now)
    assert (lone.status, lone.assignee_id, lone.department_id) == ("unassigned", None, empty.id)
    with app.app_context():
        events = {e.case_id: (e.action, e.to_status, e.note, e.data, e.actor_id)
                  for e in db.session.scalars(select(CaseEvent))}
    assert events[first.id] == ("route", "assigned", "自动分派", {"assignee_id": a.id}, None)
    assert events[lone.id] == ("route", "unassigned", "部门无可用承办人，待分派", {"assignee_id": None}, None)


def test_routing_joins_the_case_another_worker_made_between_its_look_up_and_its_insert(app, org):
    """Two workers routing one rating: the one whose INSERT finds the case made meanwhile
    (ON CONFLICT DO NOTHING) answers that case's id and writes no history of its own."""
    from sqlalchemy import event

    from models import Device
    from service.extensions import db
    from service.ratings.intake import store

    dept = org.department("d1")
    device, _ = org.device(dept)
    raced = []

    def the_other_worker_first(conn, cursor, statement, parameters, *_):
        if statement.startswith("INSERT INTO cases ") and not raced:
            raced.append(statement)  # the same transaction stands in for the one that committed first
            cursor.execute("INSERT INTO cases (rating_id, department_id, status, close_due, created_at, "
                           f"updated_at, version) VALUES ({rid}, {dept.id}, 'unassigned', '2026-12-31', "
                           "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)")

    with app.app_context():
        outcomes = store(db.session.connection(), db.session.get(Device, device.id), [
            {"client_id": uuid.uuid4(), "level": 1, "rated_at": utcnow()}])
        rid = outcomes[0].rating["id"]
        event.listen(db.engine, "before_cursor_execute", the_other_worker_first)
        try:
            case_id = routing.route(db.session, rid)
        finally:
            event.remove(db.engine, "before_cursor_execute", the_other_worker_first)
        db.session.commit()
        assert raced
        theirs = db.session.scalars(select(Case).where(Case.rating_id == rid)).all()
        assert [c.id for c in theirs] == [case_id] and theirs[0].status == "unassigned"
        assert db.session.scalar(select(func.count(CaseEvent.id)).where(CaseEvent.case_id == case_id)) == 0


def test_the_route_entry_of_the_history_is_the_case_s_creation(app, org):
    """The history's first entry: at the case's creation time, by nobody, from no state."""
    from service.extensions import db

    dept = org.department("d1")
    org.user("h1", "handler", dept)
    device, _ = org.device(dept)
    case = route_received(app, device.id, utcnow())
    with app.app_context():
        (entry,) = db.session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
        assert (entry.at, entry.actor_id, entry.action, entry.from_status, entry.to_status, entry.note) == (
            case.created_at, None, "route", None, "assigned", "自动分派")
