"""Managers' figures (SPEC §3, §4): exact against raw rows, scopes, breakdowns, exports."""
from __future__ import annotations

import csv
import io
import random
import uuid
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, text, update

from models import Case, CaseEvent, Department, Rating, User
from service.cases.warnings import Cards
from tests.support import bearer

SH = timezone(timedelta(hours=8))
SHANGHAI = ZoneInfo("Asia/Shanghai")


def local_date(moment: datetime) -> date:
    """The oracle's own Shanghai date (not the product's local_date, which it checks)."""
    return moment.astimezone(SHANGHAI).date()
YEAR_FROM, YEAR_TO = date(2021, 1, 1), date(2021, 12, 31)
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=timezone(timedelta(hours=8)))  # the clock while cases are made
TODAY = date(2026, 12, 10)  # "now" for the clock-dependent counts: callbacks (12-02) are late
YELLOW_DAY = date(2026, 12, 17)  # 3 working days before the closure deadlines (12-22): yellow
LATER = date(2027, 6, 30)  # past every closure deadline of cases made now


@pytest.fixture
def district(org):
    """district → bureau-a → section-a1, district → bureau-b; devices on several channels."""
    root = org.department("district", "示范区政务服务中心")
    a = org.department("bureau-a", "区民政局", parent=root)
    a1 = org.department("section-a1", "婚姻登记科", parent=a)
    b = org.department("bureau-b", "区市场监管局", parent=root)
    item_a1 = org.item("item-marriage", a1)
    item_b = org.item("item-license", b)
    devices = {
        "a1-hall": org.device(a1, channel="hall_terminal", window="3", name="a1 hall")[0],
        "a1-tablet": org.device(a1, channel="hall_tablet", window="4", name="a1 tablet")[0],
        "b-hall": org.device(b, channel="hall_terminal", window="1", name="b hall")[0],
        "root-pc": org.device(root, channel="pc", window=None, name="pc")[0],
        "root-sms": org.device(root, channel="sms", window=None, name="sms")[0],
    }
    users = {
        "manager": org.user("mgr", "manager", root),
        "sup-a": org.user("sup-a", "supervisor", a),
        "sup-b": org.user("sup-b", "supervisor", b),
        "sup-root": org.user("sup-root", "supervisor", root),
        "sup-root2": org.user("sup-root2", "supervisor", root),
        "h-a1": org.user("h-a1", "handler", a1),
        "h-b": org.user("h-b", "handler", b),
        "admin": org.user("admin", "admin", root),
    }
    return {"depts": {"root": root, "a": a, "a1": a1, "b": b}, "items": {"a1": item_a1, "b": item_b},
            "devices": devices, "users": users}


def store_ratings(app, device, specs: list[dict]) -> None:
    """Store ratings through intake (the API's own code path) and route the bad ones."""
    from models import Device
    from service.cases.routing import route
    from service.extensions import db
    from service.ratings.intake import store

    with app.app_context():
        dev = db.session.get(Device, device.id)
        outcomes = store(db.session.connection(), dev, [{"client_id": uuid.uuid4(), **s} for s in specs])
        db.session.commit()
        for o in outcomes:
            if o.status == "created" and o.rating["negative"]:
                route(db.session, o.rating["id"])
        db.session.commit()


def random_specs(rng: random.Random, n: int, items: list[str | None]) -> list[dict]:
    specs = []
    for _ in range(n):
        day = YEAR_FROM + timedelta(days=rng.randrange(365))
        # near midnight now and then, so the local date differs from the UTC date
        minutes = rng.choice([5, 30, 600, 1430, 1439]) if rng.random() < 0.3 else rng.randrange(1440)
        rated_at = datetime(day.year, day.month, day.day, tzinfo=SH) + timedelta(minutes=minutes)
        level = rng.choices([5, 4, 3, 2, 1], weights=[40, 20, 15, 13, 12])[0]
        spec = {"level": level, "rated_at": rated_at}
        if rng.random() < 0.6:
            spec["rater"] = {"real_name": True, "name": "陈先生", "phone": f"138{rng.randrange(10**8):08d}"}
        item = rng.choice(items)
        if item:
            spec["item_code"] = item
        if rng.random() < 0.7:
            spec["staff_no"] = rng.choice(["S001", "S002", "S003"])
        specs.append(spec)
    return specs


def act(session, case: Case, rng: random.Random, users: dict) -> None:
    """One random allowed action on ``case``, by a user allowed to take it."""
    from service.cases.workflow import allowed_actions, apply

    actions = allowed_actions(case.status)
    if not actions:
        return
    action = rng.choice(actions)
    sup = users["sup-root"] if case.claimed_by_id != users["sup-root"].id else users["sup-root2"]
    if action in ("assign", "approve", "reject"):
        actor = sup
    elif action == "reopen":
        actor = users["manager"]
    else:
        actor = session.get(User, case.assignee_id) if case.assignee_id else sup
    handlers = {users["h-a1"].department_id: "h-a1", users["h-b"].department_id: "h-b"}
    data = {
        "assign": {"assignee": handlers.get(case.department_id, "")},
        "verify": {"contacted": rng.random() < 0.7},
        "claim_invalid": {"reason": "恶意差评"}, "propose_explain": {"reason": "无法律依据"},
        "rectify": {"measures": {"cause": "等候久", "action": "增开窗口"}},
        "feedback": {"contacted": rng.random() < 0.8, "satisfied": rng.choice([True, False, None])},
        "reopen": {"reason": "群众再次投诉"},
        "request_extension": {"working_days": rng.randint(1, 15), "reason": "需协调其他部门"},
    }.get(action, {})
    if action == "assign" and not data["assignee"]:
        return
    if action == "request_extension" and (case.extended_at is not None or case.assignee_id is None):
        return  # one extension per case, asked by the assignee
    # closures land on both sides of the closure deadline
    now = datetime.combine(case.close_due, datetime.min.time(), SH) + timedelta(hours=rng.randrange(-200, 60))
    actor = session.merge(actor)
    apply(session, case, actor, action, data, now=now)


