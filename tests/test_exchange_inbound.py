"""Inbound records (SPEC §8): the platform's bad online ratings and 12345 callbacks become
ratings, idempotent on the source's record id, answered per record; their cases' results
go back to the source through the outbox."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import Case, InboundSource, OutboxRecord, Rating, User
from service.cases import workflow
from service.cases.routing import route
from tests.support import bearer
from tests.test_exchange_push import run_push

MEASURES = {"cause": "热线工单转办不及时", "action": "建立工单当日转办机制"}


@pytest.fixture
def district(org):
    dept = org.department("district", "示范区政务服务中心")
    org.item("license", dept)
    org.user("h", "handler", dept)
    return dept


def add_client(org, dept, kind, name, callback_url=None) -> str:
    from service.clients.registry import add_client as add
    from service.extensions import db

    return org._build(lambda: add(name, kind, db.session.merge(dept), callback_url))[1]


def inbound(client, key, records):
    return client.post("/api/v1/exchange/inbound", json={"records": records}, headers=bearer(key))


def ticket(no: str, satisfaction=0, **extra) -> dict:
    record = {"ticket_no": no, "satisfaction": satisfaction, "called_at": "2026-11-20T10:00:00+08:00",
              "comment": "窗口办理太慢", "caller": {"name": "陈大文", "phone": "13812345678"}}
    record.update(extra)
    return record


def test_12345_records_become_hotline_ratings_at_levels_2_to_5(client, org, district, query):
    key = add_client(org, district, "hotline", "12345热线")
    answer = inbound(client, key, [ticket(f"T-{s}", s) for s in range(4)])
    assert answer.status_code == 200
    results = answer.get_json()["results"]
    assert [(r["id"], r["status"]) for r in results] == [(f"T-{s}", "created") for s in range(4)]
    rows = query(lambda s: s.scalars(select(Rating).order_by(Rating.project_no)).all())
    assert [(r.project_no, r.level, r.channel, r.real_name) for r in rows] == [
        ("T-0", 2, "hotline", True), ("T-1", 3, "hotline", True), ("T-2", 4, "hotline", True),
        ("T-3", 5, "hotline", True)]
    assert rows[0].rater_phone_masked != "13812345678" and rows[0].rater_phone_enc
    assert {r.department_id for r in rows} == {district.id}
    # Hotline ratings are reported upward like any other.
    assert query(lambda s: s.scalar(select(func.count(OutboxRecord.id)))) == 4


def test_a_replay_is_duplicate_and_a_changed_record_a_conflict(client, org, district, query):
    key = add_client(org, district, "hotline", "12345热线")
    first = inbound(client, key, [ticket("T-1")]).get_json()["results"][0]
    again = inbound(client, key, [ticket("T-1"), ticket("T-1", satisfaction=3)]).get_json()["results"]
    assert [r["status"] for r in again] == ["duplicate", "conflict"]
    assert again[0]["rating_id"] == first["rating_id"] and again[1].get("rating_id") is None
    assert query(lambda s: s.scalar(select(func.count(Rating.id)))) == 1
    assert query(lambda s: s.scalar(select(func.count(InboundSource.rating_id)))) == 1


def test_each_bad_record_is_invalid_by_its_own_field_names_and_the_rest_stored(client, org, district, query):
    key = add_client(org, district, "hotline", "12345热线")
    results = inbound(client, key, [
        ticket("T-1", satisfaction=4), ticket("T-2", called_at="2026-11-20 10:00"), {"satisfaction": 1},
        ticket("T-3", item_code="nope"), ticket("T-4", caller={"phone": "call me"}), ticket("T-5", 1),
    ]).get_json()["results"]
    assert [r["status"] for r in results] == ["invalid"] * 5 + ["created"]
    assert "satisfaction" in results[0]["errors"] and "called_at" in results[1]["errors"]
    assert "ticket_no" in results[2]["errors"] and "item_code" in results[3]["errors"]
    assert "caller" in results[4]["errors"]
    assert query(lambda s: s.scalar(select(func.count(Rating.id)))) == 1
    whole = inbound(client, key, ["junk"])
    assert whole.status_code == 422 and "records" in whole.get_json()["errors"]["json"]


def test_keys_other_than_upstream_and_hotline_clients_are_refused(client, org, district):
    approval = add_client(org, district, "approval", "审批系统")
    assert inbound(client, approval, [ticket("T-1")]).status_code == 403
    _, device_key = org.device(district)
    assert inbound(client, device_key, [ticket("T-1")]).status_code == 401
    assert inbound(client, "hcpc_nothing", [ticket("T-1")]).status_code == 401


def _zhejiang(app):
    from tests.test_exchange_push import settings_as
    return settings_as(app, exchange_profile="zhejiang")


def test_upstream_records_in_the_exchange_profile_are_pc_or_mobile_ratings_not_reported_back(
        app, client, org, district, query):
    key = add_client(org, district, "upstream", "浙江政务服务网")
    data = {"projectNo": "330106-1", "taskCode": "license", "pf": "2", "satisfaction": "1",
            "assessNumber": "1", "assessTime": "2026-11-20 09:30:00", "evalDetail": ["1102"],
            "writingEvaluation": "审批时间长"}
    with _zhejiang(app):
        results = inbound(client, key, [{"id": "ZJ-1", "data": data},
                                        {"id": "ZJ-2", "data": {**data, "pf": "5"}},
                                        {"id": "ZJ-3", "data": {**data, "satisfaction": "6"}},
                                        {"id": "ZJ-4"}]).get_json()["results"]
    assert [r["status"] for r in results] == ["created", "invalid", "invalid", "invalid"]
    assert "pf" in results[1]["errors"] and "satisfaction" in results[2]["errors"] and "data" in results[3]["errors"]
    rating = query(lambda s: s.scalar(select(Rating)))
    assert (rating.channel, rating.level, rating.reasons, rating.project_no) == ("mobile", 1, ["on_eff_slow"],
                                                                                  "330106-1")
    assert query(lambda s: s.scalar(select(func.count(OutboxRecord.id)))) == 0  # the platform has it already


def _close(app, rating_id):
    from service.extensions import db

    with app.app_context():
        case_id = route(db.session, rating_id)
        db.session.commit()
        h = db.session.scalar(select(User).where(User.username == "h"))
        for action, data in (("verify", {"contacted": True}), ("rectify", {"measures": MEASURES}),
                             ("feedback", {"contacted": True, "satisfied": False})):
            workflow.apply(db.session, db.session.get(Case, case_id), h, action, data)
            db.session.commit()
    return case_id


def test_a_closed_hotline_case_goes_back_to_the_hotlines_callback_url_with_its_ticket(app, client, org, district,
                                                                                    platform, query):
    key = add_client(org, district, "hotline", "12345热线", callback_url=platform.callback_url("12345"))
    [result] = inbound(client, key, [ticket("T-77")]).get_json()["results"]
    case_id = _close(app, result["rating_id"])
    done = run_push(app)
    assert done.sent == 3  # the rating and the case upstream, the case to the hotline
    [back] = platform.records("/callback/12345")
    hotline_id = query(lambda s: s.scalar(select(InboundSource.client_id)))
    closed_version = query(lambda s: s.get(Case, case_id).version) - 1  # the version the closing started from
    assert back["type"] == "case" and back["id"] == f"case-{case_id}-{closed_version}-c{hotline_id}"
    assert back["data"] == {"ticket_no": "T-77", "outcome": "rectified", "cause": MEASURES["cause"],
                            "action": MEASURES["action"], "contacted": True, "satisfied": False,
                            "closed_at": back["data"]["closed_at"]}
    assert back["data"]["closed_at"].endswith("+08:00")
    upstream = [r for r in platform.records("/exchange") if r["type"] == "case"]
    assert len(upstream) == 1 and upstream[0]["data"]["评价编号"] == "T-77"
    # The token for the platform is not given to another system's URL.
    assert platform.auth.count(None) == 1


def test_a_closed_upstream_case_goes_to_the_platform_once_with_the_sources_id(app, client, org, district,
                                                                             platform, query):
    key = add_client(org, district, "upstream", "省平台")
    data = {"办件编号": "P-1", "评价渠道": "1", "评价时间": "20261120T093000", "满意度代码": "5",
            "评价次数": "1", "文字评价": "网上系统卡顿"}
    [result] = inbound(client, key, [{"id": "GB-9", "data": data}]).get_json()["results"]
    assert result["status"] == "created"
    _close(app, result["rating_id"])
    assert run_push(app).sent == 1
    [record] = platform.records()
    assert record["type"] == "case" and record["data"]["评价编号"] == "GB-9" and record["data"]["整改结果"] == "1"


def test_12345_figures_come_from_the_hotline_channel(client, org, district):
    from service.auth.access import issue_token  # noqa: F401 — org.token uses it
    key = add_client(org, district, "hotline", "12345热线")
    inbound(client, key, [ticket("T-1", 0), ticket("T-2", 2), ticket("T-3", 3), ticket("T-4", 1)])
    manager = org.user("m", "manager", district)
    summary = client.get("/api/v1/stats/summary?from=2026-11-01&to=2026-11-30&channel=hotline",
                         headers=bearer(org.token(manager))).get_json()
    assert (summary["total"], summary["bad"], summary["good"]) == (4, 1, 3)
    assert summary["good_rate"] == 0.75
