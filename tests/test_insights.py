"""Hot spots (SPEC §10): segmentation, term counts as ratings arrive, the endpoint and its rules."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from math import comb

import pytest
from sqlalchemy import select

from tests.support import bearer, rating_body, wait_for

SH = timezone(timedelta(hours=8))
PERIOD = (date(2026, 11, 1), date(2026, 11, 14))
HOTSPOTS = "/api/v1/insights/hotspots"


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=SH)


# --- segmentation -----------------------------------------------------------------------

def test_government_words_stay_whole_and_stopwords_never_appear():
    from service.insights.segment import STOPWORDS, USER_DICT, terms

    found = terms("我来办不动产登记，营业执照说能一窗通办，结果还是跑两趟了的")
    assert {"不动产登记", "营业执照", "一窗通办", "跑两趟"} <= found
    assert not found & {"的", "了", "我"}
    for word in ("不动产登记", "营业执照", "一窗通办", "跑两趟"):
        assert terms(word) == {word}
        assert word in USER_DICT.read_text(encoding="utf-8")
    for word in ("的", "了", "我"):
        assert word in STOPWORDS.read_text(encoding="utf-8").split()
        assert terms(f"{word}{word}营业执照{word}") == {"营业执照"}
    assert terms("") == set() and terms(None) == set() and terms("123，！!") == set()


def test_terms_of_a_text_are_jiebas_cut_of_the_whole_text_whatever_its_blocks_repeat():
    """terms() keeps each block's terms (a run of jieba's word characters): the same as
    cutting the whole text, across punctuation, spaces, latin and digits, and the cut at MAX_TEXT."""
    from service.insights import segment

    def whole(text):  # the filter of terms(), on jieba's cut of the whole (truncated) text
        words = (w.strip().lower() for w in segment.tokenizer().cut(text[:segment.MAX_TEXT], HMM=False))
        return {w for w in words if 2 <= len(w) <= segment.MAX_TERM and w not in segment.stopwords()
                and segment._WORDLIKE.search(w)}

    texts = ["不动产登记要跑两趟，材料不全（1234）", "材料不全！营业执照一窗通办 很方便\r\n社保卡补办很快",
             "APP-V2.0 登录失败，网上办理总是失败…", "窗口工作人员很耐心 窗口工作人员很耐心",
             "排队" * 999 + "时间太长，工作人员态度生硬", "自助终端#系统故障&公积金提取手续复杂_办事指南%写得清楚"]
    for text in texts + texts:  # the second time from the kept blocks
        assert segment.terms(text) == whole(text), text
    assert segment.terms("材料不全（1）") == segment.terms("材料不全（2）") == whole("材料不全")


# --- planted data -----------------------------------------------------------------------

@pytest.fixture
def hall(org):
    """district → bureau-a (item-a), district → bureau-b (item-b); one hall device each."""
    root = org.department("district", "示范区政务服务中心")
    a = org.department("bureau-a", "区不动产登记中心", parent=root)
    b = org.department("bureau-b", "区市场监管局", parent=root)
    items = {"a": org.item("item-a", a), "b": org.item("item-b", b)}
    devices = {"a": org.device(a, name="a hall")[0], "b": org.device(b, name="b hall")[0]}
    users = {"manager": org.user("mgr", "manager", root), "sup-a": org.user("sup-a", "supervisor", a),
             "sup-b": org.user("sup-b", "supervisor", b), "h-a": org.user("h-a", "handler", a)}
    return {"depts": {"root": root, "a": a, "b": b}, "items": items, "devices": devices, "users": users}


def store(app, device, specs: list[dict], count: bool = True) -> list[int]:
    """Store ratings through the intake's code path; count their terms as the task would."""
    from models import Device
    from service.extensions import db
    from service.insights import counting
    from service.ratings.intake import store as intake_store

    with app.app_context():
        dev = db.session.get(Device, device.id)
        outcomes = intake_store(db.session.connection(), dev, [{"client_id": uuid.uuid4(), **s} for s in specs])
        db.session.commit()
        ids = [o.rating["id"] for o in outcomes if o.status == "created"]
        if count:
            counting.count(db.session, ids)
            db.session.commit()
        return ids


def spec(day: date, level: int, comment: str | None = None, item: str | None = None, **extra) -> dict:
    out = {"level": level, "rated_at": at(day), **extra}
    if comment:
        out["comment"] = comment
    if item:
        out["item_code"] = item
    return out