def random_actions(app, rng: random.Random, users: dict, rounds: int) -> None:
    from service.extensions import db

    with app.app_context():
        for _ in range(rounds):
            for case in db.session.scalars(select(Case).order_by(Case.id)):
                if rng.random() < 0.6:
                    act(db.session, case, rng, users)
            db.session.commit()


def raw_rows(session) -> tuple:
    return ({d.id: d for d in session.scalars(select(Department))},
            {c.rating_id: c for c in session.scalars(select(Case))},
            list(session.scalars(select(Rating))))


def expected(session, f: dict, today: date = TODAY, rows: tuple | None = None) -> dict:
    """The figures counted in Python over the raw rows (independent of the rollups)."""
    depts, cases, ratings = rows or raw_rows(session)
    sel = []
    for r in ratings:
        day = local_date(r.rated_at)
        if not f["from"] <= day <= f["to"]:
            continue
        if f.get("path") and not depts[r.department_id].path.startswith(f["path"]):
            continue
        if f.get("channel") and r.channel != f["channel"]:
            continue
        if f.get("item_id") and r.item_id != f["item_id"]:
            continue
        if f.get("window") and r.window != f["window"]:
            continue
        sel.append(r)
    bad = [r for r in sel if r.level <= 2]
    cs = [(r, cases[r.id]) for r in bad if r.id in cases]
    closed = [c for _, c in cs if c.status == "closed"]
    open_ = [c for _, c in cs if c.status != "closed"]
    overdue = [c for c in open_ if c.close_due < today]
    n_out = lambda o: sum(1 for c in closed if c.outcome == o)  # noqa: E731
    on_time = [c for c in closed if local_date(c.closed_at) <= c.close_due]
    real_bad = [r for r in bad if r.real_name]
    called = [c for r, c in cs if r.real_name and c.contacted]
    sat_known = [c for _, c in cs if c.satisfied is not None]
    rate = lambda a, b: a / b if b else None  # noqa: E731
    good = len(sel) - len(bad)
    default = [r for r in sel if r.is_default]
    cards = Cards.on(session, today)
    return {
        "total": len(sel), "good": good, "bad": len(bad),
        "by_level": {str(k): sum(1 for r in sel if r.level == k) for k in range(1, 6)},
        "good_rate": rate(good, len(sel)),
        "disposal_rate": rate(len(closed), len(bad)),
        "rectification_rate": rate(n_out("rectified"), len(bad) - n_out("invalid") - n_out("explained")),
        "callback_rate": rate(len(called), len(real_bad)),
        "on_time_rate": rate(len(on_time), len(closed) + len(overdue)),
        "feedback_satisfaction_rate": rate(sum(1 for c in sat_known if c.satisfied), len(sat_known)),
        "open": len(open_), "overdue_open": len(overdue),
        "red": sum(1 for c in open_ if cards.of(c).level == "red"),
        "yellow": sum(1 for c in open_ if cards.of(c).level == "yellow"),
        "extended": sum(1 for _, c in cs if c.extended_at is not None),
        # the counts behind each rate, so each is checked on its own
        "closed": len(closed), "closed_rectified": n_out("rectified"), "closed_explained": n_out("explained"),
        "closed_invalid": n_out("invalid"), "rectifiable": len(bad) - n_out("invalid") - n_out("explained"),
        "closed_on_time": len(on_time), "on_time_base": len(closed) + len(overdue), "called_back": len(called),
        "real_name_bad": len(real_bad), "satisfied_yes": sum(1 for c in sat_known if c.satisfied),
        "satisfied_known": len(sat_known),
        # §7: the default ratings and the rates without them
        "default": len(default), "rated_total": len(sel) - len(default),
        "rated_good": good - sum(1 for r in default if r.level >= 3),
        "good_rate_rated": rate(good - sum(1 for r in default if r.level >= 3), len(sel) - len(default)),
        "active_rating_rate": rate(len(sel) - len(default), len(sel)),
    }


def check_all(app, district, today: date = TODAY) -> None:
    """Every figure, under several filters, equals the raw count; the rollups equal a recount."""
    from service.extensions import db
    from service.stats import rollup
    from service.stats.figures import Filters, summary

    d, items = district["depts"], district["items"]
    cases = [
        ({}, {}),
        ({"path": d["a"].path}, {"department_path": d["a"].path}),
        ({"path": d["a1"].path}, {"department_path": d["a1"].path}),
        ({"channel": "hall_terminal"}, {"channel": "hall_terminal"}),
        ({"item_id": items["a1"].id}, {"item_id": items["a1"].id}),
        ({"window": "3", "path": d["a1"].path}, {"window": "3", "department_path": d["a1"].path}),
    ]
    # whole months (stats_monthly), odd days around them (stats_daily), a midnight boundary
    periods = [(YEAR_FROM, YEAR_TO), (date(2021, 2, 17), date(2021, 11, 3)), (date(2021, 3, 31), date(2021, 4, 1))]
    with app.app_context():
        assert rollup.differences(db.session) == []
        rows = raw_rows(db.session)
        for lo, hi in periods:
            for raw_f, f in cases:
                want = expected(db.session, {"from": lo, "to": hi, **raw_f}, today, rows)
                got = summary(db.session, Filters(lo, hi, **f), today=today)
                assert {k: got[k] for k in want} == want, (lo, hi, raw_f)


