"""Who may do what, as one table: endpoint × caller × where the case lies (SPEC §2, §4).

Callers: anonymous, a device (its key), and a handler, supervisor, manager and admin who
all work in ``hall``. Cases lie in ``hall`` (own), in ``market`` (a sibling under the same
district) and in ``district`` (the parent). Staff see their department and everything
under it (admins everything); outside it a case is 404, as if it did not exist. The
figures (``/api/v1/stats/…``, asked for the own, sibling or parent department) are for
supervisors, managers and admins; ``/metrics`` is public (counts only).

Every probe leaves the cases as they are: the action probe is ``verify`` without its
``contacted`` field, so a caller who passes scope, role and assignee checks gets 422 and
nothing changes; reveals only add history entries.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import support
from tests.stack import Stack
from tests.web_support import CSRF_RE, PASSWORD, add_staff, make_case

CALLERS = ("anonymous", "device", "client", "handler", "supervisor", "manager", "admin")
NOT_STAFF = ("anonymous", "device", "client")  # ``client``: the hall's approval system (hcpc_ key)
WHERE = ("own", "sibling", "parent")
STAFF = CALLERS[3:]


class World:
    def __init__(self, tmp: Path):
        self.redis = support.RedisServer(tmp / "redis")
        self.redis.workdir.mkdir()
        self.redis.start()
        (tmp / "var").mkdir()
        self.stack = Stack(tmp / "var", self.redis)
        self.app = app = self.stack.migrate()
        org = support.Org(app)
        district = org.department("district", "区政务服务中心")
        hall = org.department("hall", "政务服务大厅", parent=district)
        market = org.department("market", "市场监管局", parent=district)
        add_staff(app, [(role, role, hall, role) for role in STAFF]
                  + [("h-market", "handler", market, "市场承办人"), ("h-district", "handler", district, "区承办人")])
        devices = {}
        for where, dept in (("own", hall), ("sibling", market), ("parent", district)):
            devices[where], key = org.device(dept, name=f"kiosk-{where}")
            if where == "own":
                self.device_key = key
        assignees = {"own": "handler", "sibling": "h-market", "parent": "h-district"}
        self.cases = {w: make_case(app, devices[w], assignee=assignees[w]) for w in WHERE}
        from models import Case
        from service.extensions import db
        with app.app_context():
            self.ratings = {w: db.session.get(Case, cid).rating_id for w, cid in self.cases.items()}
        self.tokens = {role: org.token(_user(app, role)) for role in STAFF}
        self.flags = self._flags(app, {"own": hall, "sibling": market, "parent": district})
        self._projects(app, org, {"own": hall, "sibling": market, "parent": district})
        self.web = {who: self._web_client(who) for who in CALLERS}

    def _web_client(self, who: str):
        client = self.app.test_client()
        page = client.get("/login").get_data(as_text=True)
        client.csrf = CSRF_RE.search(page).group(2)
        if who in STAFF:
            resp = client.post("/login", data={"username": who, "password": PASSWORD, "csrf_token": client.csrf})
            assert resp.status_code == 302, resp.status_code
        return client

    def _projects(self, app, org, departments):
        """An application per department (registered by the district's approval system), and
        the hall's own approval client as the ``client`` caller."""
        from service.clients.registry import add_client
        from service.extensions import db
        from service.projects import register
        from tests.test_projects import body

        district, _ = org._build(lambda: add_client("区审批", "approval", db.session.merge(departments["parent"])))
        _, self.client_key = org._build(
            lambda: add_client("大厅审批", "approval", db.session.merge(departments["own"])))
        for where, dept in departments.items():
            org.item(f"item-{where}", dept)
            with app.app_context():
                register.upsert(db.session, db.session.merge(district), f"P-{where}",
                                register_body(body, where))
                db.session.commit()

    def _flags(self, app, departments) -> dict:
        """A dismissed suspicious flag per department, holding that department's rating:
        confirm, dismiss and restore are then 409 for whoever may decide, and change nothing."""
        from models import SuspiciousFlag, SuspiciousFlagRating
        from service.extensions import db

        out = {}
        with app.app_context():
            for where, dept in departments.items():
                flag = SuspiciousFlag(rule="burst", group_key=f"device:0@{where}", department_id=dept.id,
                                      generation=1, subject=f"kiosk-{where}", state="dismissed")
                db.session.add(flag)
                db.session.flush()
                db.session.add(SuspiciousFlagRating(flag_id=flag.id, rating_id=self.ratings[where]))
                out[where] = flag.id
            db.session.commit()
        return out

    def bearer(self, who: str) -> dict:
        if who == "device":
            return support.bearer(self.device_key)
        if who == "client":
            return support.bearer(self.client_key)
        return support.bearer(self.tokens[who]) if who in STAFF else {}

    def close(self):
        self.stack.stop()
        self.redis.stop()


def register_body(body, where: str) -> dict:
    """A project body for the item of ``where``, as the API loads it (aware datetimes)."""
    from service.projects.schemas import ProjectIn

    return ProjectIn().load(body("done", item_code=f"item-{where}"))


def _user(app, username):
    from sqlalchemy import select

    from models import User
    from service.extensions import db
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        db.session.expunge(user)
        return user


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("access"))
    yield w
    w.close()