def raw_term_counts(app) -> dict:
    """Independent recount: every rating's terms, straight from the raw rows."""
    from models import Rating
    from service.extensions import db
    from service.insights.counting import rating_terms
    from service.reasons.table import labels

    with app.app_context():
        rows = db.session.scalars(select(Rating)).all()
        label_of = labels(db.session.connection(), {c for r in rows for c in r.reasons or ()})
        out = {}
        for r in rows:
            for term in rating_terms(r, label_of):
                key = (r.rated_date, r.department_id, r.item_id or 0, term)
                c = out.setdefault(key, [0, 0])
                c[0] += 1
                c[1] += int(r.negative)
        return out


def stored_term_counts(app) -> dict:
    from models import InsightTerm
    from service.extensions import db

    with app.app_context():
        return {(t.rated_date, t.department_id, t.item_id, t.term): [t.ratings, t.bad]
                for t in db.session.scalars(select(InsightTerm)) if t.ratings or t.bad}


COMMENTS = ["不动产登记要跑两趟，材料不全", "营业执照一窗通办很方便", "排队时间太长，工作人员态度生硬",
            "自助终端系统故障", "办事指南写得清楚", None]


def plant_mixed(app, hall, days: int = 10) -> None:
    import random

    rng = random.Random(15)
    for key, item in (("a", "item-a"), ("b", "item-b")):
        specs = []
        for i in range(60):
            level = rng.choice([1, 2, 3, 4, 5, 5, 5])
            extra = {}
            if rng.random() < 0.3:
                extra["tags"] = ["窗口服务", "排队时间"]
            if level <= 2 and rng.random() < 0.5:
                extra["reasons"] = ["off_eff_wait"]
            specs.append(spec(PERIOD[0] + timedelta(days=rng.randrange(days)), level, rng.choice(COMMENTS),
                              item if rng.random() < 0.7 else None, **extra))
        store(app, hall["devices"][key], specs)


def test_counts_kept_as_ratings_arrive_equal_a_recount_and_rebuild(app, hall):
    from models import Rating
    from service.extensions import db
    from service.insights import counting
    from service.reasons.table import shipped

    assert any(o.code == "off_eff_wait" for o in shipped())
    plant_mixed(app, hall)
    stored = stored_term_counts(app)
    assert stored and stored == raw_term_counts(app)
    assert any("跑两趟" == k[3] for k in stored)
    with app.app_context():
        assert counting.differences(db.session) == []
        # a second delivery of the same batches counts nothing again
        all_ids = list(db.session.scalars(select(Rating.id)))
        assert counting.count(db.session, all_ids) == 0
        db.session.commit()
    assert stored_term_counts(app) == stored
    with app.app_context():
        counting.rebuild(db.session)
        db.session.commit()
    assert stored_term_counts(app) == stored


def test_check_finds_uncounted_ratings_and_rebuild_of_a_period_repairs_them(app, hall, shell):
    from service.extensions import db
    from service.insights import counting

    store(app, hall["devices"]["a"], [spec(PERIOD[0], 1, "营业执照办不下来")], count=False)
    store(app, hall["devices"]["a"], [spec(PERIOD[1], 1, "不动产登记跑两趟")])
    with app.app_context():
        diffs = counting.differences(db.session)
        assert [d["term"] for d in diffs] == ["营业执照"] and diffs[0]["stored"] is None
        assert counting.differences(db.session, PERIOD[1], PERIOD[1]) == []
    proc = shell("insights", "check", check=False)
    assert proc.returncode == 1 and "营业执照" in proc.stdout
    shell("insights", "rebuild", "--from", PERIOD[0].isoformat(), "--to", PERIOD[0].isoformat())
    assert "equal the raw rows" in shell("insights", "check").stdout
    assert stored_term_counts(app) == raw_term_counts(app)
    bad = shell("insights", "rebuild", "--from", "2026-11-02", "--to", "2026-11-01", check=False)
    assert bad.returncode == 2 and "--to" in bad.stderr


def test_intake_sends_each_stored_batch_to_the_worker(app, client, hall, worker):
    device_key = hall_key(app, hall)
    batch = {"ratings": [rating_body(1, comment="不动产登记跑两趟"), rating_body(5, comment="一窗通办真方便"),
                         rating_body(5)]}
    resp = client.post("/api/v1/ratings/batch", json=batch, headers=bearer(device_key))
    assert resp.status_code in (200, 201, 207), resp.get_json()
    single = client.post("/api/v1/ratings", json=rating_body(2, comment="营业执照材料不全"), headers=bearer(device_key))
    assert single.status_code == 201
    wait_for(lambda: {k[3] for k in stored_term_counts(app)} >= {"不动产登记", "跑两趟", "一窗通办", "营业执照"},
             message="the worker counted both batches")
    wait_for(lambda: stored_term_counts(app) == raw_term_counts(app), message="counts equal the raw rows")