def test_figures_equal_raw_counts_after_random_inserts_and_actions(app, district, clock):
    clock.set(NOW)
    rng = random.Random(20211207)
    devs, users = district["devices"], district["users"]
    for phase in range(3):
        store_ratings(app, devs["a1-hall"], random_specs(rng, 60, [None, "item-marriage"]))
        store_ratings(app, devs["a1-tablet"], random_specs(rng, 30, [None]))
        store_ratings(app, devs["b-hall"], random_specs(rng, 50, [None, "item-license"]))
        store_ratings(app, devs["root-pc"], random_specs(rng, 50, [None, "item-marriage", "item-license"]))
        store_ratings(app, devs["root-sms"], random_specs(rng, 20, [None]))
        check_all(app, district)  # right after new ratings
        random_actions(app, rng, users, rounds=2)
        check_all(app, district)  # right after case actions
    check_all(app, district, today=YELLOW_DAY)  # cards of both colours
    check_all(app, district, today=LATER)  # every open case past its deadline

    from service.extensions import db
    from service.stats.figures import Filters, summary
    with app.app_context():
        s = summary(db.session, Filters(YEAR_FROM, YEAR_TO), today=LATER)
        cards = summary(db.session, Filters(YEAR_FROM, YEAR_TO), today=YELLOW_DAY)
        reopened = db.session.scalar(select(func.count(CaseEvent.id)).where(CaseEvent.action == "reopen"))
    # the walk reached every kind of count the figures use
    for key in ("closed_rectified", "closed_explained", "closed_invalid", "called_back", "satisfied_yes",
                "satisfied_known", "closed_on_time", "open", "overdue_open", "red", "extended"):
        assert s[key] > 0, key
    assert cards["yellow"] > 0 and cards["red"] > 0
    assert s["closed_on_time"] < s["closed"] and reopened > 0


def test_rollup_rebuild_equals_trigger_maintained_rollup(app, district, query):
    from models import StatsDaily, StatsDailyDetail, StatsMonthly
    from service.extensions import db
    from service.stats import rollup

    rng = random.Random(7)
    store_ratings(app, district["devices"]["a1-hall"], random_specs(rng, 80, [None, "item-marriage"]))
    random_actions(app, rng, district["users"], rounds=3)

    def snapshot(session):
        out = []
        for model in (StatsDaily, StatsMonthly, StatsDailyDetail):
            cols = [c.name for c in model.__table__.columns]
            rows = session.execute(select(model.__table__)).all()
            out.append(sorted(tuple(r) for r in rows if any(r[len(model.__table__.primary_key.columns):])))
            assert cols  # both tables have columns
        return out

    before = query(snapshot)
    with app.app_context():
        rollup.rebuild(db.session)
        db.session.commit()
    assert query(snapshot) == before


def test_rollup_adjust_takes_every_id_of_more_than_one_chunk_once(app, district, query):
    """adjust counts its ratings 1,000 ids at a time: over 1,001 of them (a decision that large),
    none is left out or counted twice, excluding and restoring."""
    from models.types import utcnow
    from service.extensions import db
    from service.stats import rollup

    at = datetime(2021, 5, 1, 10, tzinfo=SH)
    store_ratings(app, district["devices"]["b-hall"],
                  [{"level": 5 - i % 2, "rated_at": at + timedelta(seconds=i)} for i in range(1003)])
    ids = query(lambda s: list(s.scalars(select(Rating.id).order_by(Rating.id))))
    chosen = ids[1:-1]  # 1,001: the first chunk and one id over, with ratings on either side kept
    assert len(chosen) == 1001
    with app.app_context():
        rollup.adjust(db.session, chosen, -1)
        db.session.execute(update(Rating).where(Rating.id.in_(chosen)).values(excluded_at=utcnow()))
        db.session.commit()
        assert rollup.differences(db.session) == []
        db.session.execute(update(Rating).where(Rating.id.in_(chosen)).values(excluded_at=None))
        rollup.adjust(db.session, chosen, 1)
        db.session.commit()
        assert rollup.differences(db.session) == []


def _close(app, rating_id: int, steps: list[tuple[str, str, dict]], now=None):
    from service.cases.workflow import apply
    from service.extensions import db

    with app.app_context():
        case = db.session.scalar(select(Case).where(Case.rating_id == rating_id))
        for username, action, data in steps:
            user = db.session.scalar(select(User).where(User.username == username))
            apply(db.session, case, user, action, data, now=now)
        db.session.commit()


