"""Suspicious ratings (SPEC §10): the rules on planted data, the queue's access, and a confirm's
exclusion exact and reversible on the summary, breakdowns, rollups and hot-spot counts."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from models import Case, Rating, SuspiciousFlag, SuspiciousFlagEvent, SuspiciousFlagRating, SuspiciousMark
from tests.support import bearer, wait_for
from tests.test_stats import SH, district, expected, filled, raw_rows  # noqa: F401 — fixtures

FLAGS = "/api/v1/insights/suspicious"
DAY = date(2021, 6, 8)
START = datetime(2021, 6, 8, 10, 0, tzinfo=SH)


def store(app, device, specs: list[dict], check: bool = True) -> list[int]:
    """Store through the intake's code path, route bad ones, count terms and run the rules as the tasks would."""
    from models import Device
    from service.cases.routing import route
    from service.extensions import db
    from service.insights import counting
    from service.ratings.intake import store as intake_store
    from service.suspicious import rules

    with app.app_context():
        dev = db.session.get(Device, device.id)
        outcomes = intake_store(db.session.connection(), dev, [{"client_id": uuid.uuid4(), **s} for s in specs])
        db.session.commit()
        assert all(o.status == "created" for o in outcomes)
        ids = [o.rating["id"] for o in outcomes]
        for o in outcomes:
            if o.rating["negative"]:
                route(db.session, o.rating["id"])
        counting.count(db.session, ids)
        if check:
            rules.check(db.session, ids)
        db.session.commit()
        return ids


def flags(query, **where) -> list[tuple]:
    """(rule, department_id, state, rating ids, id) of every flag matching ``where``."""
    def run(s):
        stmt = select(SuspiciousFlag).order_by(SuspiciousFlag.id)
        for k, v in where.items():
            stmt = stmt.where(getattr(SuspiciousFlag, k) == v)
        return [(f.rule, f.department_id, f.state, sorted(s.scalars(select(SuspiciousFlagRating.rating_id).where(
            SuspiciousFlagRating.flag_id == f.id))), f.id) for f in s.scalars(stmt)]
    return query(run)


def good(level=5, at=START, **extra):
    return {"level": level, "rated_at": at, **extra}


# --- the rules --------------------------------------------------------------------------

def test_a_device_burst_is_flagged_and_a_human_pace_is_not(app, district, query):  # noqa: F811
    from config.settings import load_settings

    s = load_settings()
    assert (s.burst_ratings, s.burst_seconds) == (10, 60)
    devs = district["devices"]
    # 14 ratings 2 s apart across a window boundary (10:00:50 → 10:01:16) from one kiosk …
    burst_at = START + timedelta(seconds=50)
    burst = store(app, devs["a1-hall"], [good(at=burst_at + timedelta(seconds=2 * i)) for i in range(7)])
    burst += store(app, devs["a1-hall"], [good(at=burst_at + timedelta(seconds=14 + 2 * i)) for i in range(7)])
    # … and 30 ratings a minute apart (a busy window, but a person's pace) from another.
    store(app, devs["b-hall"], [good(at=START + timedelta(minutes=i)) for i in range(30)])
    # 10 in a minute is the limit itself: not more than it.
    store(app, devs["a1-tablet"], [good(at=START + timedelta(seconds=5 * i)) for i in range(10)])

    got = flags(query, rule="burst")
    assert [(r, d, st, ids) for r, d, st, ids, _ in got] == [
        ("burst", district["depts"]["a1"].id, "open", sorted(burst))]
    flag = query(lambda s: s.get(SuspiciousFlag, got[0][4]))
    assert "a1 hall" in flag.subject


def test_a_long_burst_rating_by_rating_flags_every_one_past_the_limit(app, district, query):  # noqa: F811
    """One rating per task, 30 in one window: the window's count is read only as far as the
    decision needs, and still the 11th opens the flag with all 11 and each later one joins it."""
    devs = district["devices"]
    ids = []
    for i in range(30):
        ids += store(app, devs["a1-hall"], [good(at=START + timedelta(seconds=i))])
        got = [ids_ for _r, _d, _s, ids_, _ in flags(query, rule="burst")]
        assert got == ([] if i < 10 else [sorted(ids)]), i