# ---------------------------------------------------------------- the table

def api(method, path):
    def call(w, who, where):
        url = path.format(case=w.cases[where], rating=w.ratings[where], project=f"P-{where}", flag=w.flags[where])
        body = {"action": "verify"} if url.endswith("/actions") else None
        if method == "put":
            from tests.test_projects import body as project_body
            body = project_body("done", item_code=f"item-{where}")
        return getattr(w.app.test_client(), method)(url, json=body, headers=w.bearer(who))
    return call


def web(method, path):
    def call(w, who, where):
        client = w.web[who]
        url = path.format(case=w.cases[where])
        if method == "post":
            return client.post(url, data={"csrf_token": client.csrf})
        return client.get(url)
    return call


def staff_api(ok):
    """401 without a staff token; 404 outside the caller's scope; else ``ok(who)``."""
    def expect(who, where):
        if who in NOT_STAFF:
            return 401
        if where != "own" and who != "admin":
            return 404
        return ok(who)
    return expect


def staff_page(ok):
    """Sign-in redirect (302) without a session; 404 outside scope; else ``ok(who)``."""
    def expect(who, where):
        if who in NOT_STAFF:
            return 302
        if where != "own" and who != "admin":
            return 404
        return ok(who)
    return expect


def stats(path, extra=""):
    def call(w, who, where):
        dept = {"own": "hall", "sibling": "market", "parent": "district"}[where]
        url = f"{path}?from=2026-01-01&to=2026-12-31&department={dept}{extra}"
        return w.app.test_client().get(url, headers=w.bearer(who))
    return call


def figures_viewer(who, where):
    """Stats: managers, supervisors and admins (403 for handlers), in their scope (404 outside)."""
    if who in NOT_STAFF:
        return 401
    if who == "handler":
        return 403
    return 200 if where == "own" or who == "admin" else 404