def test_null_rates_and_a_reopened_case_counts_by_its_current_state(app, district, query):
    from service.stats.figures import Filters, summary

    f = Filters(YEAR_FROM, YEAR_TO)
    empty = query(lambda s: summary(s, f, today=TODAY))
    assert empty["total"] == 0
    for rate in ("good_rate", "disposal_rate", "rectification_rate", "callback_rate", "on_time_rate",
                 "feedback_satisfaction_rate"):
        assert empty[rate] is None

    dev = district["devices"]["b-hall"]
    store_ratings(app, dev, [{"level": 5, "rated_at": datetime(2021, 5, 1, 10, tzinfo=SH)}])
    only_good = query(lambda s: summary(s, f, today=TODAY))
    assert only_good["good_rate"] == 1.0 and only_good["disposal_rate"] is None

    store_ratings(app, dev, [{"level": 1, "rated_at": datetime(2021, 5, 2, 10, tzinfo=SH)}])
    rid = query(lambda s: s.scalar(select(Rating.id).where(Rating.level == 1)))
    close_rectified = [("h-b", "verify", {"contacted": False}),
                       ("h-b", "rectify", {"measures": {"cause": "c", "action": "a"}}),
                       ("h-b", "feedback", {"contacted": True, "satisfied": True})]
    _close(app, rid, close_rectified)
    s = query(lambda s: summary(s, f, today=TODAY))
    assert (s["disposal_rate"], s["rectification_rate"], s["feedback_satisfaction_rate"]) == (1.0, 1.0, 1.0)
    # anonymous rater: no one to call back, so the callback rate has no denominator
    assert s["callback_rate"] is None and s["called_back"] == 0

    _close(app, rid, [("mgr", "reopen", {"reason": "再次投诉"})])
    s = query(lambda s: summary(s, f, today=TODAY))
    assert s["closed"] == 0 and s["disposal_rate"] == 0.0 and s["rectification_rate"] == 0.0
    assert s["feedback_satisfaction_rate"] is None and s["open"] == 1

    _close(app, rid, [("h-b", "claim_invalid", {"reason": "误评"}), ("sup-b", "approve", {})])
    s = query(lambda s: summary(s, f, today=TODAY))
    # closed invalid: disposed, and nothing left to rectify
    assert s["disposal_rate"] == 1.0 and s["rectifiable"] == 0 and s["rectification_rate"] is None
    check_all(app, district)


def test_on_time_counts_late_closures_and_open_cases_past_deadline(app, district, query):
    from service.stats.figures import Filters, summary

    dev = district["devices"]["b-hall"]
    store_ratings(app, dev, [{"level": 2, "rated_at": datetime(2021, 6, d, 10, tzinfo=SH)} for d in (1, 2, 3)])
    ids = query(lambda s: list(s.scalars(select(Rating.id).order_by(Rating.id))))
    due = query(lambda s: s.scalar(select(Case.close_due).where(Case.rating_id == ids[0])))
    steps = [("h-b", "verify", {"contacted": True}), ("h-b", "rectify", {"measures": {"cause": "c", "action": "a"}}),
             ("h-b", "feedback", {"contacted": True, "satisfied": False})]
    # closed at 23:30 local on the due day: on time; closed the next morning: late
    _close(app, ids[0], steps, now=datetime.combine(due, datetime.min.time(), SH) + timedelta(hours=23, minutes=30))
    _close(app, ids[1], steps, now=datetime.combine(due, datetime.min.time(), SH) + timedelta(days=1, hours=9))
    f = Filters(YEAR_FROM, YEAR_TO)
    before_due = query(lambda s: summary(s, f, today=due))
    assert (before_due["closed_on_time"], before_due["on_time_base"]) == (1, 2)
    after_due = query(lambda s: summary(s, f, today=due + timedelta(days=1)))
    assert (after_due["overdue_open"], after_due["on_time_base"], after_due["on_time_rate"]) == (1, 3, 1 / 3)
    assert after_due["feedback_satisfaction_rate"] == 0.0


def test_every_figure_and_count_equals_the_raw_rows_on_three_days(app, filled, query):
    """The quick form of the random walk above (one fixture's ratings and actions): every figure
    and every count behind a rate, under each filter and period, before the deadlines, with cards
    of both colours, and past every deadline."""
    from service.stats.figures import Filters, summary

    random_actions(app, random.Random(7), filled["users"], rounds=8)  # far enough to close each way
    for day in (TODAY, YELLOW_DAY, LATER):
        check_all(app, filled, today=day)
    s = query(lambda session: summary(session, Filters(YEAR_FROM, YEAR_TO), today=LATER))
    for key in ("closed_rectified", "closed_explained", "closed_invalid", "called_back", "satisfied_yes",
                "satisfied_known", "closed_on_time", "open", "overdue_open", "extended"):
        assert s[key] > 0, key  # the walk reached every kind of count