def hall_key(app, hall) -> str:
    from service.org import add_device
    from service.extensions import db
    from models import Department

    with app.app_context():
        _, key = add_device("api kiosk", db.session.get(Department, hall["depts"]["a"].id), "hall_terminal", "9", None)
        db.session.commit()
        return key


# --- the endpoint -----------------------------------------------------------------------

def get(client, token, **params):
    return client.get(HOTSPOTS, query_string=params, headers=bearer(token) if token else {})


def period(**extra):
    return {"from": PERIOD[0].isoformat(), "to": PERIOD[1].isoformat(), **extra}


def test_terms_with_bad_share_previous_period_and_rising(app, client, org, hall):
    prev = PERIOD[0] - timedelta(days=14)
    # 跑两趟: 2 in the previous fortnight, 6 now (4 bad) → rising; 营业执照: 6 before, 6 now → not
    store(app, hall["devices"]["a"], [spec(prev + timedelta(days=i), 5, "跑两趟") for i in range(2)]
          + [spec(prev + timedelta(days=i), 4, "营业执照") for i in range(6)]
          + [spec(PERIOD[0] + timedelta(days=i), 1 if i < 4 else 5, "跑两趟") for i in range(6)]
          + [spec(PERIOD[0] + timedelta(days=i), 5, "营业执照") for i in range(6)]
          + [spec(PERIOD[1] + timedelta(days=1), 1, "跑两趟")])  # the day after: outside
    resp = get(client, org.token(hall["users"]["manager"]), **period())
    assert resp.status_code == 200, resp.get_json()
    terms = {t["term"]: t for t in resp.get_json()["terms"]}
    assert terms["跑两趟"] == {"term": "跑两趟", "count": 6, "bad": 4, "share_bad": 4 / 6, "previous": 2,
                              "rising": True}
    assert terms["营业执照"]["count"] == 6 and terms["营业执照"]["previous"] == 6
    assert terms["营业执照"]["rising"] is False and terms["营业执照"]["share_bad"] == 0


def test_periods_across_months_add_months_and_days_exactly(app, client, org, hall):
    """A period of whole months and odd days at either end equals a recount of the raw rows."""
    from service.extensions import db
    from service.insights import counting

    days = [date(2026, 9, 20) + timedelta(days=i) for i in range(0, 80, 3)]
    for key in ("a", "b"):
        store(app, hall["devices"][key], [spec(d, 1 + i % 5, COMMENTS[i % 5], f"item-{key}" if i % 2 else None)
                                          for i, d in enumerate(days)])
    with app.app_context():
        assert counting.differences(db.session) == []
    token = org.token(hall["users"]["manager"])
    for d_from, d_to in ((date(2026, 9, 25), date(2026, 11, 28)), (date(2026, 10, 1), date(2026, 11, 30)),
                         (date(2026, 10, 5), date(2026, 10, 25))):
        raw = {}
        for (rated, _dept, _item, term), (n, b) in raw_term_counts(app).items():
            if d_from <= rated <= d_to:
                raw.setdefault(term, [0, 0])
                raw[term] = [raw[term][0] + n, raw[term][1] + b]
        got = get(client, token, **{"from": d_from.isoformat(), "to": d_to.isoformat()}).get_json()["terms"]
        assert {t["term"]: [t["count"], t["bad"]] for t in got} == raw


def test_rising_rule():
    from service.insights.hotspots import is_rising

    assert is_rising(5, 0) and is_rising(9, 6) and is_rising(15, 10)
    assert not is_rising(4, 0) and not is_rising(8, 6) and not is_rising(10, 10)


def test_binomial_tail_is_exact():
    from service.insights.hotspots import binomial_tail

    def reference(k, n, p):
        return sum(comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))

    for k, n, p in [(5, 20, 0.05), (1, 10, 0.3), (3, 10, 0.3), (10, 1000, 0.003), (50, 100, 0.5),
                    (12, 300, 0.03), (40, 40, 0.2), (0, 5, 0.2)]:
        assert binomial_tail(k, n, p) == pytest.approx(reference(k, n, p), rel=1e-9, abs=1e-300)
    assert binomial_tail(3, 2, 0.5) == 0.0


