"""The cases API (SPEC §2, §4): actions, scope, four-eyes, reveal, life cycles, concurrency."""
from __future__ import annotations

import functools
import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update

from models import Case, CaseEvent, User
from service.cases.routing import route
from service.cases.warnings import Cards
from tests.support import bearer, rating_body

RATER = {"real_name": True, "name": "陈大文", "phone": "13812345678"}
MEASURES = {"cause": "材料清单未一次性告知", "action": "窗口张贴清单，组织业务培训"}


@functools.cache
def _password_hash() -> str:
    from werkzeug.security import generate_password_hash
    return generate_password_hash("correct-horse-9")


class Office:
    """district → bureau → {section, empty}; a sibling bureau ``civil`` out of the others' scope.

    ``section`` has one handler (h), so routing gives its cases to h; ``empty`` has none,
    so its cases stay unassigned. Staff sign in with ``self.tokens[username]``.
    """

    STAFF = [("h", "handler", "section"), ("h2", "handler", "bureau"), ("s", "supervisor", "bureau"),
             ("s2", "supervisor", "bureau"), ("m", "manager", "district"), ("a", "admin", "civil"),
             ("x", "supervisor", "civil"), ("xh", "handler", "civil")]

    def __init__(self, org, client, query):
        self.client, self.query = client, query
        d = {}
        d["district"] = org.department("district", "示范区政务服务中心")
        d["bureau"] = org.department("bureau", "区市场监管局", parent=d["district"])
        d["section"] = org.department("section", "登记注册科", parent=d["bureau"])
        d["empty"] = org.department("empty", "无人科", parent=d["bureau"])
        d["civil"] = org.department("civil", "区民政局", parent=d["district"])
        self.depts = d
        self.keys = {code: org.device(d[code], name=f"kiosk-{code}")[1] for code in ("section", "empty", "civil")}
        self.users = self._staff(org.app)
        self.tokens = {name: org.token(user) for name, user in self.users.items()}

    def _staff(self, app) -> dict[str, User]:
        """The staff in one commit, sharing one password hash (hashing is slow on purpose)."""
        from service.extensions import db

        with app.app_context():
            users = {name: User(username=name, role=role, department_id=self.depts[dept].id,
                                password_hash=_password_hash()) for name, role, dept in self.STAFF}
            db.session.add_all(users.values())
            db.session.commit()
            for user in users.values():
                db.session.refresh(user)
            db.session.expunge_all()
        return users

    def case(self, dept: str = "section", rater: dict | None = RATER, **fields) -> int:
        """A routed case of a bad rating from the department's kiosk.

        The rating is stored as the intake stores it, then routed here: no task goes to
        the broker, so no backlog is left for the worker of a later test.
        """
        from models import Device
        from service.ratings.intake import store
        from service.ratings.schemas import RatingIn

        fields = {"comment": "排队太久", **fields, **({"rater": rater} if rater else {})}
        body = RatingIn().load(rating_body(level=1, **fields))

        def make(session):
            device = session.scalar(select(Device).where(Device.name == f"kiosk-{dept}"))
            outcome = store(session.connection(), device, [body])[0]
            assert outcome.status == "created", outcome
            case_id = route(session, outcome.rating["id"])
            session.commit()
            return case_id
        return self.query(make)

    def act(self, who: str, case_id: int, action: str, **fields):
        return self.client.post(f"/api/v1/cases/{case_id}/actions", json={"action": action, **fields},
                                headers=bearer(self.tokens[who]))

    def ok(self, who: str, case_id: int, action: str, **fields) -> dict:
        resp = self.act(who, case_id, action, **fields)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def get(self, who: str, case_id: int):
        return self.client.get(f"/api/v1/cases/{case_id}", headers=bearer(self.tokens[who]))

    def list(self, who: str, **params):
        resp = self.client.get("/api/v1/cases", query_string=params, headers=bearer(self.tokens[who]))
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def history(self, case_id: int) -> list[tuple]:
        return self.query(lambda s: [(e.action, e.from_status, e.to_status, e.actor.username if e.actor else None)
                                     for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)
                                                        .order_by(CaseEvent.id))])


