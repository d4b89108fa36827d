"""Default ratings (SPEC §7): invitations unused until they expire become ratings of
HCP_DEFAULT_RATING_LEVEL, channel default, in batches, never two for one invitation; the
summary's 一事一评 figures equal counting the raw rows."""
from __future__ import annotations

import re
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update

from models import Invitation, Rating
from models.types import utcnow
from service.stats import figures
from tests.support import hcp
from tests.test_citizen import invited  # noqa: F401 — the fixture

# The sweep's queries once drew an SAWarning (a bare distinct()); keep them clean.
pytestmark = pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")


def expire(app, *, but=()):
    from service.extensions import db
    with app.app_context():
        db.session.execute(update(Invitation).where(Invitation.id.not_in(but) if but else True)
                           .values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()


def count(query, **where):
    return query(lambda s: s.scalar(select(func.count(Rating.id)).filter_by(**where)))


def test_expired_invitations_become_default_ratings(app, client, invited, query):  # noqa: F811
    rated = invited("P-1")
    assert client.post(f"/r/{rated}", data={"level": "3"}).status_code == 303
    tokens = [invited(f"P-{n}") for n in range(2, 6)]
    pending = invited("P-6")
    pending_id = query(lambda s: s.scalar(select(Invitation.id).order_by(Invitation.id.desc())))
    expire(app, but=[pending_id])

    # The session's worker runs the same sweep from beat; whoever comes first makes them, once.
    assert re.search(r"^[0-4] default ratings made$", hcp("ratings", "run-defaults", "--batch-size", "3").stdout, re.M)
    assert "0 default ratings made" in hcp("ratings", "run-defaults").stdout  # idempotent
    rows = query(lambda s: s.scalars(select(Rating).where(Rating.is_default)).all())
    assert len(rows) == 4
    assert {(r.channel, r.level, r.assess_number, r.real_name) for r in rows} == {("default", 5, 1, False)}
    assert {r.project_no for r in rows} == {"P-2", "P-3", "P-4", "P-5"}

    page = client.get(f"/r/{tokens[0]}").get_data(as_text=True)
    assert "评价已截止" in page and "系统默认评价" in page
    assert client.post(f"/r/{tokens[0]}", data={"level": "1", "comment": "x"}).status_code == 422
    assert "请对本次服务作出评价" in client.get(f"/r/{pending}").get_data(as_text=True)

    with app.app_context():
        from service.extensions import db
        today = date.today()
        f = figures.Filters(today - timedelta(days=2), today + timedelta(days=1))
        out = figures.summary(db.session, f)
    assert (out["total"], out["default"], out["rated_total"]) == (5, 4, 1)
    assert out["good_rate_rated"] == 1.0 and out["active_rating_rate"] == 1 / 5
    assert (out["projects"], out["rated_projects"]) == (6, 1)
    assert out["rated_projects_rate"] == 1 / 6


def test_concurrent_sweeps_and_a_late_citizen_make_one_rating_each(app, client, invited, query):  # noqa: F811
    from service.extensions import db
    from service.invitations import defaults

    tokens = [invited(f"P-{n}") for n in range(1, 9)]
    expire(app)
    errors = []

    def sweep():
        try:
            with app.app_context():
                defaults.run(db.session, batch=2)
        except Exception as err:  # noqa: BLE001 — collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for t in threads:
        t.start()
    late = client.post(f"/r/{tokens[0]}", data={"level": "5"})  # too late: already expired
    for t in threads:
        t.join()
    assert late.status_code == 422
    assert not errors, errors
    assert count(query, is_default=True) == 8
    per_invitation = query(lambda s: s.execute(select(Rating.invitation_id, func.count()).group_by(
        Rating.invitation_id)).all())
    assert {n for _, n in per_invitation} == {1}