def test_a_phone_over_its_daily_cap_is_flagged_by_its_blind_index(app, district, query):  # noqa: F811
    devs = district["devices"]
    phone = "13812345678"
    rater = {"real_name": True, "name": "王先生", "phone": phone}
    # 6 ratings in a day from one phone over two devices (and departments): over the cap of 5.
    first = store(app, devs["a1-hall"], [good(at=START + timedelta(hours=i), rater=rater) for i in range(3)])
    second = store(app, devs["b-hall"], [good(at=START + timedelta(hours=3 + i), rater=rater) for i in range(3)])
    # 5 from another phone, and the first phone again the next day: within the cap.
    other = {"real_name": True, "name": "李女士", "phone": "13900001111"}
    store(app, devs["a1-hall"], [good(at=START + timedelta(hours=i), rater=other) for i in range(5)])
    store(app, devs["a1-hall"], [good(at=START + timedelta(days=1), rater=rater)])

    got = flags(query, rule="phone")
    d = district["depts"]
    assert sorted((dep, ids) for _r, dep, _s, ids, _ in got) == sorted(
        [(d["a1"].id, sorted(first)), (d["b"].id, sorted(second))])
    stored = query(lambda s: [(f.subject, f.group_key) for f in s.scalars(select(SuspiciousFlag))]
                   + [(m.key, m.group_key) for m in s.scalars(select(SuspiciousMark))])
    assert all(phone not in a and phone not in b for a, b in stored)
    assert [subject for subject, _k in stored[:2]] == ["138******78"] * 2


def test_expired_marks_are_deleted_at_most_once_a_minute(app, district, query, clock):  # noqa: F811
    """A window's marks go once it can no longer grow (its end + 2 days), by the next check
    after PRUNE_EVERY has passed since this process last deleted — not by every check."""
    from service.suspicious.rules import PRUNE_EVERY

    dev = district["devices"]["a1-hall"]
    app.extensions.pop("hcp_marks_pruned_at", None)

    def marks_of(ids):
        return query(lambda s: s.scalars(select(SuspiciousMark.rating_id).where(
            SuspiciousMark.rating_id.in_(ids))).all())

    clock.set(START + timedelta(hours=1))
    first = store(app, dev, [good(at=START)])
    assert len(marks_of(first)) == 2  # the two burst tilings
    later = START + timedelta(days=3, hours=1)
    clock.set(later)
    second = store(app, dev, [good(at=START + timedelta(days=3))])
    assert marks_of(first) == [] and len(marks_of(second)) == 2
    # The second's marks expire just after that delete: a check within the minute leaves them.
    query(lambda s: (s.execute(update(SuspiciousMark).where(SuspiciousMark.rating_id.in_(second))
                               .values(expires_at=later + timedelta(seconds=1))), s.commit()))
    clock.set(later + PRUNE_EVERY - timedelta(seconds=1))
    store(app, dev, [good(at=START + timedelta(days=3, minutes=5))])
    assert len(marks_of(second)) == 2
    clock.set(later + PRUNE_EVERY)
    store(app, dev, [good(at=START + timedelta(days=3, minutes=10))])
    assert marks_of(second) == []


def test_many_identical_comments_are_flagged_but_short_common_ones_are_not(app, district, query):  # noqa: F811
    devs = district["devices"]
    text = "工作人员态度非常好，办事效率高"
    same = store(app, devs["a1-hall"], [good(at=START + timedelta(minutes=3 * i), comment=text) for i in range(3)])
    # pasted copies differ in spaces only
    same += store(app, devs["a1-tablet"], [good(at=START + timedelta(minutes=30 + 3 * i), comment=f" {text} ")
                                           for i in range(3)])
    store(app, devs["a1-hall"], [good(at=START + timedelta(hours=2, minutes=2 * i), comment="很满意")
                                 for i in range(12)])
    got = flags(query, rule="comment")
    assert [(ids) for _r, _d, _s, ids, _ in got] == [sorted(same)]