@pytest.fixture
def office(org, client, query):
    return Office(org, client, query)


# --- life cycles -------------------------------------------------------------------------

def test_verify_rectify_feedback_closes_rectified(office):
    cid = office.case()
    detail = office.get("h", cid).get_json()
    assert (detail["status"], detail["assignee"], detail["actions"]) == \
        ("assigned", "h", ["verify", "claim_invalid", "propose_explain"])
    office.ok("h", cid, "verify", contacted=True, note="电话回访，评价人反映属实")
    office.ok("h", cid, "rectify", measures=MEASURES)
    done = office.ok("h", cid, "feedback", contacted=True, satisfied=True)
    assert (done["status"], done["outcome"], done["actions"]) == ("closed", "rectified", [])
    assert done["closed_at"] is not None and done["version"] == 4
    assert [(e["action"], e["from"], e["to"], e["actor"]) for e in done["history"]] == [
        ("route", None, "assigned", None),
        ("verify", "assigned", "rectifying", "h"),
        ("rectify", "rectifying", "feedback", "h"),
        ("feedback", "feedback", "closed", "h"),
    ]
    assert done["history"][1]["note"] == "电话回访，评价人反映属实"
    assert office.query(lambda s: (lambda c: (c.contacted, c.satisfied))(s.get(Case, cid))) == (True, True)


def test_immediate_rectification_is_verify_then_rectify(office):
    cid = office.case()
    office.ok("h", cid, "verify", contacted=True)
    assert office.ok("h", cid, "rectify", measures=MEASURES)["status"] == "feedback"


def test_invalid_claim_approved_closes_invalid(office):
    cid = office.case()
    assert office.ok("h", cid, "claim_invalid", reason="评价人误触")["status"] == "invalid_review"
    assert office.get("h", cid).get_json()["actions"] == []
    assert office.get("s", cid).get_json()["actions"] == ["approve", "reject"]
    done = office.ok("s", cid, "approve", note="核实为误评")
    assert (done["status"], done["outcome"]) == ("closed", "invalid")


def test_explain_approved_then_feedback_closes_explained(office):
    cid = office.case()
    office.ok("h", cid, "verify", contacted=True)
    assert office.ok("h", cid, "propose_explain", reason="诉求无法律依据")["status"] == "explain_review"
    assert office.ok("s", cid, "approve")["status"] == "feedback"
    done = office.ok("h", cid, "feedback", contacted=True, satisfied=False)
    assert (done["status"], done["outcome"]) == ("closed", "explained")


def test_rejected_claim_goes_back_to_rectifying(office):
    cid = office.case()
    office.ok("h", cid, "claim_invalid", reason="恶意差评")
    back = office.ok("s", cid, "reject", note="证据不足")
    assert (back["status"], back["outcome"]) == ("rectifying", None)
    assert office.ok("h", cid, "rectify", measures=MEASURES)["status"] == "feedback"


def test_reopen_a_closed_case_and_close_it_again(office):
    cid = office.case()
    office.ok("h", cid, "claim_invalid", reason="误评")
    office.ok("s", cid, "approve")
    assert office.act("h", cid, "reopen", reason="x").status_code == 403
    reopened = office.ok("m", cid, "reopen", reason="评价人再次投诉")
    assert (reopened["status"], reopened["outcome"], reopened["closed_at"]) == ("rectifying", None, None)
    office.ok("h", cid, "rectify", measures=MEASURES)
    done = office.ok("h", cid, "feedback", contacted=True, satisfied=True)
    assert (done["status"], done["outcome"]) == ("closed", "rectified")
    assert [e["action"] for e in done["history"]] == ["route", "claim_invalid", "approve", "reopen",
                                                      "rectify", "feedback"]


