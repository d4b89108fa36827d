"""Red and yellow cards agree everywhere (SPEC §9): the API's ``warning``, the list filters,
the web badges, the dashboard KPIs and the metrics, on each side of each threshold.

The application's clock is frozen at chosen moments (Asia/Shanghai) instead of waiting:
cases received Tuesday 2026-12-01 10:00 have their callback due 12-02 and their closure
due 12-22 (15 working days); the closure deadline turns yellow 3 working days before it.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from models import Case
from tests.support import bearer
from tests.web_support import add_staff, login, make_case

SH = timezone(timedelta(hours=8))
RECEIVED = datetime(2026, 12, 1, 10, 0, tzinfo=SH)
# A list row: its card class and case id (a supervisor's rows start with the batch checkbox).
ROW_RE = re.compile(r'<tr class="(row-\w+)?">\s*(?:<td[^>]*><input[^>]*></td>\s*)?<td[^>]*><a href="/cases/(\d+)"')


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.fixture
def desk(app, org, clock):
    """A section with a handler, a supervisor and a manager; three cases received at RECEIVED:
    ``callback`` (real-name, waiting for the callback), ``anonymous`` (no callback deadline)
    and ``closing`` (verified: the closure deadline counts)."""
    dept = org.department("section", "登记注册科")
    add_staff(app, [("handler", "handler", dept, "张三"), ("super", "supervisor", dept, "李科长"),
                    ("manager", "manager", dept, "王局长")])
    device, _ = org.device(dept, channel="hall_tablet")
    clock.set(RECEIVED + timedelta(minutes=5))
    cases = {"callback": make_case(app, device),
             "anonymous": make_case(app, device, real_name=False),
             "closing": make_case(app, device, status="rectifying")}
    return cases, org.user("viewer", "manager", dept)


# (moment, {case: expected card}) on each side of each threshold
MOMENTS = [
    ("2026-12-01T23:59:59", {"callback": None, "anonymous": None, "closing": None}),
    ("2026-12-02T00:00:00", {"callback": "yellow", "anonymous": None, "closing": None}),  # callback's due day
    ("2026-12-02T23:59:59", {"callback": "yellow"}),
    ("2026-12-03T00:00:00", {"callback": "red"}),                                         # callback passed
    ("2026-12-16T23:59:59", {"anonymous": None, "closing": None}),                        # 4 working days left
    ("2026-12-17T00:00:00", {"callback": "red", "anonymous": "yellow", "closing": "yellow"}),  # 3 left
    ("2026-12-22T23:59:59", {"anonymous": "yellow", "closing": "yellow"}),                # the closure's day
    ("2026-12-23T00:00:00", {"callback": "red", "anonymous": "red", "closing": "red"}),   # passed
]


@pytest.mark.parametrize("moment,expected", MOMENTS, ids=[m for m, _ in MOMENTS])
def test_api_filters_badges_and_kpis_agree(app, client, org, desk, clock, moment, expected):
    cases, viewer = desk
    clock.set(at(moment))
    by_id = {cid: name for name, cid in cases.items()}
    headers = bearer(org.token(viewer))  # issued now, by the moved clock

    api = {name: client.get(f"/api/v1/cases/{cid}", headers=headers).get_json()["warning"]
           for name, cid in cases.items()}
    listed = {c["id"]: c["warning"] for c in client.get("/api/v1/cases", headers=headers).get_json()["items"]}
    filtered = {level: {by_id[c["id"]] for c in client.get(f"/api/v1/cases?warning={level}",
                                                            headers=headers).get_json()["items"]}
                for level in ("yellow", "red")}
    overdue = {by_id[c["id"]] for c in client.get("/api/v1/cases?overdue=true", headers=headers).get_json()["items"]}
    summary = client.get("/api/v1/stats/summary?from=2026-12-01&to=2026-12-01", headers=headers).get_json()

    login(client, "super")
    page = client.get("/cases?status=open").get_data(as_text=True)
    badges = {by_id[int(cid)]: (cls or "").removeprefix("row-") or None for cls, cid in ROW_RE.findall(page)}
    web_red = {by_id[int(cid)] for _, cid in ROW_RE.findall(client.get("/cases?warning=red").get_data(as_text=True))}

    for name, card in expected.items():
        assert api[name] == card, (name, "API detail")
        assert listed[cases[name]] == card, (name, "API list")
        assert badges[name] == card, (name, "web badge")
        assert (name in filtered["yellow"], name in filtered["red"]) == (card == "yellow", card == "red"), name
        assert (name in filtered["red"]) == (name in web_red), name
        # overdue: past the closure deadline (超期), what the KPI overdue_open counts
        assert (name in overdue) == (moment >= "2026-12-23"), name
    # the KPIs count the same cards as the filters
    assert summary["yellow"] == len(filtered["yellow"]) and summary["red"] == len(filtered["red"])
    assert summary["overdue_open"] == len(overdue)
    assert set(api.values()) - {None} <= {"yellow", "red"}


def test_a_new_case_carries_no_card_and_the_sweep_sends_none(app, desk, clock, query):
    """Yellow must carry a signal: nothing on the day a rating arrives (issue 12)."""
    from service.cases import warnings

    clock.set(RECEIVED + timedelta(hours=1))
    assert query(lambda s: warnings.sweep(s)) == []


def test_the_sweep_notifies_what_the_filters_show(app, desk, clock, query):
    from service.cases import warnings

    cases, _ = desk
    clock.set(at("2026-12-17T09:00:00"))

    def sweep(session):
        issued = [(i.case_id, i.stage) for i in warnings.sweep(session)]
        session.commit()
        return issued
    issued = query(sweep)
    assert sorted(issued) == sorted([(cases["callback"], "red"), (cases["callback"], "escalated"),
                                     (cases["anonymous"], "yellow"), (cases["closing"], "yellow")])
    assert query(sweep) == []  # once per case and card
    assert query(lambda s: s.get(Case, cases["anonymous"]).callback_due) is None