def test_a_rating_before_its_application_was_accepted_is_flagged(app, district, query):  # noqa: F811
    from models import Project
    from service.extensions import db

    with app.app_context():
        db.session.add(Project(project_no="BJ-2021-1", item_id=district["items"]["a1"].id,
                               department_id=district["depts"]["a1"].id, stage="accepted",
                               accepted_at=START + timedelta(hours=2), applicant_kind="person"))
        db.session.commit()
    devs = district["devices"]
    early = store(app, devs["a1-hall"], [good(at=START, project_no="BJ-2021-1")])
    store(app, devs["a1-hall"], [good(at=START + timedelta(hours=3), project_no="BJ-2021-1"),
                                 good(at=START, project_no="BJ-unknown")])
    assert [ids for _r, _d, _s, ids, _ in flags(query, rule="project")] == [early]


def test_an_application_registered_after_its_ratings_has_them_checked_then(app, client, org, district, query):  # noqa: F811
    """Ratings arrive before their application is registered (the rule cannot see it yet); the
    PUT that registers it, or moves its acceptance, flags those made before acceptance."""
    from service.clients.registry import add_client
    from service.extensions import db

    _, approval = org._build(lambda: add_client("审批系统", "approval", db.session.merge(district["depts"]["a1"])))
    devs = district["devices"]
    early = store(app, devs["a1-hall"], [good(at=START, project_no="BJ-LATE-1")])
    later = store(app, devs["a1-hall"], [good(at=START + timedelta(hours=3), project_no="BJ-LATE-1"),
                                         good(at=START, project_no="BJ-OTHER")])
    assert flags(query, rule="project") == []  # nothing registered yet

    def put(accepted_at):
        body = {"item_code": district["items"]["a1"].code, "stage": "accepted", "accepted_at": accepted_at.isoformat(),
                "applicant": {"kind": "person", "name": "陈小明", "phone": "13812345678"}}
        return client.put("/api/v1/projects/BJ-LATE-1", json=body, headers=bearer(approval)).status_code

    assert put(START + timedelta(hours=2)) == 201
    assert [ids for _r, _d, _s, ids, _ in flags(query, rule="project")] == [early]
    assert put(START + timedelta(hours=2)) == 200  # the same PUT again: nothing new
    assert [ids for _r, _d, _s, ids, _ in flags(query, rule="project")] == [early]
    assert put(START + timedelta(hours=4)) == 200  # accepted later than stored: the later rating too
    assert [ids for _r, _d, _s, ids, _ in flags(query, rule="project")] == [sorted(early + later[:1])]