def test_excluded_counts_the_excluded_ratings_each_filter_selects(app, filled, query):
    """``excluded``: the ratings a confirmed suspicious flag took out of the figures, under the same
    filters as the figures — one-day periods on the days they were rated, a scope, a channel, an
    item, a window — and the figures count the rest."""
    from service.extensions import db
    from service.stats import rollup
    from service.stats.figures import Filters, summary

    d, items = filled["depts"], filled["items"]
    with app.app_context():
        ids = list(db.session.scalars(select(Rating.id).order_by(Rating.id)))[::3]
        db.session.execute(update(Rating).where(Rating.id.in_(ids)).values(excluded_at=func.now()))
        rollup.rebuild(db.session)
        db.session.commit()
    depts, cases, ratings = query(raw_rows)
    out = [r for r in ratings if r.excluded_at is not None]
    kept = [r for r in ratings if r.excluded_at is None]
    assert len(out) == len(ids) > 0

    def want(lo, hi, path=None, channel=None, item_id=None, window=None):
        return sum(1 for r in out if lo <= local_date(r.rated_at) <= hi
                   and (path is None or depts[r.department_id].path.startswith(path))
                   and channel in (None, r.channel) and item_id in (None, r.item_id) and window in (None, r.window))

    for day in sorted({local_date(r.rated_at) for r in out})[:4]:
        got = query(lambda s: summary(s, Filters(day, day), today=TODAY))
        assert got["excluded"] == want(day, day) > 0, day
    for f in ({"department_path": d["a"].path}, {"channel": "pc"}, {"item_id": items["b"].id},
              {"department_path": d["a1"].path, "window": "3"}):
        got = query(lambda s: summary(s, Filters(YEAR_FROM, YEAR_TO, **f), today=TODAY))
        args = {"path": f.get("department_path"), **{k: v for k, v in f.items() if k != "department_path"}}
        assert got["excluded"] == want(YEAR_FROM, YEAR_TO, **args) > 0, f
        assert got["excluded"] < len(out)
    got = query(lambda s: summary(s, Filters(YEAR_FROM, YEAR_TO), today=TODAY))
    assert got["excluded"] == len(out)
    assert query(lambda s: summary(s, Filters(date(2020, 1, 1), date(2020, 12, 31)), today=TODAY))["excluded"] == 0
    assert got["total"] == query(lambda s: expected(s, {"from": YEAR_FROM, "to": YEAR_TO}, TODAY,
                                                    (depts, cases, kept)))["total"] == len(kept)


# --- the HTTP API -------------------------------------------------------------------------

def _get(client, token, path, **params):
    return client.get(path, query_string=params, headers=bearer(token) if token else {})


@pytest.fixture
def filled(app, district):
    rng = random.Random(99)
    devs = district["devices"]
    store_ratings(app, devs["a1-hall"], random_specs(rng, 40, [None, "item-marriage"]))
    store_ratings(app, devs["b-hall"], random_specs(rng, 40, [None, "item-license"]))
    store_ratings(app, devs["root-pc"], random_specs(rng, 40, [None]))
    random_actions(app, rng, district["users"], rounds=2)
    return district


def test_access_by_role_and_department_scope(app, client, org, filled, query):
    users, d = filled["users"], filled["depts"]
    period = {"from": "2021-01-01", "to": "2021-12-31"}
    mgr, sup_a, handler, admin = (org.token(users[k]) for k in ("manager", "sup-a", "h-a1", "admin"))
    total = _get(client, mgr, "/api/v1/stats/summary", **period).get_json()
    assert total["department"] == "district"
    assert _get(client, admin, "/api/v1/stats/summary", **period).get_json()["total"] == total["total"]

    a = _get(client, sup_a, "/api/v1/stats/summary", **period)
    assert a.status_code == 200 and a.get_json()["department"] == "bureau-a"
    want_a = query(lambda s: expected(s, {"from": YEAR_FROM, "to": YEAR_TO, "path": d["a"].path},
                                      today=local_date(datetime.now(timezone.utc))))
    assert {k: a.get_json()[k] for k in ("total", "bad", "good", "by_level")} == \
        {k: want_a[k] for k in ("total", "bad", "good", "by_level")}
    assert _get(client, sup_a, "/api/v1/stats/summary", department="section-a1", **period).status_code == 200
    # outside the caller's subtree, or unknown: 404, the same answer either way
    assert _get(client, sup_a, "/api/v1/stats/summary", department="bureau-b", **period).status_code == 404
    assert _get(client, sup_a, "/api/v1/stats/summary", department="district", **period).status_code == 404
    assert _get(client, sup_a, "/api/v1/stats/summary", department="nope", **period).status_code == 404
    assert _get(client, mgr, "/api/v1/stats/summary", department="bureau-b", **period).status_code == 200

    for path in ("/api/v1/stats/summary", "/api/v1/stats/breakdown", "/api/v1/stats/export"):
        params = {**period, "by": "channel"}
        assert _get(client, handler, path, **params).status_code == 403
        assert _get(client, None, path, **params).status_code == 401
    _, device_key = org.device(d["a1"], name="another kiosk")
    assert client.get("/api/v1/stats/summary", query_string=period,
                      headers=bearer(device_key)).status_code == 401


def test_bad_query_is_422_naming_the_field(app, client, org, filled):
    mgr = org.token(filled["users"]["manager"])
    for params, field in [({"to": "2021-12-31"}, "from"), ({"from": "2021-13-01", "to": "2021-12-31"}, "from"),
                          ({"from": "2021-12-31", "to": "2021-01-01"}, "to"),
                          ({"from": "2021-01-01", "to": "2021-12-31", "channel": "fax"}, "channel"),
                          ({"from": "2021-01-01", "to": "2021-12-31", "item": "no-such"}, "item")]:
        resp = _get(client, mgr, "/api/v1/stats/summary", **params)
        assert resp.status_code == 422 and field in str(resp.get_json()["errors"]), params
    resp = _get(client, mgr, "/api/v1/stats/breakdown", **{"from": "2021-01-01", "to": "2021-12-31", "by": "x"})
    assert resp.status_code == 422 and "by" in str(resp.get_json()["errors"])