MAY_WORK = {"handler", "supervisor"}  # the own case's assignee, and a supervisor over it
ENDPOINTS = {
    "GET /api/v1/cases/{id}": (api("get", "/api/v1/cases/{case}"), staff_api(lambda who: 200)),
    "GET /api/v1/ratings/{id}": (api("get", "/api/v1/ratings/{rating}"), staff_api(lambda who: 200)),
    "POST /api/v1/cases/{id}/actions": (api("post", "/api/v1/cases/{case}/actions"),
                                        staff_api(lambda who: 422 if who in MAY_WORK else 403)),
    "POST /api/v1/cases/{id}/reveal": (api("post", "/api/v1/cases/{case}/reveal"),
                                       staff_api(lambda who: 200 if who in MAY_WORK else 403)),
    "POST /api/v1/ratings": (lambda w, who, where: w.app.test_client().post(
        "/api/v1/ratings", json=support.rating_body(level=5), headers=w.bearer(who)),
        lambda who, where: 201 if who == "device" else 401),
    "POST /api/v1/ratings/batch": (lambda w, who, where: w.app.test_client().post(
        "/api/v1/ratings/batch", json={"ratings": [support.rating_body(level=4)]}, headers=w.bearer(who)),
        lambda who, where: 200 if who == "device" else 401),
    "GET /api/v1/stats/summary?department={id}": (stats("/api/v1/stats/summary"), figures_viewer),
    "GET /api/v1/stats/breakdown?department={id}": (stats("/api/v1/stats/breakdown", "&by=channel"),
                                                    figures_viewer),
    "GET /api/v1/stats/export?department={id}": (stats("/api/v1/stats/export", "&format=csv"), figures_viewer),
    # A batch is answered per case (not_found outside scope); approving an assigned case is refused.
    "POST /api/v1/cases/actions": (lambda w, who, where: w.app.test_client().post(
        "/api/v1/cases/actions", json={"ids": list(w.cases.values()), "action": "approve"}, headers=w.bearer(who)),
        lambda who, where: 401 if who in NOT_STAFF else 200),
    "GET /api/v1/cases/export": (api("get", "/api/v1/cases/export?format=csv"),
                                 lambda who, where: 401 if who in NOT_STAFF else 403 if who == "handler" else 200),
    "GET /api/v1/insights/hotspots?department={id}": (stats("/api/v1/insights/hotspots"), figures_viewer),
    "GET /api/v1/reports?department={id}": (stats("/api/v1/reports", "&format=md"), figures_viewer),
    "GET /api/v1/insights/suspicious": (api("get", "/api/v1/insights/suspicious"),
                                        lambda who, where: figures_viewer(who, "own")),
    "GET /api/v1/insights/suspicious/{id}": (api("get", "/api/v1/insights/suspicious/{flag}"), figures_viewer),
    # Supervisors and managers decide (handlers and admins 403); the probed flags are dismissed: 409.
    **{f"POST /api/v1/insights/suspicious/{{id}}/{verb}": (
        api("post", f"/api/v1/insights/suspicious/{{flag}}/{verb}"),
        lambda who, where: 401 if who in NOT_STAFF else 403 if who in ("handler", "admin")
        else 409 if where == "own" else 404)
       for verb in ("confirm", "dismiss", "restore")},
    "GET /api/v1/reasons": (api("get", "/api/v1/reasons"), lambda who, where: 401 if who == "anonymous" else 200),
    "GET /api/v1/clients/me": (api("get", "/api/v1/clients/me"), lambda who, where: 200 if who == "client" else 401),
    # Upstream and hotline clients only: the matrix's client is the approval system's.
    "POST /api/v1/exchange/inbound": (lambda w, who, where: w.app.test_client().post(
        "/api/v1/exchange/inbound", json={"records": [{"ticket_no": "T-1"}]}, headers=w.bearer(who)),
        lambda who, where: 403 if who == "client" else 401),
    # The hall's approval client updates its own application (200); items elsewhere are unknown to it.
    "PUT /api/v1/projects/{id}": (api("put", "/api/v1/projects/{project}"),
                                  lambda who, where: (200 if where == "own" else 422) if who == "client" else 401),
    "GET /api/v1/projects/{id}": (api("get", "/api/v1/projects/{project}"), staff_api(lambda who: 200)),
    # The link for the receipt: the approval client of the hall, or staff, in scope.
    "GET /api/v1/projects/{id}/invitation": (
        api("get", "/api/v1/projects/{project}/invitation"),
        lambda who, where: ((200 if where == "own" else 404) if who == "client"
                            else staff_api(lambda w: 200)(who, where))),
    "GET /dashboard": (web("get", "/dashboard"),
                       lambda who, where: 302 if who in NOT_STAFF else 403 if who == "handler" else 200),
    "GET /insights": (web("get", "/insights"),
                      lambda who, where: 302 if who in NOT_STAFF else 403 if who == "handler" else 200),
    # Public on purpose (Prometheus scrapes it): counts only, no rater or case data.
    "GET /metrics": (lambda w, who, where: w.app.test_client().get("/metrics", headers=w.bearer(who)),
                     lambda who, where: 200),
    "GET /cases/{id}": (web("get", "/cases/{case}"), staff_page(lambda who: 200)),
    # A refused reveal goes back to the case page with a message (302); a shown one is the page.
    "POST /cases/{id}/reveal": (web("post", "/cases/{case}/reveal"),
                                staff_page(lambda who: 200 if who in MAY_WORK else 302)),
    "GET /queue": (web("get", "/queue"),
                   lambda who, where: 302 if who in NOT_STAFF else 403 if who == "handler" else 200),
    # Public: the pairing code is the credential; a wrong one is 404 whoever asks.
    "POST /api/v1/devices/pair": (lambda w, who, where: w.app.test_client().post(
        "/api/v1/devices/pair", json={"code": "AAAAAA"}, headers=w.bearer(who)), lambda who, where: 404),
    # The admin console: managers read the devices of their subtree; everything else is the admin's.
    "GET /admin/devices": (web("get", "/admin/devices"), lambda who, where: 302 if who in NOT_STAFF
                           else 200 if who in ("manager", "admin") else 403),
    "POST /admin/devices": (web("post", "/admin/devices"), lambda who, where: 302 if who in NOT_STAFF
                            else 422 if who == "admin" else 403),
    "GET /admin/staff": (web("get", "/admin/staff"), lambda who, where: 302 if who in NOT_STAFF
                         else 200 if who == "admin" else 403),
    "GET /admin/org": (web("get", "/admin/org"), lambda who, where: 302 if who in NOT_STAFF
                       else 200 if who == "admin" else 403),
    "GET /admin/calendar": (web("get", "/admin/calendar"), lambda who, where: 302 if who in NOT_STAFF
                            else 200 if who == "admin" else 403),
    "GET /admin/reasons": (web("get", "/admin/reasons"), lambda who, where: 302 if who in NOT_STAFF
                           else 200 if who == "admin" else 403),
    "POST /admin/staff/handler/unlock": (web("post", "/admin/staff/handler/unlock"), lambda who, where: 302
                                      if who in NOT_STAFF or who == "admin" else 403),
    "GET /admin/audit": (web("get", "/admin/audit"), lambda who, where: 302 if who in NOT_STAFF
                         else 200 if who == "admin" else 403),
    "GET /admin/exchange": (web("get", "/admin/exchange"), lambda who, where: 302 if who in NOT_STAFF
                            else 200 if who == "admin" else 403),
    # The admin's requeue goes back to the page (302, not to the sign-in).
    "POST /admin/exchange/requeue": (web("post", "/admin/exchange/requeue"),
                                     lambda who, where: 302 if who in NOT_STAFF or who == "admin" else 403),
}
# Endpoints without a department dimension are probed once per caller.
SCOPED = {name for name in ENDPOINTS if "{id}" in name}
CELLS = [(name, who, where) for name in ENDPOINTS for who in CALLERS
         for where in (WHERE if name in SCOPED else ("own",))]