@pytest.mark.postgres_only
def test_two_transactions_opening_one_flag_make_one_and_neither_fails(app, district, query):  # noqa: F811
    """A PUT's recheck and the worker's rules open the same group's flag at once (each read no
    flag): the second INSERT waits for the first to commit and joins its flag, no error."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from service.extensions import db
    from service.suspicious import rules

    early = store(app, district["devices"]["a1-hall"], [good(at=START, project_no="BJ-RACE-1")])
    accepted = START + timedelta(hours=2)
    raced = []

    def other_transaction_first(conn, cursor, statement, *_):
        if statement.startswith("INSERT INTO suspicious_flags ") and not raced:
            raced.append(statement)
            with Session(db.engine) as other:  # the worker, in its own transaction, committing first
                assert rules.recheck_project(other, "BJ-RACE-1", accepted)
                other.commit()

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", other_transaction_first)
        try:
            assert rules.recheck_project(db.session, "BJ-RACE-1", accepted) == []  # joined, nothing new
            db.session.commit()
        finally:
            event.remove(db.engine, "before_cursor_execute", other_transaction_first)
    assert raced
    assert [(st, ids) for _r, _d, st, ids, _ in flags(query, rule="project")] == [("open", early)]
    assert query(lambda s: [e.action for e in s.scalars(select(SuspiciousFlagEvent))]) == ["open"]


def test_the_intake_stores_everything_and_the_worker_flags_the_burst(app, client, district, worker, query):  # noqa: F811
    from models import Device
    from service.extensions import db

    with app.app_context():
        from service.auth.access import new_device_key
        from service.privacy import key_digest

        key = new_device_key()
        db.session.get(Device, district["devices"]["b-hall"].id).key_hash = key_digest(key)
        db.session.commit()
    body = {"ratings": [{"client_id": str(uuid.uuid4()), "level": 5 if i else 1,
                         "rated_at": (START + timedelta(seconds=i)).isoformat()} for i in range(20)]}
    resp = client.post("/api/v1/ratings/batch", json=body, headers=bearer(key))
    assert resp.status_code == 200
    assert [r["status"] for r in resp.get_json()["results"]] == ["created"] * 20
    ids = sorted(r["id"] for r in resp.get_json()["results"])
    wait_for(lambda: flags(query, rule="burst") and flags(query, rule="burst")[0][3] == ids,
             message="the burst flagged by the worker")
    assert query(lambda s: s.query(Rating).count()) == 20  # a flag never refuses a rating


# --- the decisions and the figures ----------------------------------------------------

def token(org, user):
    return bearer(org.token(user))


def summary(client, headers, **extra):
    params = {"from": "2021-01-01", "to": "2021-12-31", **extra}
    resp = client.get("/api/v1/stats/summary", query_string=params, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def assert_exact(app, district, client, headers):  # noqa: F811
    """Summary and breakdowns equal the raw rows with the exclusions applied; the rollups and
    the hot-spot counts equal their recounts."""
    from service.extensions import db
    from service.insights import counting
    from service.stats import rollup
    from tests.test_stats import TODAY

    with app.app_context():
        assert rollup.differences(db.session) == []
        assert counting.differences(db.session) == []
        depts, cases, ratings = raw_rows(db.session)
        kept = [r for r in ratings if r.excluded_at is None]
        want = expected(db.session, {"from": date(2021, 1, 1), "to": date(2021, 12, 31)}, TODAY,
                        (depts, cases, kept))
        want_a = expected(db.session, {"from": date(2021, 1, 1), "to": date(2021, 12, 31),
                                       "path": district["depts"]["a"].path}, TODAY, (depts, cases, kept))
        excluded = sum(1 for r in ratings if r.excluded_at is not None)
    keys = ("total", "good", "bad", "by_level", "good_rate", "disposal_rate", "rectification_rate")
    got = summary(client, headers)
    assert {k: got[k] for k in keys} == {k: want[k] for k in keys}
    assert got["excluded"] == excluded
    got_a = summary(client, headers, department="bureau-a")
    assert {k: got_a[k] for k in keys} == {k: want_a[k] for k in keys}
    for by in ("department", "channel", "item", "day", "month", "staff", "window"):
        body = client.get("/api/v1/stats/breakdown", headers=headers, query_string={
            "from": "2021-01-01", "to": "2021-12-31", "by": by}).get_json()
        assert sum(g["total"] for g in body["groups"]) == want["total"], by
        assert body["total"]["good"] == want["good"], by
    return got


def test_confirm_excludes_the_good_ratings_exactly_and_restore_puts_them_back(
        app, client, org, filled, query):  # noqa: F811
    users = filled["users"]
    mgr = token(org, users["manager"])
    before = assert_exact(app, filled, client, mgr)
    assert before["excluded"] == 0
    # A burst of 12 good ratings (with text the hot spots count) and 2 bad ones, all in June.
    specs = [good(level=5 - i % 2, at=START + timedelta(seconds=3 * i), comment="工作人员态度好营业执照办得快",
                  tags=["窗口服务"]) for i in range(12)]
    specs += [{"level": 1, "rated_at": START + timedelta(seconds=40), "comment": "排队时间太长"},
              {"level": 2, "rated_at": START + timedelta(seconds=41)}]
    ids = store(app, filled["devices"]["a1-hall"], specs)
    (flag_id,) = [f[4] for f in flags(query, rule="burst")]
    bad_ids = ids[12:]
    grown = assert_exact(app, filled, client, mgr)
    assert grown["total"] == before["total"] + 14

    sup = token(org, users["sup-a"])
    resp = client.post(f"{FLAGS}/{flag_id}/confirm", json={"note": "同一设备连续刷好评"}, headers=sup)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert sorted(body["excluded"]) == sorted(ids[:12])
    # the bad ratings keep their cases and are listed for the invalid review
    assert sorted(r["rating_id"] for r in body["needs_invalid_review"]) == sorted(bad_ids)
    assert all(r["case_id"] and r["case_status"] != "closed" for r in body["needs_invalid_review"])
    assert body["flag"]["state"] == "confirmed" and body["flag"]["excluded"] == 12
    after = assert_exact(app, filled, client, mgr)
    assert after["total"] == before["total"] + 2 and after["bad"] == before["bad"] + 2
    assert after["excluded"] == 12
    assert query(lambda s: s.query(Case).filter(Case.rating_id.in_(bad_ids)).count()) == 2

    # four eyes: the confirmer may not restore; another supervisor in scope may
    assert client.post(f"{FLAGS}/{flag_id}/restore", json={}, headers=sup).status_code == 403
    resp = client.post(f"{FLAGS}/{flag_id}/restore", json={"note": "核实为真实评价"},
                       headers=token(org, users["sup-root"]))
    assert resp.status_code == 200, resp.get_json()
    assert sorted(resp.get_json()["restored"]) == sorted(ids[:12])
    restored = assert_exact(app, filled, client, mgr)
    assert {k: restored[k] for k in grown if k != "excluded"} == {k: grown[k] for k in grown if k != "excluded"}
    assert restored["excluded"] == 0

    detail = client.get(f"{FLAGS}/{flag_id}", headers=mgr).get_json()
    assert [(e["action"], e["from"], e["to"], e["actor"]) for e in detail["history"]] == [
        ("open", None, "open", None), ("confirm", "open", "confirmed", "sup-a"),
        ("restore", "confirmed", "open", "sup-root")]
    assert detail["state"] == "open" and len(detail["rating_items"]) == 14


def test_dismiss_and_a_group_joined_after_a_decision_opens_a_new_flag(app, client, org, district, query):  # noqa: F811
    dev = district["devices"]["a1-hall"]
    first = store(app, dev, [good(at=START + timedelta(seconds=i)) for i in range(11)])
    (flag_id,) = [f[4] for f in flags(query)]
    sup = token(org, district["users"]["sup-a"])
    resp = client.post(f"{FLAGS}/{flag_id}/dismiss", json={"note": "活动日集中评价"}, headers=sup)
    assert resp.status_code == 200 and resp.get_json()["flag"]["state"] == "dismissed"
    assert client.post(f"{FLAGS}/{flag_id}/confirm", json={}, headers=sup).status_code == 409
    later = store(app, dev, [good(at=START + timedelta(seconds=20 + i)) for i in range(3)])
    got = flags(query)
    assert [(st, ids) for _r, _d, st, ids, _ in got] == [("dismissed", sorted(first)), ("open", sorted(later))]
    listed = client.get(FLAGS, headers=sup).get_json()
    assert listed["total"] == 1 and listed["items"][0]["ratings"] == 3
    assert client.get(FLAGS, headers=sup, query_string={"state": "all"}).get_json()["total"] == 2
    assert query(lambda s: s.query(SuspiciousFlagEvent).count()) == 3


def test_access_handler_403_out_of_scope_404_and_bad_input_422(app, client, org, district):  # noqa: F811
    store(app, district["devices"]["a1-hall"], [good(at=START + timedelta(seconds=i)) for i in range(11)])
    users = district["users"]
    sup_a, sup_b = token(org, users["sup-a"]), token(org, users["sup-b"])
    handler, admin = token(org, users["h-a1"]), token(org, users["admin"])
    flag_id = client.get(FLAGS, headers=sup_a).get_json()["items"][0]["id"]

    assert client.get(FLAGS).status_code == 401
    assert client.get(FLAGS, headers=handler).status_code == 403
    assert client.post(f"{FLAGS}/{flag_id}/confirm", json={}, headers=handler).status_code == 403
    assert client.post(f"{FLAGS}/{flag_id}/confirm", json={}, headers=admin).status_code == 403
    assert client.get(FLAGS, headers=admin).get_json()["total"] == 1
    # another department's supervisor sees nothing of it
    assert client.get(FLAGS, headers=sup_b).get_json() == {"items": [], "total": 0}
    assert client.get(f"{FLAGS}/{flag_id}", headers=sup_b).status_code == 404
    assert client.post(f"{FLAGS}/{flag_id}/confirm", json={}, headers=sup_b).status_code == 404
    assert client.post(f"{FLAGS}/{flag_id}/dismiss", json={}, headers=sup_b).status_code == 404
    assert client.get(FLAGS, headers=sup_b, query_string={"department": "bureau-a"}).status_code == 404
    assert client.get(FLAGS, headers=sup_a, query_string={"department": "section-a1"}).get_json()["total"] == 1
    assert client.get(f"{FLAGS}/999999", headers=sup_a).status_code == 404

    for params, name in (({"state": "bogus"}, "state"), ({"rule": "x"}, "rule"), ({"per_page": 0}, "per_page")):
        resp = client.get(FLAGS, headers=sup_a, query_string=params)
        assert resp.status_code == 422 and name in str(resp.get_json()["errors"]), params
    resp = client.post(f"{FLAGS}/{flag_id}/confirm", json={"note": "x" * 501}, headers=sup_a)
    assert resp.status_code == 422 and "note" in resp.get_json()["errors"]["json"]
    resp = client.post(f"{FLAGS}/{flag_id}/confirm", json={"note": 5}, headers=sup_a)
    assert resp.status_code == 422 and "note" in resp.get_json()["errors"]["json"]
    # nothing was decided by the refused requests
    assert client.get(FLAGS, headers=sup_a).get_json()["items"][0]["state"] == "open"


# --- the page -----------------------------------------------------------------------------

def test_the_page_lists_flags_and_a_supervisor_confirms_with_the_csrf_form(app, org, district, query):  # noqa: F811
    from tests.web_support import CSRF_RE

    ids = store(app, district["devices"]["a1-hall"],
                [good(at=START + timedelta(seconds=i)) for i in range(11)] + [{"level": 1, "rated_at": START}])
    (flag_id,) = [f[4] for f in flags(query)]

    def signed_in(user):
        c = app.test_client()
        token = CSRF_RE.search(c.get("/login").get_data(as_text=True)).group(2)
        assert c.post("/login", data={"username": user.username, "password": "correct-horse-9",
                                      "csrf_token": token}).status_code == 302
        return c

    sup = signed_in(district["users"]["sup-a"])
    page = sup.get("/suspicious").get_data(as_text=True)
    assert "疑似刷评审核" in page and "设备连续评价过快" in page and f"#{flag_id}" in page
    detail = sup.get(f"/suspicious/{flag_id}").get_data(as_text=True)
    assert "须走无效差评审核的差评" in detail and "确认刷评并剔除" in detail
    # without the page's CSRF token nothing is decided
    assert sup.post(f"/suspicious/{flag_id}/confirm", data={"confirm-note": "x"}).status_code == 400
    token = {m.group(1): m.group(2) for m in CSRF_RE.finditer(detail)}["confirm-csrf_token"]
    resp = sup.post(f"/suspicious/{flag_id}/confirm", data={"confirm-csrf_token": token, "confirm-note": "刷好评"})
    assert resp.status_code == 302
    shown = sup.get(f"/suspicious/{flag_id}").get_data(as_text=True)
    assert "已确认：11 条好评已从全部统计中剔除" in shown and "须在工单中走无效差评审核" in shown
    assert "撤销确认（恢复统计）" not in shown  # not for the one who confirmed
    assert query(lambda s: s.query(Rating).filter(Rating.excluded_at.is_not(None)).count()) == 11
    assert query(lambda s: s.get(Rating, ids[-1]).excluded_at) is None

    other = signed_in(district["users"]["sup-root"])
    assert "撤销确认（恢复统计）" in other.get(f"/suspicious/{flag_id}").get_data(as_text=True)
    assert signed_in(district["users"]["h-a1"]).get("/suspicious").status_code == 403
    assert signed_in(district["users"]["sup-b"]).get(f"/suspicious/{flag_id}").status_code == 404