def test_unassigned_case_is_assigned_by_a_supervisor(office):
    cid = office.case("empty")
    assert office.get("s", cid).get_json()["status"] == "unassigned"
    assert office.act("h2", cid, "assign", assignee="h2").status_code == 403
    # h works in a sibling section and could not see the case: refused
    resp = office.act("s", cid, "assign", assignee="h")
    assert resp.status_code == 422 and "assignee" in resp.get_json()["errors"]["json"]
    assigned = office.ok("s", cid, "assign", assignee="h2")
    assert (assigned["status"], assigned["assignee"]) == ("assigned", "h2")
    assert office.ok("h2", cid, "verify", contacted=False)["status"] == "rectifying"


# --- refusals ----------------------------------------------------------------------------

def test_wrong_state_is_409_naming_the_allowed_actions(office):
    cid = office.case()
    office.ok("h", cid, "verify", contacted=True)
    resp = office.act("h", cid, "verify", contacted=True)
    assert resp.status_code == 409
    allowed = "allowed actions: assign, claim_invalid, propose_explain, request_extension, rectify"
    assert allowed in resp.get_json()["message"]
    assert office.act("h", cid, "feedback", contacted=True).status_code == 409
    assert [e[0] for e in office.history(cid)] == ["route", "verify"]


@pytest.mark.parametrize("who,action,fields", [
    ("m", "verify", {"contacted": True}),       # a manager does not handle cases
    ("a", "verify", {"contacted": True}),       # nor does an admin, who sees everything
    ("h2", "verify", {"contacted": True}),      # a handler in scope, but not the assignee
    ("h", "assign", {"assignee": "h2"}),        # handlers do not assign
])
def test_wrong_role_is_403(office, who, action, fields):
    cid = office.case()
    resp = office.act(who, cid, action, **fields)
    assert resp.status_code == 403, resp.get_json()
    assert office.history(cid) == [("route", None, "assigned", None)]


def test_handler_may_not_approve(office):
    cid = office.case()
    office.ok("h", cid, "claim_invalid", reason="误评")
    assert office.act("h", cid, "approve").status_code == 403


def test_case_outside_scope_is_404_like_a_missing_one(office):
    cid = office.case()
    missing = cid + 1000
    for who in ("x", "xh"):  # staff of the sibling bureau
        assert office.get(who, cid).status_code == 404
        out = office.act(who, cid, "verify", contacted=True)
        assert out.status_code == 404
        assert out.get_json() == office.act(who, missing, "verify", contacted=True).get_json()
        assert office.client.post(f"/api/v1/cases/{cid}/reveal",
                                  headers=bearer(office.tokens[who])).status_code == 404
    assert office.history(cid) == [("route", None, "assigned", None)]


def test_four_eyes_supervisor_never_approves_own_claim(office):
    cid = office.case()
    office.ok("h", cid, "verify", contacted=True)
    office.ok("s", cid, "propose_explain", reason="超出本部门职权")
    assert "approve" not in office.get("s", cid).get_json()["actions"]
    resp = office.act("s", cid, "approve")
    assert resp.status_code == 403 and resp.get_json()["reason"] == "four_eyes"
    assert office.ok("s2", cid, "approve")["status"] == "feedback"


BAD_BODIES = [
    ({"action": "verify"}, "contacted"),
    ({"action": "verify", "contacted": "yes"}, "contacted"),
    ({"action": "claim_invalid", "reason": "  "}, "reason"),
    ({"action": "close"}, "action"),
    ({}, "action"),
    ({"action": "verify", "contacted": True, "colour": "red"}, "colour"),
    ({"action": "verify", "contacted": True, "version": "1"}, "version"),
]


@pytest.mark.parametrize("body,field", BAD_BODIES, ids=[f for _, f in BAD_BODIES])
def test_bad_data_is_422_naming_the_field(office, body, field):
    cid = office.case()
    resp = office.client.post(f"/api/v1/cases/{cid}/actions", json=body, headers=bearer(office.tokens["h"]))
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"]["json"]
    assert office.history(cid) == [("route", None, "assigned", None)]


@pytest.mark.parametrize("measures,field", [(None, "measures"), ({"cause": " ", "action": "培训"}, "measures.cause"),
                                            ({"cause": "态度差"}, "measures")])