def test_breakdown_in_process_refuses_an_unknown_grouping_naming_the_choices():
    """The API's schema answers 422 first; the function itself refuses too (reports, the CLI)."""
    from service.stats.figures import Filters, breakdown

    with pytest.raises(ValueError) as refused:
        breakdown(None, Filters(YEAR_FROM, YEAR_TO), "weekday")
    assert str(refused.value) == "by must be one of department, channel, item, window, staff, month, day, reason"


BYS = ["department", "channel", "item", "window", "staff", "month", "day"]


def test_breakdown_groups_add_up_to_the_summary(app, client, org, filled):
    mgr = org.token(filled["users"]["manager"])
    for by, scope in [(by, scope) for by in BYS
                      for scope in ({}, {"department": "bureau-a"}, {"channel": "hall_terminal"})]:
        params = {"from": "2021-01-01", "to": "2021-12-31", **scope}
        summary = _get(client, mgr, "/api/v1/stats/summary", **params).get_json()
        body = _get(client, mgr, "/api/v1/stats/breakdown", by=by, **params).get_json()
        figures = {k: v for k, v in body["total"].items()}
        assert figures == {k: summary[k] for k in figures}
        assert sum(g["total"] for g in body["groups"]) == summary["total"]
        assert sum(g["closed"] for g in body["groups"]) == summary["closed"]
        keys = [g["key"] for g in body["groups"]]
        if by in ("month", "day"):
            assert keys == sorted(keys)
        else:
            totals = [g["total"] for g in body["groups"]]
            assert totals == sorted(totals, reverse=True)


def test_every_breakdown_counts_its_total_on_the_day_asked(app, filled, query):
    """Each breakdown's total is the summary for the day asked (the clock-dependent counts), not today's."""
    from service.stats.figures import BREAKDOWNS, Filters, breakdown, summary

    f = Filters(YEAR_FROM, YEAR_TO)
    on = {day: query(lambda s: summary(s, f, today=day)) for day in (TODAY, LATER)}
    assert on[TODAY] != on[LATER]  # the cards and overdue counts move with the day
    for by in BREAKDOWNS:
        for day in (TODAY, LATER):
            total = query(lambda s: breakdown(s, f, by, today=day))["total"]
            assert {k: total[k] for k in ("open", "overdue_open", "red", "yellow", "on_time_rate")} == \
                {k: on[day][k] for k in ("open", "overdue_open", "red", "yellow", "on_time_rate")}, (by, day)


def test_department_breakdown_groups_children_with_their_subtrees(app, client, org, filled, query):
    d = filled["depts"]
    mgr = org.token(filled["users"]["manager"])
    year = {"from": "2021-01-01", "to": "2021-12-31"}
    body = _get(client, mgr, "/api/v1/stats/breakdown", by="department", **year).get_json()
    groups = {g["key"]: g for g in body["groups"]}
    assert set(groups) == {"bureau-a", "bureau-b", "district"}
    assert groups["district"]["label"].endswith("（本级）")
    want_a = query(lambda s: expected(s, {"from": YEAR_FROM, "to": YEAR_TO, "path": d["a"].path}))
    assert groups["bureau-a"]["total"] == want_a["total"] and groups["bureau-a"]["bad"] == want_a["bad"]


def test_department_breakdown_in_a_sub_scope_and_over_several_top_level_departments(app, org, filled, query):
    """by=department: in a scope below the top, the scope's children with their subtrees and the
    scope's own ratings (本级); with no scope and one top-level department, its children and
    itself (本级); with several top-level departments, each top-level subtree."""
    from service.stats.figures import Filters, breakdown

    d = filled["depts"]
    at = datetime(2021, 5, 1, 10, tzinfo=SH)
    store_ratings(app, org.device(d["a"], channel="hall_terminal", window="9", name="a hall")[0],
                  [{"level": 5, "rated_at": at}, {"level": 1, "rated_at": at}])

    def groups(path=None):
        out = query(lambda s: breakdown(s, Filters(YEAR_FROM, YEAR_TO, department_path=path), "department"))
        return {g["key"]: (g["label"], g["total"]) for g in out["groups"]}

    def total(dept):
        return query(lambda s: expected(s, {"from": YEAR_FROM, "to": YEAR_TO, "path": dept.path}))["total"]

    assert groups(d["a"].path) == {"section-a1": ("婚姻登记科", total(d["a1"])), "bureau-a": ("区民政局（本级）", 2)}
    own = total(d["root"]) - total(d["a"]) - total(d["b"])
    assert own > 0
    want = {"bureau-a": ("区民政局", total(d["a"])), "bureau-b": ("区市场监管局", total(d["b"])),
            "district": ("示范区政务服务中心（本级）", own)}
    assert groups() == groups(d["root"].path) == want
    other = org.department("other", "另一中心")
    store_ratings(app, org.device(other, channel="pc", window=None, name="other pc")[0], [{"level": 4, "rated_at": at}])
    assert groups() == {"district": ("示范区政务服务中心", total(d["root"])), "other": ("另一中心", 1)}


def test_channels_carry_the_labels_the_pages_show_in_breakdown_and_export(app, client, org, filled):
    mgr = org.token(filled["users"]["manager"])
    year = {"from": "2021-01-01", "to": "2021-12-31", "by": "channel"}
    groups = _get(client, mgr, "/api/v1/stats/breakdown", **year).get_json()["groups"]
    labels = {g["key"]: g["label"] for g in groups}
    assert labels == {"pc": "网上办事大厅（PC端）", "hall_terminal": "窗口评价器"}
    resp = _get(client, mgr, "/api/v1/stats/export", format="csv", **year)
    first_cells = {r[0] for r in csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))) if r}
    assert {"网上办事大厅（PC端）", "窗口评价器"} <= first_cells


