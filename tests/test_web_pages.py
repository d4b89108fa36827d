"""Staff pages with the Flask test client: login, scope, CSRF, action forms, reveal, queue."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from models import Case, CaseEvent
from service.cases.warnings import Cards
from tests.web_support import PHONE, build_team, csrf_token, login, make_case, post_form


@pytest.fixture
def team(org):
    return build_team(org)


def case_row(query, case_id):
    return query(lambda s: s.get(Case, case_id))


def events(query, case_id):
    return query(lambda s: [e.action for e in s.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id))])


# ---------------------------------------------------------------- login and redirects

@pytest.mark.parametrize("path", ["/cases", "/cases/1", "/queue"])
def test_pages_need_login(client, team, path):
    resp = client.get(path)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login?next=")


def test_root_goes_to_login_then_to_worklist(client, team):
    assert client.get("/").headers["Location"] == "/login"
    resp = login(client, "handler")
    assert resp.headers["Location"] == "/"
    assert client.get("/").headers["Location"] == "/cases"


def test_logout_button_signs_out(client, team):
    login(client, "handler")
    page = client.get("/cases").get_data(as_text=True)
    assert "退出登录" in page
    resp = client.post("/logout", data={"csrf_token": csrf_token(page)})
    assert resp.status_code == 302
    assert client.get("/cases").status_code == 302


# ---------------------------------------------------------------- CSRF on every form

FORM_POSTS = [
    ("assign", {"assignee": "handler2"}), ("verify", {"contacted": "y"}),
    ("claim_invalid", {"reason": "误评"}), ("propose_explain", {"reason": "超出职权"}),
    ("approve", {}), ("reject", {}), ("rectify", {"cause": "人手不足", "measure": "增开窗口"}),
    ("feedback", {"contacted": "y", "satisfied": "yes"}), ("reopen", {"reason": "复查"}),
]


@pytest.mark.parametrize("action,fields", FORM_POSTS, ids=[a for a, _ in FORM_POSTS])
@pytest.mark.parametrize("token", ["missing", "forged"])
def test_every_action_form_needs_csrf(app, client, team, query, action, fields, token):
    case_id = make_case(app, team.device)
    login(client, "super")
    data = {f"{action}-{k}": v for k, v in fields.items()}
    data[f"{action}-version"] = "1"
    if token == "forged":
        data[f"{action}-csrf_token"] = "forged-token"
    resp = client.post(f"/cases/{case_id}/actions/{action}", data=data)
    assert resp.status_code == 400
    assert "安全令牌" in resp.get_data(as_text=True)
    assert events(query, case_id) == ["route"]


@pytest.mark.parametrize("path", ["/login", "/logout", "/cases/{id}/reveal"])
def test_other_forms_need_csrf(app, client, team, query, path):
    case_id = make_case(app, team.device)
    if path != "/login":
        login(client, "handler")
    resp = client.post(path.format(id=case_id), data={"username": "handler", "password": "correct-horse-9"})
    assert resp.status_code == 400
    assert events(query, case_id) == ["route"]
    if path == "/logout":
        assert client.get("/cases").status_code == 200  # still signed in


# ---------------------------------------------------------------- worklist and scope

def test_worklist_shows_own_open_cases_by_deadline_with_badges(app, client, team, query):
    today = query(lambda s: Cards.now(s).today)
    later = make_case(app, team.device, callback_due=today + timedelta(days=20),
                      close_due=today + timedelta(days=40))
    overdue = make_case(app, team.device, callback_due=today - timedelta(days=3),
                        close_due=today + timedelta(days=30))
    yellow = make_case(app, team.device, callback_due=today, close_due=today + timedelta(days=30))
    closed = make_case(app, team.device, status="closed", outcome="rectified")
    someone_elses = make_case(app, team.device, assignee="handler2")
    login(client, "handler")
    resp = client.get("/cases")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.content_type == "text/html; charset=utf-8"
    shown = [int(x) for x in re.findall(r'href="/cases/(\d+)"', page)]
    assert shown == [overdue, yellow, later]
    assert closed not in shown and someone_elses not in shown
    assert "待核实" in page and "已逾期" in page
    assert re.search(rf'<tr class="row-red">\s*<td[^>]*><a href="/cases/{overdue}"', page)
    assert re.search(rf'<tr class="row-yellow">\s*<td[^>]*><a href="/cases/{yellow}"', page)
    # filters: closed cases on request, red only
    closed_page = client.get("/cases?status=closed").get_data(as_text=True)
    assert [int(x) for x in re.findall(r'href="/cases/(\d+)"', closed_page)] == [closed]
    assert "已办结" in closed_page
    overdue_page = client.get("/cases?warning=overdue").get_data(as_text=True)
    assert [int(x) for x in re.findall(r'href="/cases/(\d+)"', overdue_page)] == [overdue]


def test_supervisor_and_manager_see_their_subtree(app, client, team):
    mine = make_case(app, team.device)
    unassigned = make_case(app, team.device, assignee=None)
    login(client, "super")
    shown = set(map(int, re.findall(r'href="/cases/(\d+)"', client.get("/cases").get_data(as_text=True))))
    assert shown == {mine, unassigned}
    login(client, "other-super")
    assert re.findall(r'href="/cases/(\d+)"', client.get("/cases").get_data(as_text=True)) == []
    for who in ("manager", "admin"):  # the admin's own department is elsewhere: admins see all
        login(client, who)
        shown = set(map(int, re.findall(r'href="/cases/(\d+)"', client.get("/cases").get_data(as_text=True))))
        assert shown == {mine, unassigned}


def test_case_outside_scope_is_404(app, client, team, query):
    case_id = make_case(app, team.device)
    login(client, "outsider")
    assert client.get(f"/cases/{case_id}").status_code == 404
    assert client.get("/cases/999999").status_code == 404
    token = csrf_token(client.get("/cases").get_data(as_text=True))
    resp = client.post(f"/cases/{case_id}/actions/verify",
                       data={"verify-csrf_token": token, "verify-version": "1", "verify-contacted": "y"})
    assert resp.status_code == 404
    assert client.post(f"/cases/{case_id}/reveal", data={"csrf_token": token}).status_code == 404
    assert events(query, case_id) == ["route"]


# ---------------------------------------------------------------- the case page and its forms

def test_case_page_shows_rating_masked_rater_and_only_allowed_forms(app, client, team):
    case_id = make_case(app, team.device)
    login(client, "handler")
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "非常不满意" in page and "等候时间太长" in page and "等候时间长" in page and "态度不好" in page
    assert "大厅平板" in page and "5号窗口平板" in page
    assert "138******78" in page and PHONE not in page
    assert "查看电话" in page
    forms = re.findall(r'id="form-(\w+)"', page)
    assert forms == ["verify", "claim_invalid", "propose_explain"]
    # a colleague of the same section sees the case but may not act on it or reveal
    login(client, "handler2")
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert re.findall(r'id="form-(\w+)"', page) == [] and "查看电话" not in page


def test_handler_closes_a_case_through_the_forms(app, client, team, query):
    case_id = make_case(app, team.device)
    login(client, "handler")
    assert post_form(client, case_id, "verify", {"contacted": "y"}).status_code == 302
    # an empty cause is refused with a Chinese message, and the input is kept
    resp = post_form(client, case_id, "rectify", {"cause": " ", "measure": "增开两个窗口"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "请填写原因" in page and "增开两个窗口" in page
    assert case_row(query, case_id).status == "rectifying"
    rectified = post_form(client, case_id, "rectify", {"cause": "高峰人手不足", "measure": "增开两个窗口"})
    assert rectified.status_code == 302
    resp = post_form(client, case_id, "feedback", {"contacted": "y", "satisfied": "yes"})
    assert resp.status_code == 302
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "已办结" in page and "已整改" in page
    for label in ("生成工单", "回访核实", "整改", "反馈办结", "高峰人手不足", "增开两个窗口"):
        assert label in page
    case = case_row(query, case_id)
    assert (case.status, case.outcome, case.contacted, case.satisfied) == ("closed", "rectified", True, True)
    assert events(query, case_id) == ["route", "verify", "rectify", "feedback"]


def test_wrong_state_and_stale_page_are_refused_in_chinese(app, client, team, query):
    case_id = make_case(app, team.device)
    login(client, "handler")
    resp = post_form(client, case_id, "feedback", {"contacted": "y"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert "工单当前状态为「待核实」，不能反馈办结" in page and "回访核实" in page
    # a form shown at an older version (someone acted meanwhile) is not applied
    resp = post_form(client, case_id, "verify", {"contacted": "y"}, version=0)
    assert resp.status_code == 302
    assert "其他人更新" in client.get(resp.headers["Location"]).get_data(as_text=True)
    assert events(query, case_id) == ["route"]


def test_supervisor_assigns_and_four_eyes_rule_on_approval(app, client, team, query):
    case_id = make_case(app, team.device, assignee=None)
    login(client, "super")
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert 'value="handler2"' in page and 'value="outsider"' not in page
    assert post_form(client, case_id, "assign", {"assignee": "outsider"}).status_code == 422
    assert post_form(client, case_id, "assign", {"assignee": "handler2"}).status_code == 302
    assert case_row(query, case_id).status == "assigned"
    # the supervisor claims invalid and may then not approve it
    assert post_form(client, case_id, "claim_invalid", {"reason": "评价人误操作"}).status_code == 302
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "form-approve" not in page and "form-reject" in page
    resp = post_form(client, case_id, "approve", {}, version=case_row(query, case_id).version)
    assert resp.status_code == 403 and "不能审核自己提交的申请" in resp.get_data(as_text=True)
    login(client, "super2")
    assert post_form(client, case_id, "approve").status_code == 302
    case = case_row(query, case_id)
    assert (case.status, case.outcome) == ("closed", "invalid")


# ---------------------------------------------------------------- reveal

def test_assignee_reveals_phone_and_it_is_recorded(app, client, team, query):
    case_id = make_case(app, team.device)
    login(client, "handler")
    token = csrf_token(client.get(f"/cases/{case_id}").get_data(as_text=True))
    resp = client.post(f"/cases/{case_id}/reveal", data={"csrf_token": token})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and PHONE in page and "陈先生" in page
    assert resp.headers["Cache-Control"] == "no-store"
    assert events(query, case_id) == ["route", "reveal"]
    assert "查看评价人电话" in client.get(f"/cases/{case_id}").get_data(as_text=True)


@pytest.mark.parametrize("who,allowed", [("super", True), ("manager", False), ("handler2", False)])
def test_only_assignee_and_supervisors_may_reveal(app, client, team, query, who, allowed):
    case_id = make_case(app, team.device)
    login(client, who)
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert ("查看电话" in page) is allowed
    resp = client.post(f"/cases/{case_id}/reveal", data={"csrf_token": csrf_token(page)})
    assert (PHONE in resp.get_data(as_text=True)) is allowed
    assert events(query, case_id) == (["route", "reveal"] if allowed else ["route"])


# ---------------------------------------------------------------- queue

def test_queue_lists_claims_unassigned_and_overdue(app, client, team):
    claim = make_case(app, team.device, status="explain_review")
    unassigned = make_case(app, team.device, assignee=None)
    overdue = make_case(app, team.device, close_due=date.today() - timedelta(days=1), status="rectifying")
    make_case(app, team.device)  # on time, assigned: not in the queue
    login(client, "handler")
    assert client.get("/queue").status_code == 403
    login(client, "super")
    page = client.get("/queue").get_data(as_text=True)

    def ids(section):
        part = page.split(f'id="{section}"')[1].split("</section>")[0]
        return [int(x) for x in re.findall(r'href="/cases/(\d+)"', part)]
    assert ids("claims") == [claim]
    assert ids("unassigned") == [unassigned]
    assert ids("overdue") == [overdue]
    assert "解释说明审核" in page
    login(client, "other-super")
    assert re.findall(r'href="/cases/(\d+)"', client.get("/queue").get_data(as_text=True)) == []


# ---------------------------------------------------------------- headers and the tablet page

def test_pages_carry_a_strict_content_security_policy(app, client, team):
    login(client, "handler")
    for path in ("/cases", "/kiosk", "/login"):
        resp = client.get(path)
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert not re.search(r"<script(?![^>]*\bsrc=)", resp.get_data(as_text=True)), f"inline script on {path}"


def test_kiosk_page_has_five_faces_and_the_hall_reasons(client):
    resp = client.get("/kiosk")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.content_type == "text/html; charset=utf-8"
    assert re.findall(r'data-level="(\d)"', page) == ["5", "4", "3", "2", "1"]
    for label in ("非常满意", "满意", "基本满意", "不满意", "非常不满意"):
        assert label in page
    # the reasons are the active table's hall (offline) options, each with the levels it is for
    assert 'data-reason="off_eff_wait" data-levels="123"' in page and "排队等候时间长" in page
    assert 'data-reason="off_eff_fast" data-levels="345"' in page
    assert 'data-api="/api/v1/ratings"' in page
    js = client.get("/static/kiosk.js")
    assert js.status_code == 200 and b"localStorage" in js.data


def test_reveal_count_in_database(query, app, team, client):
    """A reveal writes exactly one history row and leaves the case version alone."""
    case_id = make_case(app, team.device)
    before = case_row(query, case_id).version
    login(client, "handler")
    token = csrf_token(client.get(f"/cases/{case_id}").get_data(as_text=True))
    client.post(f"/cases/{case_id}/reveal", data={"csrf_token": token})
    assert query(lambda s: s.scalar(select(func.count(CaseEvent.id)).where(CaseEvent.action == "reveal"))) == 1
    assert case_row(query, case_id).version == before


# ---------------------------------------------------------------- who acts, anonymous, 延期

def test_a_page_without_actions_says_who_can_act(app, client, team):
    unassigned = make_case(app, team.device, assignee=None)
    theirs = make_case(app, team.device, assignee="handler2")
    login(client, "handler")  # cannot see the unassigned case's forms: not theirs to assign
    page = client.get(f"/cases/{unassigned}").get_data(as_text=True)
    assert "待科室负责人分派" in page and "当前没有您可以办理的操作" not in page
    page = client.get(f"/cases/{theirs}").get_data(as_text=True)
    assert "待承办人（赵四）回访核实" in page


def test_a_manager_assigns_through_the_page(app, client, team, query):
    case_id = make_case(app, team.device, assignee=None)
    login(client, "manager")
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "form-assign" in page and 'value="handler2"' in page
    assert post_form(client, case_id, "assign", {"assignee": "handler2"}).status_code == 302
    assert case_row(query, case_id).status == "assigned"


def test_anonymous_case_page_needs_no_callback(app, client, team, query):
    case_id = make_case(app, team.device, real_name=False)
    login(client, "handler")
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "匿名评价，无需回访" in page and "已电话联系上评价人" not in page
    assert post_form(client, case_id, "verify", {}).status_code == 302
    assert case_row(query, case_id).status == "rectifying"


@pytest.mark.parametrize("unit,label", [("working", "个工作日"), ("natural", "天")])
def test_extension_through_the_forms(app, client, team, query, monkeypatch, unit, label):
    """Extensions count in HCP_DEADLINE_UNIT, and the page says so."""
    monkeypatch.setattr(app.config["HCP_SETTINGS"], "deadline_unit", unit)
    case_id = make_case(app, team.device, status="rectifying")
    due = case_row(query, case_id).close_due
    login(client, "handler")
    resp = post_form(client, case_id, "request_extension", {"working_days": "20", "reason": "会商"})
    assert resp.status_code == 422 and f"延期天数须为1到15{label}" in resp.get_data(as_text=True)
    assert post_form(client, case_id, "request_extension", {"working_days": "5", "reason": "需会商"}).status_code == 302
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert f"申请延期5{label}，待审核" in page and "待科室负责人审核延期申请" in page
    login(client, "super")
    assert post_form(client, case_id, "approve").status_code == 302
    case = case_row(query, case_id)
    assert case.status == "rectifying" and case.close_due > due and case.extended_at is not None
    login(client, "handler")
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert f"已延期5{label}" in page and "form-request_extension" not in page