def test_rectify_needs_cause_and_action(office, measures, field):
    cid = office.case()
    office.ok("h", cid, "verify", contacted=True)
    resp = office.act("h", cid, "rectify", **({"measures": measures} if measures is not None else {}))
    assert resp.status_code == 422 and field in resp.get_json()["errors"]["json"]
    assert office.get("h", cid).get_json()["status"] == "rectifying"


def test_action_needs_a_staff_token(office):
    cid = office.case()
    assert office.client.post(f"/api/v1/cases/{cid}/actions", json={"action": "verify"}).status_code == 401
    resp = office.client.post(f"/api/v1/cases/{cid}/actions", json={"action": "verify", "contacted": True},
                              headers=bearer(office.keys["section"]))
    assert resp.status_code == 401


# --- reveal ------------------------------------------------------------------------------

def test_reveal_to_assignee_and_supervisor_only_and_recorded(office):
    cid = office.case()
    masked = office.get("h", cid).get_json()["rating"]["rater"]
    assert masked == {"real_name": True, "name": "陈**", "phone": "138******78"}

    def reveal(who):
        return office.client.post(f"/api/v1/cases/{cid}/reveal", headers=bearer(office.tokens[who]))

    for who in ("h", "s"):
        resp = reveal(who)
        assert resp.status_code == 200 and resp.get_json() == {"name": "陈大文", "phone": "13812345678"}
        assert resp.headers["Cache-Control"] == "no-store"
    for who in ("h2", "m", "a"):
        assert reveal(who).status_code == 403
    history = office.get("s", cid).get_json()["history"]
    reveals = [(e["action"], e["actor"], e["from"], e["to"]) for e in history if e["action"] == "reveal"]
    assert reveals == [("reveal", "h", "assigned", "assigned"), ("reveal", "s", "assigned", "assigned")]
    assert "13812345678" not in str(history)
    # revealing is not an action: the case itself is unchanged
    assert office.get("h", cid).get_json()["version"] == 1


def test_reveal_of_anonymous_rater_is_409_and_not_recorded(office):
    cid = office.case(rater=None)
    resp = office.client.post(f"/api/v1/cases/{cid}/reveal", headers=bearer(office.tokens["h"]))
    assert resp.status_code == 409
    assert [e[0] for e in office.history(cid)] == ["route"]


# --- list and detail ---------------------------------------------------------------------

def test_detail_shape(office):
    cid = office.case()
    data = office.get("h", cid).get_json()
    assert {"id", "rating_id", "department", "assignee", "status", "outcome", "callback_due", "close_due",
            "warning", "rating", "history", "version", "actions"} <= set(data)
    assert (data["department"], data["warning"], data["rating"]["case_id"]) == ("section", None, cid)
    assert data["history"][0]["action"] == "route"


def test_list_is_scoped(office):
    mine, empty, civil = office.case(), office.case("empty"), office.case("civil")

    def ids(who, **params):
        return sorted(c["id"] for c in office.list(who, **params)["items"])
    assert ids("h") == [mine]                          # section only
    assert ids("s") == ids("h2") == sorted([mine, empty])  # bureau and below
    assert ids("m") == sorted([mine, empty, civil])    # the whole district
    assert ids("x") == [civil]
    assert ids("a") == sorted([mine, empty, civil])    # admin sees all, from any department