def test_month_breakdown_equals_raw_counts_per_month(app, client, org, filled, query):
    mgr = org.token(filled["users"]["manager"])
    year = {"from": "2021-01-01", "to": "2021-12-31"}
    body = _get(client, mgr, "/api/v1/stats/breakdown", by="month", **year).get_json()
    for g in body["groups"]:
        y, m = map(int, g["key"].split("-"))
        last = (date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1))
        want = query(lambda s: expected(s, {"from": date(y, m, 1), "to": last}))
        assert (g["total"], g["bad"], g["disposal_rate"], g["rectification_rate"]) == \
            (want["total"], want["bad"], want["disposal_rate"], want["rectification_rate"])


def test_day_breakdown_equals_raw_counts_per_local_day(app, filled, query):
    """by=day: one group per Shanghai day rated, keyed and labelled by its ISO date, each equal to
    the raw count of that day (the oracle's own local dates)."""
    from service.stats.figures import Filters, breakdown

    rows = query(raw_rows)
    days = sorted({local_date(r.rated_at) for r in rows[2] if YEAR_FROM <= local_date(r.rated_at) <= YEAR_TO})
    body = query(lambda s: breakdown(s, Filters(YEAR_FROM, YEAR_TO), "day"))
    assert [(g["key"], g["label"]) for g in body["groups"]] == [(d.isoformat(), d.isoformat()) for d in days]
    for g, day in zip(body["groups"], days):
        want = query(lambda s: expected(s, {"from": day, "to": day}, rows=rows))
        assert {k: g[k] for k in ("total", "bad", "by_level", "disposal_rate")} == \
            {k: want[k] for k in ("total", "bad", "by_level", "disposal_rate")}, day


def test_item_breakdown_labels_each_item_and_groups_the_ratings_without_one(app, filled, query):
    """by=item: each service item by its code and name; the ratings naming none in one group
    with an empty key, labelled 未指定事项. A group with ratings and no application counts 0 of each."""
    from service.stats.figures import Filters, breakdown

    items = filled["items"]
    ratings = query(raw_rows)[2]
    body = query(lambda s: breakdown(s, Filters(YEAR_FROM, YEAR_TO), "item"))
    assert body["by"] == "item"
    want = {i.code: (i.code, sum(1 for r in ratings if r.item_id == i.id)) for i in items.values()}
    want[""] = ("未指定事项", sum(1 for r in ratings if r.item_id is None))
    assert {g["key"]: (g["label"], g["total"]) for g in body["groups"]} == want
    assert all(total > 0 for _, total in want.values())
    # no application in this district: 办件评价率's counts are 0 (not missing), its rate None
    assert {(g["projects"], g["rated_projects"], g["rated_projects_rate"]) for g in body["groups"]} == {(0, 0, None)}


def test_window_breakdown_keys_and_labels_each_window_of_its_department(app, filled, query):
    """by=window: key ``department/window``; label 「name N号窗口」, or 「name 无窗口」 for none."""
    from service.stats.figures import Filters, breakdown

    d = filled["depts"]
    ratings = query(raw_rows)[2]
    body = query(lambda s: breakdown(s, Filters(YEAR_FROM, YEAR_TO), "window"))

    def count(dept):
        return sum(1 for r in ratings if r.department_id == dept.id)
    assert {g["key"]: (g["label"], g["total"]) for g in body["groups"]} == {
        "section-a1/3": ("婚姻登记科 3号窗口", count(d["a1"])), "bureau-b/1": ("区市场监管局 1号窗口", count(d["b"])),
        "district/": ("示范区政务服务中心 无窗口", count(d["root"]))}


def test_staff_breakdown_labels_each_staff_number_and_the_ratings_without_one(app, filled, query):
    """by=staff: each 工号 labelled by itself; the ratings naming none keyed ``""``, labelled 未填工号."""
    from service.stats.figures import Filters, breakdown

    ratings = query(raw_rows)[2]
    body = query(lambda s: breakdown(s, Filters(YEAR_FROM, YEAR_TO), "staff"))
    want = {no: (no, sum(1 for r in ratings if r.staff_no == no)) for no in ("S001", "S002", "S003")}
    want[""] = ("未填工号", sum(1 for r in ratings if not r.staff_no))
    assert {g["key"]: (g["label"], g["total"]) for g in body["groups"]} == want


def test_channel_breakdown_labels_a_channel_outside_the_table_by_its_code(app, filled, query):
    """Old rows of a channel no longer in CHANNEL_LABELS still show, under their stored code."""
    from service.extensions import db
    from service.stats import rollup
    from service.stats.figures import Filters, breakdown

    with app.app_context():
        db.session.execute(update(Rating).where(Rating.channel == "pc").values(channel="retired"))
        rollup.rebuild(db.session)
        db.session.commit()
    labels = {g["key"]: g["label"]
              for g in query(lambda s: breakdown(s, Filters(YEAR_FROM, YEAR_TO), "channel"))["groups"]}
    assert labels == {"retired": "retired", "hall_terminal": "窗口评价器"}