def plant_baselines(app, hall):
    """item-a: 2 % bad over the 8 weeks, then 10 of 40 bad (significant);
    item-b: 10 % bad over the 8 weeks, then 5 of 40 (not significant)."""
    base = [PERIOD[0] - timedelta(days=1 + i % 56) for i in range(200)]
    now = [PERIOD[0] + timedelta(days=i % 14) for i in range(40)]
    store(app, hall["devices"]["a"], [spec(d, 1 if i < 4 else 5, item="item-a") for i, d in enumerate(base)]
          + [spec(d, 1 if i < 10 else 5, item="item-a") for i, d in enumerate(now)], count=False)
    store(app, hall["devices"]["b"], [spec(d, 2 if i < 20 else 4, item="item-b") for i, d in enumerate(base)]
          + [spec(d, 2 if i < 5 else 4, item="item-b") for i, d in enumerate(now)], count=False)


def test_anomalies_on_planted_data(app, client, org, hall):
    from service.insights.hotspots import binomial_tail

    plant_baselines(app, hall)
    body = get(client, org.token(hall["users"]["manager"]), **period()).get_json()
    found = {(a["kind"], a["code"]): a for a in body["anomalies"]}
    assert set(found) == {("item", "item-a"), ("department", "bureau-a")}
    a = found[("item", "item-a")]
    assert (a["bad"], a["total"], a["bad_rate"], a["baseline_rate"]) == (10, 40, 0.25, 0.02)
    assert a["p_value"] == pytest.approx(binomial_tail(10, 40, 0.02)) and a["p_value"] < 1e-4
    assert a["name"] == "item-a" and found[("department", "bureau-a")]["name"] == "区不动产登记中心"
    # the item filter narrows the test to that item
    only_b = get(client, org.token(hall["users"]["manager"]), **period(item="item-b")).get_json()
    assert only_b["anomalies"] == []


def test_anomaly_counts_of_months_and_days_equal_the_raw_rows(app, hall):
    """The anomaly test's counts per department and item, read from the monthly grains less or
    plus odd days, equal a count of the raw rows for periods and baselines across months."""
    from models import Rating
    from service.extensions import db
    from service.insights.hotspots import BASELINE_DAYS, Scope, _rates

    days = [date(2026, 7, 28) + timedelta(days=i) for i in range(0, 130, 2)]
    for key in ("a", "b"):
        store(app, hall["devices"][key], [spec(d, 1 + i % 5, item=f"item-{key}" if i % 3 else None)
                                          for i, d in enumerate(days)], count=False)
    with app.app_context():
        rows = db.session.scalars(select(Rating)).all()
        for d_from, d_to in ((date(2026, 10, 3), date(2026, 11, 28)), (date(2026, 10, 1), date(2026, 11, 30)),
                             (date(2026, 10, 5), date(2026, 10, 25)), (date(2026, 9, 29), date(2026, 12, 1))):
            base_from = d_from - timedelta(days=BASELINE_DAYS)
            for item in (False, True):
                raw = {}
                for r in rows:
                    key = r.item_id if item else r.department_id
                    if key is None or not base_from <= r.rated_date <= d_to:
                        continue
                    c = raw.setdefault(key, [0, 0, 0, 0])
                    i = 0 if r.rated_date >= d_from else 2
                    c[i] += 1
                    c[i + 1] += int(r.level <= 2)
                extra = (lambda t: t.item_id != 0,) if item else ()
                got = {x.key: [x.total, x.bad, x.base_total, x.base_bad]
                       for x in _rates(db.session, Scope(d_from, d_to), None, item=item, extra=extra)}
                assert got == raw, (d_from, d_to, item)


def test_anomalies_need_minimum_counts(app, client, org, hall):
    # 3 of 3 bad against a clean baseline of 10: too few ratings either side to say anything
    store(app, hall["devices"]["a"], [spec(PERIOD[0] - timedelta(days=3), 5, item="item-a") for _ in range(10)]
          + [spec(PERIOD[0], 1, item="item-a") for _ in range(3)], count=False)
    body = get(client, org.token(hall["users"]["manager"]), **period()).get_json()
    assert body["anomalies"] == []


