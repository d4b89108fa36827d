"""Default ratings (SPEC §7): invitations unused until they expire become ratings of
HCP_DEFAULT_RATING_LEVEL, channel default, in batches, never two for one invitation; the
summary's 一事一评 figures equal counting the raw rows."""
from __future__ import annotations

import re
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update

from models import Invitation, Project, Rating, UnsettledInvitation
from models.types import utcnow
from service.stats import figures
from tests.test_citizen import invited  # noqa: F401 — the fixture

# The sweep's queries once drew an SAWarning (a bare distinct()); keep them clean.
pytestmark = pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")


def expire(app, *, but=(), only=None):
    """Move invitations' expiry a minute into the past (all, all ``but`` these ids, or ``only``
    these), in the sweep's queue too: ``hcp ratings run-defaults`` runs in a process of its own,
    so the app's clock cannot be set for it."""
    from service.extensions import db
    moment = utcnow() - timedelta(minutes=1)
    ids, queued = Invitation.id, UnsettledInvitation.invitation_id
    with app.app_context():
        for table, column in ((Invitation, ids), (UnsettledInvitation, queued)):
            where = column.in_(only) if only is not None else column.not_in(but) if but else True
            db.session.execute(update(table).where(where).values(expires_at=moment))
        db.session.commit()


def count(query, **where):
    return query(lambda s: s.scalar(select(func.count(Rating.id)).filter_by(**where)))


def test_expired_invitations_become_default_ratings(app, client, invited, query, shell):  # noqa: F811
    def queued():  # the sweep's queue: invitations without a first rating
        return set(query(lambda s: s.scalars(select(UnsettledInvitation.invitation_id)).all()))

    rated = invited("P-1")
    assert len(queued()) == 1
    assert client.post(f"/r/{rated}", data={"level": "3"}).status_code == 303
    assert queued() == set()  # the citizen's rating settled it
    tokens = [invited(f"P-{n}") for n in range(2, 6)]
    pending = invited("P-6")
    pending_id = query(lambda s: s.scalar(select(Invitation.id).order_by(Invitation.id.desc())))
    assert len(queued()) == 5
    expire(app, but=[pending_id])

    # The session's worker runs the same sweep from beat; whoever comes first makes them, once.
    made = shell("ratings", "run-defaults", "--batch-size", "3").stdout
    assert re.search(r"^[0-4] default ratings made$", made, re.M)
    assert "0 default ratings made" in shell("ratings", "run-defaults").stdout  # idempotent
    rows = query(lambda s: s.scalars(select(Rating).where(Rating.is_default)).all())
    assert len(rows) == 4
    assert queued() == {pending_id}
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


def test_the_rollup_check_holds_with_default_ratings_and_lists_a_flag_off_its_channel(app, client, invited, query):  # noqa: F811
    """In process (the rollup's mutation subset): a default rating (channel default, is_default
    true) beside a citizen's one is no difference; a rating whose is_default disagrees with its
    channel, either way, is listed by id."""
    from service.extensions import db
    from service.invitations import defaults
    from service.stats import rollup

    rated = invited("P-1")
    invited("P-2")
    assert client.post(f"/r/{rated}", data={"level": "4"}).status_code == 303
    expire(app)
    with app.app_context():
        assert defaults.run(db.session) == 1
        rows = db.session.execute(select(Rating.id, Rating.channel, Rating.is_default).order_by(Rating.id)).all()
        (citizen, channel, citizen_default), (default, default_channel, is_default) = rows
        assert (channel != "default", citizen_default, default_channel, is_default) == (True, False, "default", True)
        assert rollup.differences(db.session) == []
        db.session.execute(update(Rating).where(Rating.id == citizen).values(is_default=True))
        db.session.execute(update(Rating).where(Rating.id == default).values(is_default=False))
        db.session.commit()
        assert rollup.differences(db.session) == [
            {"side": "raw", "grain": "ratings.is_default", "id": citizen, "channel": channel, "is_default": True},
            {"side": "raw", "grain": "ratings.is_default", "id": default, "channel": "default", "is_default": False}]