def test_exports_open_and_carry_the_numbers(app, client, org, filled):
    mgr = org.token(filled["users"]["manager"])
    params = {"from": "2021-01-01", "to": "2021-12-31", "department": "bureau-a"}
    summary = _get(client, mgr, "/api/v1/stats/summary", **params).get_json()
    body = _get(client, mgr, "/api/v1/stats/breakdown", by="channel", **params).get_json()

    resp = _get(client, mgr, "/api/v1/stats/export", format="xlsx", by="channel", **params)
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in resp.headers["Content-Disposition"]
    ws = load_workbook(io.BytesIO(resp.data)).active
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    text = " ".join(str(c) for r in rows for c in r if c is not None)
    assert "2021-01-01 至 2021-12-31" in text and "区民政局" in text
    header_at = next(i for i, r in enumerate(rows) if r[0] == "评价渠道")
    header = rows[header_at]
    assert {"评价总数", "好评率", "差评处置率", "差评整改率", "回访率", "按期办结率", "回访整改满意率"} <= set(header)
    total_row = next(r for r in rows if r[0] == "合计")
    col = {h: i for i, h in enumerate(header)}
    assert total_row[col["评价总数"]] == summary["total"] and isinstance(total_row[col["评价总数"]], int)
    assert total_row[col["差评数"]] == summary["bad"]
    assert total_row[col["好评率"]] == pytest.approx(summary["good_rate"])
    rate_cell = ws.cell(row=header_at + 1 + len(body["groups"]) + 1, column=col["好评率"] + 1)
    assert rate_cell.value == pytest.approx(summary["good_rate"]) and rate_cell.number_format == "0.00%"
    assert len([r for r in rows[header_at + 1:] if r[0]]) == len(body["groups"]) + 1

    resp = _get(client, mgr, "/api/v1/stats/export", format="csv", **params)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.data.startswith("\ufeff".encode("utf-8"))
    lines = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert lines[0][0] == "统计期间" and "2021-01-01 至 2021-12-31" in lines[0][1]
    header = next(r for r in lines if r and r[0] == "统计")
    total_row = next(r for r in lines if r and r[0] == "合计")
    assert int(total_row[header.index("评价总数")]) == summary["total"]
    want_rate = "" if summary["disposal_rate"] is None else f"{summary['disposal_rate'] * 100:.2f}%"
    assert total_row[header.index("差评处置率")] == want_rate


def test_openapi_documents_the_stats_endpoints(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"/api/v1/stats/summary", "/api/v1/stats/breakdown", "/api/v1/stats/export"} <= set(paths)


def test_cli_check_and_rebuild(app, district):
    from service.cli.stats import stats
    from service.extensions import db

    rng = random.Random(3)
    store_ratings(app, district["devices"]["b-hall"], random_specs(rng, 30, [None]))
    runner = app.test_cli_runner()
    assert runner.invoke(stats, ["check"]).exit_code == 0
    with app.app_context():  # a rollup row gone wrong is found, and rebuild mends it
        db.session.execute(text("UPDATE stats_daily SET level_5 = level_5 + 1"))
        db.session.commit()
    broken = runner.invoke(stats, ["check"])
    assert broken.exit_code == 1 and "stats_daily" in broken.output
    assert runner.invoke(stats, ["rebuild"]).exit_code == 0
    assert runner.invoke(stats, ["check"]).exit_code == 0
    with app.app_context():  # and an open case's row gone wrong (the clock-dependent counts)
        db.session.execute(text("UPDATE stats_open SET open_cases = open_cases + 1"))
        db.session.commit()
    broken = runner.invoke(stats, ["check"])
    assert broken.exit_code == 1 and "stats_open" in broken.output
    assert runner.invoke(stats, ["rebuild"]).exit_code == 0
    assert runner.invoke(stats, ["check"]).exit_code == 0


def test_dates_outside_the_calendar_are_422_not_500(client, org):
    """Found by the fuzz run: year 1 made the month arithmetic leave the calendar."""
    dept = org.department("far", "远郊")
    token = org.token(org.user("far-manager", "manager", dept))
    for path in ("/api/v1/stats/summary", "/api/v1/stats/export"):
        resp = client.get(path, query_string={"from": "0001-01-01", "to": "0001-01-01"},
                          headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 422 and "from" in resp.get_json()["errors"]["query"]


def test_split_period_takes_each_whole_month_from_the_monthly_rollup_and_the_odd_days_around():
    """Whole months (as first days) for stats_monthly, the odd days for stats_daily: a period from
    the 1st or to the month's last day takes that month whole; one from the 2nd or to the
    day before the last does not."""
    from service.stats.figures import split_period

    d = date
    assert split_period(d(2021, 3, 1), d(2021, 5, 31)) == ((d(2021, 3, 1), d(2021, 5, 1)), [])
    assert split_period(d(2021, 3, 2), d(2021, 5, 31)) == ((d(2021, 4, 1), d(2021, 5, 1)),
                                                           [(d(2021, 3, 2), d(2021, 3, 31))])
    assert split_period(d(2021, 3, 1), d(2021, 5, 30)) == ((d(2021, 3, 1), d(2021, 4, 1)),
                                                           [(d(2021, 5, 1), d(2021, 5, 30))])
    assert split_period(d(2021, 2, 1), d(2021, 2, 28)) == ((d(2021, 2, 1), d(2021, 2, 1)), [])
    assert split_period(d(2021, 12, 2), d(2022, 1, 30)) == (None, [(d(2021, 12, 2), d(2022, 1, 30))])