def test_list_filters_and_paging(office):
    cases = [office.case() for _ in range(3)] + [office.case("empty")]
    office.ok("h", cases[0], "verify", contacted=True)
    today = office.query(lambda s: Cards.now(s).today)
    office.query(lambda s: (s.execute(update(Case).where(Case.id == cases[1]).values(callback_due=today)),
                            s.execute(update(Case).where(Case.id == cases[2])
                                      .values(callback_due=today - timedelta(days=1))),
                            s.commit()))
    ids = lambda **p: sorted(c["id"] for c in office.list("s", **p)["items"])  # noqa: E731
    assert ids(status="rectifying") == [cases[0]]
    assert ids(status="unassigned") == [cases[3]]
    assert ids(department="empty") == [cases[3]]
    assert ids(department="bureau") == sorted(cases)
    assert ids(warning="red") == [cases[2]]
    assert ids(warning="any") == sorted(cases[1:3])
    assert office.list("h", assignee="me")["total"] == 3
    assert office.list("s", assignee="me")["total"] == 0
    page1, page2 = office.list("s", per_page=3, page=1), office.list("s", per_page=3, page=2)
    assert (page1["total"], len(page1["items"]), len(page2["items"])) == (4, 3, 1)
    assert not {c["id"] for c in page1["items"]} & {c["id"] for c in page2["items"]}
    assert office.list("x", department="bureau")["total"] == 0  # another's subtree stays hidden
    bad = office.client.get("/api/v1/cases?department=nope", headers=bearer(office.tokens["s"]))
    assert bad.status_code == 422 and "department" in str(bad.get_json()["errors"])
    bad = office.client.get("/api/v1/cases?status=done", headers=bearer(office.tokens["s"]))
    assert bad.status_code == 422 and "status" in str(bad.get_json()["errors"])


# --- concurrency -------------------------------------------------------------------------

def _race(app, token: str, case_id: int, bodies: list[dict]) -> list[int]:
    """POST the bodies at once from threads released by one barrier; the status codes in order."""
    barrier = threading.Barrier(len(bodies))
    codes = [None] * len(bodies)

    def post(i):
        c = app.test_client()
        barrier.wait()
        codes[i] = c.post(f"/api/v1/cases/{case_id}/actions", json=bodies[i], headers=bearer(token)).status_code

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_actions_only_one_applies(app, office, round_):
    cid = office.case()
    codes = _race(app, office.tokens["h"], cid, [{"action": "verify", "contacted": True}] * 2)
    assert sorted(codes) == [200, 409]
    assert [e[0] for e in office.history(cid)] == ["route", "verify"]
    assert office.get("h", cid).get_json()["version"] == 2


def test_concurrent_different_actions_on_the_same_version(app, office):
    """Both were decided on version 1; the one taken second sees version 2 and is refused."""
    cid = office.case()
    codes = _race(app, office.tokens["h"], cid, [
        {"action": "verify", "contacted": True, "version": 1},
        {"action": "claim_invalid", "reason": "误评", "version": 1},
    ])
    assert sorted(codes) == [200, 409]
    assert len(office.history(cid)) == 2


def test_version_column_refuses_a_change_made_under_the_action(app, office):
    """The last guard: the row changes between read and write (as without the row lock)."""
    from service.extensions import db

    cid = office.case()
    fired = []

    @event.listens_for(db.session, "before_flush")
    def meddle(session, *_):
        if not fired:
            fired.append(True)
            session.connection().execute(update(Case.__table__).where(Case.__table__.c.id == cid)
                                         .values(version=Case.__table__.c.version + 1))
    try:
        resp = office.act("h", cid, "verify", contacted=True)
    finally:
        event.remove(db.session, "before_flush", meddle)
    assert fired and resp.status_code == 409, resp.get_json()
    assert [e[0] for e in office.history(cid)] == ["route"]
    assert office.query(lambda s: s.get(Case, cid).status) == "assigned"


def test_stale_version_in_the_body_is_409(office):
    cid = office.case()
    office.ok("h", cid, "verify", contacted=True, version=1)
    resp = office.act("h", cid, "rectify", measures=MEASURES, version=1)
    assert resp.status_code == 409 and "version" in resp.get_json()["message"]


def test_openapi_documents_actions_and_reveal(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "post" in paths["/api/v1/cases/{case_id}/actions"]
    assert "post" in paths["/api/v1/cases/{case_id}/reveal"]


def test_inactive_assignee_cannot_act(app, office):
    cid = office.case()
    office.query(lambda s: (s.execute(update(User).where(User.username == "h").values(active=False)), s.commit()))
    assert office.act("h", cid, "verify", contacted=True).status_code == 401
    assert office.query(lambda s: s.scalar(select(func.count(CaseEvent.id)).where(CaseEvent.case_id == cid))) == 1
