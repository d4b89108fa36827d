"""Daily case work through the API (SPEC §9): search, filters, batch actions, 延期, the
anonymous path and typed refusals. The office is test_cases_api's: district → bureau →
{section, empty} and a sibling bureau ``civil``; h handles ``section``."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from models import Case, Rating
from tests.support import bearer
from tests.test_cases_api import MEASURES, Office

SH = timezone(timedelta(hours=8))


@pytest.fixture
def office(org, client, query):
    return Office(org, client, query)


def ids(office, who="m", **params) -> list[int]:
    return sorted(c["id"] for c in office.list(who, **params)["items"])


# --- search ------------------------------------------------------------------------------

def test_search_by_case_id_project_no_phone_and_comment_word(office):
    a = office.case(project_no="BJ2026-000123", comment="窗口人员态度冷淡",
                    rater={"real_name": True, "name": "陈大文", "phone": "13812345678"})
    b = office.case(project_no="BJ2026-000124", comment="排队太久，叫号系统故障",
                    rater={"real_name": True, "name": "王小二", "phone": "13900001111"})
    c = office.case("civil", rater=None, comment="材料要求反复变更")
    assert ids(office, q=str(b)) == [b]
    assert ids(office, q="BJ2026-000123") == [a]
    assert ids(office, q="BJ2026-0001") == []  # 办件编号 is exact, not a prefix
    assert ids(office, q="13812345678") == [a]
    assert ids(office, q="138-1234-5678") == [a]  # the same number, written with dashes
    assert ids(office, q="1381234") == []  # a full phone number only
    assert ids(office, q="叫号") == [b]
    assert ids(office, q="材料") == [c]
    assert ids(office, q="100%_") == []  # LIKE wildcards are taken literally
    # search stays within the caller's scope
    assert ids(office, "x", q="13812345678") == [] and ids(office, "x", q="材料") == [c]
    assert ids(office, "h", q="BJ2026-000124", status="assigned") == [b]


def test_phone_search_reads_the_blind_index_not_the_ciphertext(office, query):
    a = office.case(rater={"real_name": True, "name": "陈大文", "phone": "13812345678"})
    index, cipher = query(lambda s: s.execute(select(Rating.rater_phone_index, Rating.rater_phone_enc)
                                              .join(Case, Case.rating_id == Rating.id).where(Case.id == a)).one())
    assert index and len(index) == 64 and "13812345678" not in index and cipher
    query(lambda s: (s.execute(update(Rating).values(rater_phone_enc=None)), s.commit()))
    assert ids(office, q="13812345678") == [a]  # found with no ciphertext left to decrypt


def test_filters_rated_period_item_channel_and_overdue(office, org, query):
    org.item("license", office.depts["section"])
    early = office.case(rated_at="2026-11-02T09:00:00+08:00")
    late = office.case(rated_at="2026-11-20T23:30:00+08:00", item_code="license")  # 11-20 in Shanghai
    assert ids(office, rated_from="2026-11-01", rated_to="2026-11-19") == [early]
    assert ids(office, rated_from="2026-11-20") == [late]
    assert ids(office, item="license") == [late]
    assert ids(office, channel="hall_terminal") == sorted([early, late])
    assert ids(office, channel="sms") == []
    query(lambda s: (s.execute(update(Case).where(Case.id == late).values(callback_due=date(2026, 1, 5))),
                     s.execute(update(Case).where(Case.id == early)
                               .values(callback_due=date(2026, 1, 5), close_due=date(2026, 1, 26))), s.commit()))
    assert ids(office, warning="red") == sorted([early, late])  # past the next deadline
    assert ids(office, overdue="true") == [early]  # past the closure deadline (超期)


@pytest.mark.parametrize("params,field", [
    ({"item": "nope"}, "item"), ({"channel": "fax"}, "channel"), ({"warning": "green"}, "warning"),
    ({"rated_from": "2026-12-02", "rated_to": "2026-12-01"}, "rated_from"), ({"rated_from": "yesterday"}, "rated_from"),
    ({"q": ""}, "q"),
])
def test_bad_filters_are_422_naming_the_field(office, params, field):
    resp = office.client.get("/api/v1/cases", query_string=params, headers=bearer(office.tokens["m"]))
    assert resp.status_code == 422 and field in str(resp.get_json()["errors"])


# --- batch actions ------------------------------------------------------------------------

def batch(office, who, **body):
    resp = office.client.post("/api/v1/cases/actions", json=body, headers=bearer(office.tokens[who]))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["results"]


def test_batch_assign_takes_each_case_on_its_own(office):
    a, b, civil = office.case("empty"), office.case("empty"), office.case("civil")
    closed = office.case()
    office.ok("h", closed, "claim_invalid", reason="误评")
    office.ok("s", closed, "approve")
    results = batch(office, "s", ids=[a, civil, b, closed, 99999999], action="assign", assignee="h2")
    assert [(r["id"], r["status"], r.get("code")) for r in results] == [
        (a, "ok", None), (civil, "error", "not_found"), (b, "ok", None), (closed, "error", "state"),
        (99999999, "error", "not_found")]
    assert all(r.get("message") for r in results if r["status"] == "error")
    assert office.get("s", a).get_json()["assignee"] == "h2" and office.get("s", b).get_json()["status"] == "assigned"
    assert batch(office, "h", ids=[office.case()], action="assign", assignee="h2")[0]["code"] == "role"


def test_batch_approve_keeps_four_eyes(office):
    mine, theirs = office.case(), office.case()
    office.ok("s", mine, "claim_invalid", reason="误评")
    office.ok("h", theirs, "claim_invalid", reason="误评")
    results = batch(office, "s", ids=[mine, theirs], action="approve")
    assert [(r["status"], r.get("code")) for r in results] == [("error", "four_eyes"), ("ok", None)]
    assert office.get("s", theirs).get_json()["status"] == "closed"
    assert [r["status"] for r in batch(office, "s2", ids=[mine], action="reject")] == ["ok"]


def test_batch_body_is_checked(office):
    for body, field in (({"ids": [], "action": "assign"}, "ids"), ({"ids": [1], "action": "verify"}, "action"),
                        ({"ids": ["1"], "action": "approve"}, "ids"),
                        ({"ids": [2**63], "action": "assign"}, "ids"), ({"ids": [0], "action": "assign"}, "ids")):
        resp = office.client.post("/api/v1/cases/actions", json=body, headers=bearer(office.tokens["s"]))
        assert resp.status_code == 422 and field in str(resp.get_json()["errors"])


# --- manager assigns within scope -------------------------------------------------------------

def test_a_manager_assigns_within_their_scope(office):
    cid = office.case("empty")
    assert "assign" in office.get("m", cid).get_json()["actions"]
    assert office.ok("m", cid, "assign", assignee="h2")["assignee"] == "h2"
    resp = office.act("m", cid, "assign", assignee="xh")  # a handler of civil cannot see this case
    assert resp.status_code == 422 and resp.get_json()["reason"] == "field"


# --- 延期 ------------------------------------------------------------------------------------

def test_extension_flow_moves_the_deadline_and_counts_on_time_against_it(office, query):
    cid = office.case()
    office.ok("h", cid, "verify", contacted=True)
    due = date.fromisoformat(office.get("h", cid).get_json()["close_due"])
    body = office.ok("h", cid, "request_extension", working_days=5, reason="需与区住建局会商")
    assert (body["status"], body["extension_days"]) == ("extension_review", 5)
    assert office.act("h", cid, "approve").get_json()["reason"] == "role"
    queue = office.list("s", status="extension_review")["items"]
    assert [c["id"] for c in queue] == [cid]
    approved = office.ok("s", cid, "approve")
    moved = date.fromisoformat(approved["close_due"])
    assert approved["status"] == "rectifying" and approved["extended_at"] and moved > due
    assert [e["action"] for e in approved["history"]][-2:] == ["request_extension", "approve"]
    again = office.act("h", cid, "request_extension", working_days=1, reason="再延")
    assert again.status_code == 409 and again.get_json()["reason"] == "state"
    # closed after the first deadline, before the extended one: on time
    office.ok("h", cid, "rectify", measures=MEASURES)
    office.ok("h", cid, "feedback", contacted=True, satisfied=True)
    closed_at = datetime.combine(due + timedelta(days=1), datetime.min.time(), SH).replace(hour=10)
    query(lambda s: (s.execute(update(Case).where(Case.id == cid).values(closed_at=closed_at)), s.commit()))
    summary = office.client.get("/api/v1/stats/summary?from=2026-11-01&to=2026-11-30",
                                headers=bearer(office.tokens["m"])).get_json()
    assert (summary["extended"], summary["closed_on_time"], summary["on_time_rate"]) == (1, 1, 1.0)


def test_rejected_extension_returns_to_rectifying(office):
    cid = office.case()
    office.ok("h", cid, "verify", contacted=True)
    before = office.get("h", cid).get_json()["close_due"]
    office.ok("h", cid, "request_extension", working_days=3, reason="材料未齐")
    rejected = office.ok("s", cid, "reject")
    assert (rejected["status"], rejected["close_due"], rejected["extension_days"]) == ("rectifying", before, None)


@pytest.mark.parametrize("body,field", [({"working_days": 0, "reason": "x"}, "working_days"),
                                        ({"working_days": 16, "reason": "x"}, "working_days"),
                                        ({"working_days": 3}, "reason")])
def test_extension_needs_1_to_15_working_days_and_a_reason(office, body, field):
    cid = office.case()
    office.ok("h", cid, "verify", contacted=True)
    resp = office.act("h", cid, "request_extension", **body)
    assert resp.status_code == 422 and field in str(resp.get_json()["errors"])


# --- anonymous ratings --------------------------------------------------------------------

def test_anonymous_case_has_no_callback_and_is_verified_without_contacted(office):
    cid = office.case(rater=None)
    data = office.get("h", cid).get_json()
    assert data["callback_due"] is None and data["anonymous"] is True
    assert office.ok("h", cid, "verify")["status"] == "rectifying"
    real = office.case()
    resp = office.act("h", real, "verify")
    assert resp.status_code == 422 and resp.get_json()["reason"] == "field"


def test_refusals_carry_their_reason(office):
    cid = office.case()
    assert office.act("x", cid, "verify", contacted=True).status_code == 404
    resp = office.act("h2", cid, "verify", contacted=True)  # a handler, not this case's assignee
    assert (resp.status_code, resp.get_json()["reason"]) == (403, "not_assignee")
    resp = office.act("m", cid, "verify", contacted=True)
    assert (resp.status_code, resp.get_json()["reason"]) == (403, "role")
    resp = office.act("h", cid, "approve")
    assert (resp.status_code, resp.get_json()["reason"]) == (409, "state")
    resp = office.act("h", cid, "verify", contacted=True, version=7)
    assert (resp.status_code, resp.get_json()["reason"]) == (409, "stale")
    resp = office.client.post(f"/api/v1/cases/{office.case(rater=None)}/reveal", headers=bearer(office.tokens["h"]))
    assert (resp.status_code, resp.get_json()["reason"]) == (409, "anonymous")


def test_openapi_documents_search_batch_and_extension(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    params = {p["name"] for p in doc["paths"]["/api/v1/cases"]["get"]["parameters"]}
    assert {"q", "rated_from", "rated_to", "item", "channel", "warning", "overdue"} <= params
    assert "post" in doc["paths"]["/api/v1/cases/actions"]
    assert "working_days" in str(doc["components"]["schemas"])