def test_breakdowns_carry_the_application_figures_equal_to_raw_counts(app, org, client, query, shell):
    """default, good_rate_rated, active_rating_rate and 办件评价率 per department, item, staff
    and day: a department with applications and no rating is a group at 0 %, the channel
    groups have no 办件评价率, the total is the summary, and hcp stats check holds."""
    from service.clients.registry import add_client
    from service.extensions import db
    from tests.support import bearer, rating_body
    from tests.test_invitations import recent

    district = org.department("district", "区政务服务中心")
    market = org.department("market", "区市场监管局", parent=district)
    tax = org.department("tax", "区税务局", parent=district)
    org.item("license", market)
    org.item("tax_reg", tax)
    _, key = org._build(lambda: add_client("审批系统", "approval", db.session.merge(district)))
    _, kiosk = org.device(market, window="3")

    def apply(no, item):
        put = client.put(f"/api/v1/projects/{no}", json=recent("done", item_code=item, staff_no=f"S-{item}"),
                         headers=bearer(key))
        assert put.status_code == 201, put.get_json()
        url = client.get(f"/api/v1/projects/{no}/invitation", headers=bearer(key)).get_json()["url"]
        return url.rsplit("/", 1)[1]

    rated, _to_default, _pending = apply("M-1", "license"), apply("M-2", "license"), apply("M-3", "license")
    apply("T-1", "tax_reg")  # nobody rates it: 办件评价率 0 for tax
    assert client.post(f"/r/{rated}", data={"level": "4"}).status_code == 303
    kiosk_rating = client.post("/api/v1/ratings", json=rating_body(2, item_code="license",
                                                                   rated_at=utcnow().isoformat()),
                               headers=bearer(kiosk))
    assert kiosk_rating.status_code == 201
    to_default_id = query(lambda s: s.scalar(select(Invitation.id).join(Project).where(
        Project.project_no == "M-2")))
    expire(app, only=[to_default_id])
    shell("ratings", "run-defaults")
    # the sweep made one default rating, level 5: market has 3 ratings, 1 of them default
    today = date.today()
    f = figures.Filters(today - timedelta(days=2), today + timedelta(days=1))
    with app.app_context():
        by_dept = figures.breakdown(db.session, f, "department")
        by_item = figures.breakdown(db.session, f, "item")
        by_staff = figures.breakdown(db.session, f, "staff")
        by_day = figures.breakdown(db.session, f, "day")
        by_channel = figures.breakdown(db.session, f, "channel")
        by_reason = figures.breakdown(db.session, f, "reason")
        summary = figures.summary(db.session, f)

    def pick(result, key):
        return next(g for g in result["groups"] if g["key"] == key)

    m, t = pick(by_dept, "market"), pick(by_dept, "tax")
    assert (m["total"], m["default"], m["rated_total"], m["rated_good"]) == (3, 1, 2, 1)
    assert m["active_rating_rate"] == 2 / 3 and m["good_rate_rated"] == 1 / 2
    assert (m["projects"], m["rated_projects"], m["rated_projects_rate"]) == (3, 1, 1 / 3)
    assert (t["total"], t["projects"], t["rated_projects"], t["rated_projects_rate"]) == (0, 1, 0, 0.0)
    assert t["active_rating_rate"] is None
    assert (pick(by_item, "license")["projects"], pick(by_item, "tax_reg")["rated_projects_rate"]) == (3, 0.0)
    assert pick(by_staff, "S-license")["rated_projects"] == 1
    assert sum(g["projects"] for g in by_day["groups"]) == 4
    assert {g["projects"] for g in by_channel["groups"]} == {None}
    assert pick(by_channel, "default")["default"] == 1
    assert by_reason["total"] == summary
    for result in (by_dept, by_item, by_staff, by_day, by_channel):
        total = result["total"]
        for name in ("default", "good_rate_rated", "active_rating_rate", "projects", "rated_projects",
                     "rated_projects_rate"):
            assert total[name] == summary[name], (result["by"], name)
    assert (summary["projects"], summary["rated_projects"], summary["default"]) == (4, 1, 1)
    with app.app_context():  # a department's scope counts its own applications only
        in_market = figures.breakdown(db.session, figures.Filters(f.date_from, f.date_to, market.path), "item")
        market_summary = figures.summary(db.session, figures.Filters(f.date_from, f.date_to, market.path))
    assert [(g["key"], g["projects"]) for g in in_market["groups"]] == [("license", 3)]
    assert in_market["total"]["projects"] == 3
    assert (market_summary["projects"], market_summary["rated_projects"], market_summary["total"]) == (3, 1, 3)
    raw_default = query(lambda s: s.scalar(select(func.count()).where(Rating.is_default)))
    assert summary["default"] == raw_default == 1

    # the export carries them: a department with applications and no rating shows 0.00 %
    token = org.token(org.user("boss", "manager", district))
    period = {"from": f.date_from.isoformat(), "to": f.date_to.isoformat()}
    csv_out = client.get("/api/v1/stats/export", query_string={"format": "csv", "by": "department", **period},
                         headers=bearer(token)).data.decode("utf-8-sig")
    lines = [line.split(",") for line in csv_out.splitlines()]
    header = next(line for line in lines if line[0] == "部门")
    tax_row = next(line for line in lines if line[0] == "区税务局")
    assert tax_row[header.index("办件评价率")] == "0.00%" and tax_row[header.index("应评办件")] == "1"
    total_row = next(line for line in lines if line[0] == "合计")
    assert total_row[header.index("主动评价率")] == f"{summary['active_rating_rate'] * 100:.2f}%"
    assert total_row[header.index("默认评价")] == "1"

    assert "rollups equal the raw rows" in shell("stats", "check").stdout
    with app.app_context():  # a rating marked default off its channel breaks the figures' rule
        db.session.execute(update(Rating).where(Rating.channel != "default").values(is_default=True))
        db.session.commit()
    broken = shell("stats", "check", check=False)
    assert broken.returncode == 1 and "ratings.is_default" in broken.stdout


