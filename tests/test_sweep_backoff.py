"""The routing sweep resends an unrouted bad rating with backoff, not at every run.

Found by the worker-kill fault test: with the workers behind, every sweep re-enqueued the
whole backlog (7,868 resends for 736 bad ratings in one run), so the queue grew faster
than the workers could empty it.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from models import Device, RouteResend
from models.types import utcnow
from service.cases import routing
from service.extensions import db
from service.ratings.intake import store


def test_a_resent_rating_waits_twice_as_long_each_time(app, org):
    dept = org.department("d1")
    device, _ = org.device(dept)
    grace = timedelta(seconds=30)
    with app.app_context():
        outcomes = store(db.session.connection(), db.session.get(Device, device.id),
                         [{"client_id": uuid.uuid4(), "level": 1, "rated_at": utcnow()}])
        db.session.commit()
        bad = outcomes[0].rating["id"]
        due = lambda: routing.unrouted(db.session, timedelta(seconds=-60))  # noqa: E731

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
        outcomes = store(db.session.connection(), db.session.get(Device, device.id),
                         [{"client_id": uuid.uuid4(), "level": 2, "rated_at": utcnow()}])
        db.session.commit()
        bad = outcomes[0].rating["id"]
        db.session.add(RouteResend(rating_id=bad, attempts=40, next_at=utcnow()))
        db.session.commit()
        before = utcnow()
        routing.note_resent(db.session, [bad], timedelta(seconds=30))
        db.session.commit()
        row = db.session.get(RouteResend, bad)
        assert row.next_at - before <= routing.RESEND_BACKOFF_CAP + timedelta(seconds=1)