def test_scope_supervisor_subtree_handlers_forbidden(app, client, org, hall):
    plant_baselines(app, hall)
    store(app, hall["devices"]["a"], [spec(PERIOD[0], 1, "不动产登记跑两趟")])
    store(app, hall["devices"]["b"], [spec(PERIOD[0], 1, "营业执照材料不全")])
    sup_b = org.token(hall["users"]["sup-b"])
    body = get(client, sup_b, **period()).get_json()
    assert {t["term"] for t in body["terms"]} == {"营业执照", "材料不全"}
    assert body["anomalies"] == [] and body["department"] == "bureau-b"
    sup_a = get(client, org.token(hall["users"]["sup-a"]), **period()).get_json()
    assert {t["term"] for t in sup_a["terms"]} == {"不动产登记", "跑两趟"}
    assert {a["code"] for a in sup_a["anomalies"]} == {"item-a", "bureau-a"}
    assert get(client, sup_b, **period(department="bureau-a")).status_code == 404
    assert get(client, org.token(hall["users"]["h-a"]), **period()).status_code == 403
    assert get(client, None, **period()).status_code == 401
    manager = get(client, org.token(hall["users"]["manager"]), **period(department="bureau-b")).get_json()
    assert {t["term"] for t in manager["terms"]} == {"营业执照", "材料不全"}


@pytest.mark.parametrize("params, field", [
    ({"to": "2026-11-14"}, "from"),
    ({"from": "2026-11-01"}, "to"),
    ({"from": "2026-13-01", "to": "2026-11-14"}, "from"),
    ({"from": "2026-11-15", "to": "2026-11-14"}, "to"),
    ({"from": "2020-01-01", "to": "2026-11-14"}, "to"),
    ({"from": "2026-11-01", "to": "2026-11-14", "item": "no-such-item"}, "item"),
    ({"from": "2026-11-01", "to": "2026-11-14", "department": "x" * 65}, "department"),
])
def test_bad_inputs_are_4xx_naming_the_field(app, client, org, hall, params, field):
    resp = get(client, org.token(hall["users"]["manager"]), **params)
    assert 400 <= resp.status_code < 500
    assert field in str(resp.get_json()["errors"])


# --- the page 热点分析 --------------------------------------------------------------------

def test_page_needs_a_viewer(app, client, org, hall):
    from tests.web_support import login

    resp = client.get("/insights")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    login(client, "h-a")
    assert client.get("/insights").status_code == 403
    other = app.test_client()
    login(other, "sup-a")
    page = other.get("/insights").get_data(as_text=True)
    assert "热点分析" in page and "vendor/echarts/echarts.min.js" in page and "insights.js" in page
    assert "bureau-b" not in page  # the picker lists only the supervisor's subtree


def plant_today(app, hall) -> date:
    """Around today's local date: item-a's bad rate jumps; comments name the hot words."""
    from models.clock import local_date
    from models.types import utcnow

    today = local_date(utcnow())
    base = [today - timedelta(days=1 + i % 56) for i in range(200)]
    store(app, hall["devices"]["a"], [spec(d, 1 if i < 4 else 5, item="item-a") for i, d in enumerate(base)]
          + [spec(today, 1 if i < 10 else 5, "不动产登记跑两趟" if i < 10 else "一窗通办", item="item-a")
             for i in range(40)])
    return today


@pytest.mark.browser
@pytest.mark.parametrize("size", [(1366, 768), (390, 844)])
def test_page_shows_terms_and_anomalies_linking_to_cases(app, org, hall, live_server, browser, size):
    from urllib.parse import parse_qs, urlsplit

    from tests.web_support import shot, sign_in

    today = plant_today(app, hall)
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="zh-CN")
    ctx.set_default_timeout(20000)
    try:
        page = ctx.new_page()
        sign_in(page, live_server, "mgr")
        page.goto(live_server.url + "/insights")
        page.wait_for_selector("body[data-loaded=yes]")
        page.wait_for_function("window.hcpCharts.terms.getOption().series[0].data.length > 0")
        shot(page, f"insights-{size[0]}.png")
        terms = page.locator("#term-rows a").all()
        hrefs = {a.inner_text(): a.get_attribute("href") for a in terms}
        args = parse_qs(urlsplit(hrefs["跑两趟"]).query)
        assert args["q"] == ["跑两趟"] and args["rated_from"] == [today.replace(day=1).isoformat()]
        assert args["rated_to"] == [today.isoformat()] and args["department"] == ["district"]
        anomaly = page.locator("#anomaly-rows a", has_text="item-a")
        assert parse_qs(urlsplit(anomaly.get_attribute("href")).query)["item"] == ["item-a"]
        assert page.locator("#anomaly-rows a", has_text="区不动产登记中心").count() == 1
        # nothing wider than the window
        assert page.evaluate("document.documentElement.scrollWidth") <= size[0]
        anomaly.click()
        page.wait_for_url("**/cases?**")
    finally:
        ctx.close()
