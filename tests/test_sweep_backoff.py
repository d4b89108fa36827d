"""The routing sweep resends an unrouted bad rating with backoff, not at every run.

Found by the worker-kill fault test: with the workers behind, every sweep re-enqueued the
whole backlog (7,868 resends for 736 bad ratings in one run), so the queue grew faster
than the workers could empty it.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from models import Case, Device, Rating, RouteResend
from models.types import utcnow
from service.cases import routing
from service.extensions import db
from service.ratings.intake import store
from tests.support import wait_for


def store_unseen(device) -> int:
    """A bad rating with no case, received "in an hour" (inside an app context).

    The session worker's own sweep (5 s grace, every second) looks only at ratings
    received before now, so it never resends or routes this one: only the test's calls
    decide what happens to it."""
    outcomes = store(db.session.connection(), db.session.get(Device, device.id),
                     [{"client_id": uuid.uuid4(), "level": 1, "rated_at": utcnow()}])
    bad = outcomes[0].rating["id"]
    db.session.get(Rating, bad).received_at = utcnow() + timedelta(hours=1)
    db.session.commit()
    return bad


def test_a_resent_rating_waits_twice_as_long_each_time(app, org):
    dept = org.department("d1")
    device, _ = org.device(dept)
    grace = timedelta(seconds=30)
    with app.app_context():
        bad = store_unseen(device)
        due = lambda: routing.unrouted(db.session, timedelta(hours=-2))  # noqa: E731

        waits = []
        for _ in range(3):
            assert due() == [bad]
            before = utcnow()
            routing.note_resent(db.session, [bad], grace)
            db.session.commit()
            assert due() == []  # not resent again while its backoff runs
            row = db.session.scalar(select(RouteResend).where(RouteResend.rating_id == bad))
            waits.append(round((row.next_at - before).total_seconds()))
            db.session.execute(update(RouteResend).values(next_at=utcnow() - timedelta(seconds=1)))
            db.session.commit()
        assert waits == [30, 60, 120]
        assert row.attempts == 3

        routing.route(db.session, bad)
        db.session.commit()
        assert due() == []  # routed: never resent again


def test_backoff_is_capped(app, org):
    dept = org.department("d1")
    device, _ = org.device(dept)
    with app.app_context():
        bad = store_unseen(device)
        db.session.add(RouteResend(rating_id=bad, attempts=40, next_at=utcnow()))
        db.session.commit()
        before = utcnow()
        routing.note_resent(db.session, [bad], timedelta(seconds=30))
        db.session.commit()
        row = db.session.get(RouteResend, bad)
        assert routing.RESEND_BACKOFF_CAP <= row.next_at - before <= routing.RESEND_BACKOFF_CAP + timedelta(seconds=1)
        assert row.attempts == 41


def test_a_resend_waits_at_least_a_second(app, org):
    dept = org.department("d1")
    device, _ = org.device(dept)
    with app.app_context():
        bad = store_unseen(device)
        before = utcnow()
        routing.note_resent(db.session, [bad], timedelta(0))
        db.session.commit()
        after = utcnow()
        row = db.session.get(RouteResend, bad)
        assert before + timedelta(seconds=1) <= row.next_at <= after + timedelta(seconds=1)
        assert row.attempts == 1


def test_the_sweep_task_resends_an_unrouted_rating_and_its_case_appears(app, worker, org, query, monkeypatch):
    """workers.tasks.sweep_unrouted as beat runs it, on both backends (the embedded broker too)."""
    import workers.tasks  # noqa: F401 — registers the tasks with the app's Celery

    dept = org.department("d1")
    device, _ = org.device(dept)
    with app.app_context():
        bad = store_unseen(device)
    # This test's sweep looks two hours ahead, so it finds the rating "received in an hour".
    monkeypatch.setattr(app.config["HCP_SETTINGS"], "sweep_grace_seconds", -7200.0)
    celery_app = app.extensions["celery"]
    celery_app.set_current()  # the task's sends go through this app's broker
    assert celery_app.tasks["workers.tasks.sweep_unrouted"]() == 1
    resent = query(lambda s: s.get(RouteResend, bad))
    assert resent.attempts == 1
    case = wait_for(lambda: query(lambda s: s.scalar(select(Case).where(Case.rating_id == bad))),
                    message="the worker to route the resent rating")
    assert case.department_id == dept.id