def test_default_ratings_of_any_level_are_counted_apart_from_the_rated(app, client, invited, query):  # noqa: F811
    """HCP_DEFAULT_RATING_LEVEL may be any level 1–5: the summary takes default ratings of each
    level out of the rated figures, good (3–5) and bad (1–2) alike."""
    import dataclasses

    from service.extensions import db
    from service.invitations import defaults

    assert client.post(f"/r/{invited('P-R')}", data={"level": "5"}).status_code == 303  # one rated
    settings = app.config["HCP_SETTINGS"]
    # Past every invitation's expiry, so only these in-process sweeps (not the session
    # worker's beat, at the real time) make them.
    later = utcnow() + timedelta(days=settings.default_rating_days + 1)
    try:
        for n, level in enumerate((4, 2, 1)):
            invited(f"P-D{n}")
            app.config["HCP_SETTINGS"] = dataclasses.replace(settings, default_rating_level=level)
            with app.app_context():
                assert defaults.run(db.session, now=later) == 1
                db.session.commit()
    finally:
        app.config["HCP_SETTINGS"] = settings
    assert sorted(query(lambda s: s.scalars(select(Rating.level).where(Rating.is_default)).all())) == [1, 2, 4]
    with app.app_context():
        out = figures.summary(db.session, figures.Filters(date.today() - timedelta(days=2),
                                                          later.date() + timedelta(days=1)))
    assert (out["total"], out["default"], out["rated_total"], out["rated_good"]) == (4, 3, 1, 1)
    assert out["good_rate_rated"] == 1.0