@pytest.mark.postgres_only
@pytest.mark.parametrize("endpoint,who,where", CELLS, ids=[f"{n} {w} {s}" for n, w, s in CELLS])
def test_access_matrix(world, endpoint, who, where):
    call, expect = ENDPOINTS[endpoint]
    resp = call(world, who, where)
    assert resp.status_code == expect(who, where), resp.get_data(as_text=True)[:300]
    if resp.status_code == 302:
        location = resp.headers["Location"]
        assert ("/login" in location) == (who in NOT_STAFF), location
    if endpoint.endswith("/reveal"):
        shown = "13812345678" in resp.get_data(as_text=True)
        assert shown == (resp.status_code == 200)  # in clear to those allowed, and only them


@pytest.mark.postgres_only
@pytest.mark.parametrize("who", CALLERS)
def test_case_list_is_scoped(world, who):
    resp = world.app.test_client().get("/api/v1/cases", headers=world.bearer(who))
    if who in NOT_STAFF:
        assert resp.status_code == 401
        return
    seen = {c["id"] for c in resp.get_json()["items"]}
    expected = set(world.cases.values()) if who == "admin" else {world.cases["own"]}
    assert seen == expected


def reveal_counts(world) -> dict[int, int]:
    from sqlalchemy import func, select

    from models import CaseEvent
    from service.extensions import db
    with world.app.app_context():
        return dict(db.session.execute(select(CaseEvent.case_id, func.count()).where(
            CaseEvent.action == "reveal").group_by(CaseEvent.case_id)).all())


@pytest.mark.postgres_only
def test_every_reveal_that_was_shown_is_in_the_history(world):
    """Each reveal shown in clear leaves exactly one history entry, and no refused one does.

    The test makes every reveal itself (API and web, each caller, each case), so it means
    the same run alone or after the table above."""
    before = reveal_counts(world)
    shown = []
    for endpoint in ("POST /api/v1/cases/{id}/reveal", "POST /cases/{id}/reveal"):
        call, _ = ENDPOINTS[endpoint]
        for who in CALLERS:
            for where in WHERE:
                if "13812345678" in call(world, who, where).get_data(as_text=True):
                    shown.append(world.cases[where])
    # API and web, by the assignee and the supervisor, on the own case only
    assert sorted(shown) == [world.cases["own"]] * 4
    after = reveal_counts(world)
    added = {cid: n - before.get(cid, 0) for cid, n in after.items() if n != before.get(cid, 0)}
    assert added == {world.cases["own"]: 4}


def test_matrix_covers_every_api_operation(client):
    """A new API operation must be added to the table above."""
    doc = client.get("/api/v1/openapi.json").get_json()
    operations = {f"{m.upper()} {re.sub(r'{[a-z_]+}', '{id}', p)}" for p, ops in doc["paths"].items()
                  for m in ops if m in ("get", "post", "put", "patch", "delete")}
    covered = {n.split("?")[0] for n in ENDPOINTS if n.startswith(("GET /api", "POST /api", "PUT /api"))}
    # Token sign-in and revocation are covered by tests/test_staff_auth.py; the case list by
    # test_case_list_is_scoped.
    elsewhere = {"POST /api/v1/auth/token", "DELETE /api/v1/auth/token", "GET /api/v1/cases"}
    assert operations - covered - elsewhere == set()
