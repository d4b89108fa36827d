"""我的工单 through its forms: search, the filters, dates, hours left today, batch actions,
and 延期 requested and approved on the case page (SPEC §9)."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from models import Case, User
from models.clock import SHANGHAI
from tests.web_support import build_team, csrf_token, login, make_case, post_form


@pytest.fixture
def team(org):
    return build_team(org)


@pytest.fixture
def frozen(clock):
    """The application's clock held at a Wednesday 14:00 in Shanghai (a working day)."""
    moment = datetime(2026, 12, 2, 14, 0, tzinfo=SHANGHAI)
    clock.set(moment)
    return moment


def shown(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'href="/cases/(\d+)"', html)]


def listed(client, **args) -> list[int]:
    resp = client.get("/cases", query_string=args)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return shown(resp.get_data(as_text=True))


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI)


# ---------------------------------------------------------------- search and filters

def test_search_by_case_id_project_no_phone_and_comment_word(app, client, team):
    by_no = make_case(app, team.device, rating={"project_no": "BJ2026-000123", "comment": "材料清单不一致"})
    by_phone = make_case(app, team.device, rating={"rater": {"real_name": True, "name": "王女士",
                                                             "phone": "13900001111"}, "comment": "态度冷淡"})
    other = make_case(app, team.device, rating={"comment": "取号机坏了"})
    login(client, "super")
    assert listed(client, q="BJ2026-000123") == [by_no]
    assert listed(client, q="BJ2026") == []  # 办件编号 is matched exactly
    assert listed(client, q="13900001111") == [by_phone]
    assert listed(client, q="1390000") == []  # the phone too: whole numbers only
    assert listed(client, q="取号机") == [other]
    assert listed(client, q=str(by_phone)) == [by_phone]
    page = client.get("/cases", query_string={"q": "取号机"}).get_data(as_text=True)
    assert 'name="q" value="取号机"' in page  # the box keeps what was searched


def test_filters_by_rated_dates_channel_item_and_overdue(app, client, team, org, frozen):
    item = org.item("license-new", team.section)
    today = frozen.date()
    old = make_case(app, team.device, rating={"rated_at": at(today - timedelta(days=40))})
    recent = make_case(app, team.device, rating={"rated_at": at(today - timedelta(days=1)), "item_code": item.code},
                       callback_due=today - timedelta(days=3), close_due=today - timedelta(days=1))
    login(client, "super")
    assert listed(client, rated_from=(today - timedelta(days=7)).isoformat()) == [recent]
    assert listed(client, rated_to=(today - timedelta(days=30)).isoformat()) == [old]
    assert listed(client, item=item.code) == [recent]
    assert set(listed(client, channel="hall_tablet")) == {old, recent}
    assert listed(client, channel="pc") == []
    assert listed(client, overdue="true") == [recent]
    page = client.get("/cases").get_data(as_text=True)
    # the rating's date and time are in the list
    assert (today - timedelta(days=40)).isoformat() + " 10:00" in page
    assert '<option value="license-new"' in page  # the item filter offers the items in scope


def test_a_bad_filter_is_said_in_chinese_not_a_500(client, team):
    login(client, "super")
    resp = client.get("/cases", query_string={"rated_from": "2026-13-45", "channel": "fax"})
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert "筛选条件有误" in page and "评价日期" in page and "渠道" in page


def test_deadline_due_today_shows_hours_left(app, client, team, frozen):
    make_case(app, team.device, callback_due=frozen.date(), close_due=frozen.date() + timedelta(days=21))
    login(client, "handler")
    page = client.get("/cases").get_data(as_text=True)
    assert "今日到期，剩余10小时" in page


# ---------------------------------------------------------------- batch actions

def batch(client, ids, action, **fields):
    page = client.get("/cases").get_data(as_text=True)
    assert 'id="batch"' in page
    return client.post("/cases/batch", data={"csrf_token": csrf_token(page), "ids": [str(i) for i in ids],
                                             "action": action, **fields}, follow_redirects=True)


def test_supervisor_assigns_several_cases_at_once(app, client, team, query):
    first = make_case(app, team.device, assignee=None)
    second = make_case(app, team.device, assignee=None)
    closed = make_case(app, team.device, status="closed", outcome="rectified")
    login(client, "super")
    resp = batch(client, [first, second, closed], "assign", assignee="handler2")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "2 件已完成" in page and f"#{closed}" in page and "已办结" in page
    handler2 = query(lambda s: s.scalar(select(User.id).where(User.username == "handler2")))
    rows = query(lambda s: {c.id: (c.status, c.assignee_id) for c in s.scalars(select(Case))})
    assert rows[first] == rows[second] == ("assigned", handler2)
    assert rows[closed][0] == "closed"


def test_handlers_get_no_batch_form_and_cannot_post_one(app, client, team, query):
    case_id = make_case(app, team.device)
    login(client, "handler")
    page = client.get("/cases").get_data(as_text=True)
    assert 'id="batch"' not in page
    resp = client.post("/cases/batch", data={"csrf_token": csrf_token(page), "ids": [str(case_id)],
                                             "action": "approve"})
    assert resp.status_code == 403
    assert query(lambda s: s.get(Case, case_id).status) == "assigned"


def test_batch_needs_csrf(app, client, team, query):
    case_id = make_case(app, team.device, assignee=None)
    login(client, "super")
    resp = client.post("/cases/batch", data={"ids": [str(case_id)], "action": "assign", "assignee": "handler"})
    assert resp.status_code == 400
    assert query(lambda s: s.get(Case, case_id).status) == "unassigned"


# ---------------------------------------------------------------- 延期

def test_extension_requested_by_the_handler_and_approved_by_a_supervisor(app, client, team, query):
    case_id = make_case(app, team.device, status="rectifying")
    before = query(lambda s: s.get(Case, case_id).close_due)
    login(client, "handler")
    resp = post_form(client, case_id, "request_extension", {"working_days": "5", "reason": "需要协调市级部门"})
    assert resp.status_code == 302
    assert query(lambda s: s.get(Case, case_id).status) == "extension_review"

    login(client, "super")
    queue = client.get("/queue").get_data(as_text=True)
    assert case_id in shown(queue)
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "需要协调市级部门" in page
    resp = post_form(client, case_id, "approve")
    assert resp.status_code == 302
    case = query(lambda s: s.get(Case, case_id))
    assert case.status == "rectifying" and case.close_due > before
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert case.close_due.isoformat() in page
