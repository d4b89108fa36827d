"""Every operation of /api/v1/openapi.json fuzzed by schemathesis, as every kind of caller.

Each generated request is sent as a device, an integration client, a handler, supervisor,
manager and admin (bearer tokens), and anonymously. Hypothesis' text rarely holds the
characters that broke hcp before (issue 11: NUL, lone surrogates, control characters), so
in most cases about half the generated strings of the body and the query are swapped for
one of HOSTILE — chosen from the case, so runs repeat exactly. Whatever the
input and whoever the caller: no 5xx, the status is one the document lists for the
operation, and the body matches the documented schema of that status. Path ids are often swapped for ids that exist, so
the fuzzing reaches past the 404s into real cases and ratings.
"""
from __future__ import annotations

import json
import os
import random

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error,
                                 response_schema_conformance, status_code_conformance)

from tests import support
from tests.stack import Stack

EXAMPLES = int(os.environ.get("HCP_FUZZ_EXAMPLES", "25"))


def status_listed_by_name(ctx, response, case):
    """Stricter than status_code_conformance: flask-smorest gives every operation a
    ``default`` error response, which would excuse any status; here it must be listed."""
    if case.method.upper() != case.operation.method.upper():
        return  # a negative case sent with another verb: 405 is the router's answer
    listed = {str(code) for code in case.operation.responses.status_codes} - {"default"}
    if str(response.status_code) not in listed:
        raise AssertionError(f"{case.operation.label} answered {response.status_code}, "
                             f"documented: {sorted(listed)}")


# Strings that made 500s (issue 11 #2), and their relatives. Query strings travel as UTF-8
# in the URL, where a surrogate cannot go; JSON bodies carry it as a \u escape.
HOSTILE = ["\x00", "a\x00b", "\x07bell", "\x1b[31m", "\u202eevil", "=1+1", "\U0001F600" * 40]
HOSTILE_BODY = HOSTILE + ["\ud800", "x\udfffy"]


def _poison(value, rnd, hostile):
    """``value`` with about half its strings (and a few object keys) replaced by ``hostile``."""
    if isinstance(value, str):
        return hostile if rnd.random() < 0.5 else value
    if isinstance(value, list):
        return [_poison(v, rnd, hostile) for v in value]
    if isinstance(value, dict):
        return {(hostile if rnd.random() < 0.05 else k): _poison(v, rnd, hostile) for k, v in value.items()}
    return value


def poison(case, rnd) -> dict:
    """For most cases, one hostile string in place of some generated strings of the query
    and the body. Returns the ``case.call`` arguments that send the body: as ASCII JSON
    (backslash-u escapes), since schemathesis' own checks of ``case.body`` cannot take surrogates."""
    if rnd.random() >= 0.6:
        return {}
    if case.query:
        case.query = _poison(case.query, rnd, rnd.choice(HOSTILE))
    if isinstance(case.body, (dict, list)):
        return {"data": json.dumps(_poison(case.body, rnd, rnd.choice(HOSTILE_BODY))).encode()}
    return {}


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, status_listed_by_name]
ROLES = ("handler", "supervisor", "manager", "admin")


class World:
    """A small district to fuzz against: departments, a device, one user per role, and
    ratings with cases (real-name and anonymous)."""

    def __init__(self, tmp):
        self.redis = support.RedisServer(tmp / "redis")
        self.redis.workdir.mkdir()
        self.redis.start()
        (tmp / "var").mkdir()
        self.stack = Stack(tmp / "var", self.redis)
        self.app = self.stack.migrate()
        org = support.Org(self.app)
        district = org.department("district", "区政务服务中心")
        hall = org.department("hall", "政务服务大厅", parent=district)
        org.department("market", "市场监管局", parent=district)
        org.item("license", hall)
        _, self.device_key = org.device(hall, name="kiosk")
        self.client_key = self._client(district)
        self.users = {role: org.user(role, role, district if role in ("manager", "admin") else hall)
                      for role in ROLES}
        self.tokens = {role: org.token(user) for role, user in self.users.items()}
        client = self.app.test_client()
        self.rating_ids, self.case_ids = [], []
        for level, rater in [(1, {"real_name": True, "name": "欧阳明", "phone": "13987654321"}),
                             (2, None), (5, None)]:
            body = support.rating_body(level=level, **({"rater": rater} if rater else {}))
            self.rating_ids.append(client.post("/api/v1/ratings", json=body,
                                               headers=support.bearer(self.device_key)).get_json()["id"])
        from service.cases import routing
        from service.extensions import db
        with self.app.app_context():
            self.case_ids = [routing.route(db.session, rid) for rid in self.rating_ids[:2]]
            db.session.commit()

    def _client(self, district) -> str:
        from service.clients.registry import add_client
        from service.extensions import db
        with self.app.app_context():
            _, key = add_client("approval system", "approval", db.session.merge(district))
            db.session.commit()
        return key

    def callers(self) -> dict:
        out = {"anonymous": {}, "device": support.bearer(self.device_key), "client": support.bearer(self.client_key)}
        out.update({role: support.bearer(token) for role, token in self.tokens.items()})
        return out

    def fresh_token(self, role: str) -> str:
        """A token of its own for a call that may revoke the one it uses."""
        from models import User
        from service.auth.access import issue_token
        from service.extensions import db
        with self.app.app_context():
            raw, _ = issue_token(db.session.get(User, self.users[role].id))
            db.session.commit()
        return raw

    def close(self):
        self.stack.stop()
        self.redis.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("fuzz"))
    collection_app, APP.target = APP.target, w.app
    yield w
    APP.target = collection_app
    w.close()


class LateApp:
    """The WSGI app schemathesis calls: hcp's document at collection time, then the
    ``world`` fixture's app (built with its own database) once the test runs."""

    def __init__(self):
        import tempfile

        from service import create_app
        self.target = create_app({"HCP_VAR_DIR": tempfile.mkdtemp(prefix="hcp-fuzz-"),
                                  "HCP_DATABASE_URL": "sqlite://", "HCP_DATA_KEY": support.TEST_DATA_KEY,
                                  "HCP_SECRET_KEY": "fuzz-collection-only"})

    def __call__(self, environ, start_response):
        return self.target(environ, start_response)


APP = LateApp()
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_5xx_and_documented_answers_for_every_caller(case, world):
    rnd = random.Random(repr(case.path_parameters) + repr(case.body))
    if "case_id" in (case.path_parameters or {}) and rnd.random() < 0.6:
        case.path_parameters["case_id"] = rnd.choice(world.case_ids)
    if "rating_id" in (case.path_parameters or {}) and rnd.random() < 0.6:
        case.path_parameters["rating_id"] = rnd.choice(world.rating_ids)
    body = poison(case, rnd)
    revoking = case.method.upper() == "DELETE" and case.path.endswith("/auth/token")
    for who, headers in world.callers().items():
        if revoking and who in ROLES:
            headers = support.bearer(world.fresh_token(who))
        response = case.call(headers={**(case.headers or {}), **headers}, **body)
        case.validate_response(response, checks=CHECKS)
