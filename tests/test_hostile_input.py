"""No input makes a 5xx (SPEC §11, issue 11 #2, #3, #10): NUL, lone surrogates, deep
nesting, huge numbers and absurd dates are 422 naming the field; in a batch that item is
``invalid`` and the others stored; a body over HCP_MAX_BODY_BYTES is 413 on every route."""
from __future__ import annotations

import json

import pytest

from models import Rating
from tests.support import bearer, rating_body

NUL, SURROGATE = "a\u0000b", "a\ud800b"


def post_json(client, path, body, headers=None):
    """``body`` sent as ASCII JSON (``\\u`` escapes), as a hostile client would."""
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers or {})


def count_ratings(query) -> int:
    return query(lambda s: s.query(Rating).count())


@pytest.fixture
def hall(org):
    dept = org.department("hall", "政务服务大厅")
    org.item("license", dept)
    _, key = org.device(dept)
    return dept, key


RATING_FIELDS = [
    ("comment", {"comment": NUL}), ("staff_no", {"staff_no": NUL}), ("project_no", {"project_no": NUL}),
    ("item_code", {"item_code": NUL}), ("comment", {"comment": SURROGATE}), ("tags", {"tags": [SURROGATE]}),
    ("comment", {"comment": "bell\u0007"}),
    ("rater", {"rater": {"real_name": True, "name": NUL, "phone": "13812345678"}}),
    ("rater", {"rater": {"real_name": True, "name": SURROGATE, "phone": "13812345678"}}),
    ("rater", {"rater": {"real_name": True, "name": "陈大文", "phone": "13812345678\n"}}),
    ("level", {"level": "9" * 5000}),  # written as a JSON number, see _raw_body
    ("level", {"level": "1e400"}),
    ("rated_at", {"rated_at": "0001-01-01T00:00:00+14:00"}),
    ("rated_at", {"rated_at": "1970-01-01T08:00:00+08:00"}),
    ("rated_at", {"rated_at": "1900-06-01T00:00:00+00:00"}),
    ("rated_at", {"rated_at": "1999-12-31T23:59:59+00:00"}),
]


def _raw_body(extra: dict) -> str:
    """A rating body as JSON text; a ``level`` given as text is written as a bare JSON number."""
    text = json.dumps(rating_body(level=2, **{k: v for k, v in extra.items() if k != "level"}))
    if "level" in extra:
        text = text.replace('"level": 2', f'"level": {extra["level"]}')
    return text


@pytest.mark.parametrize("field,extra", RATING_FIELDS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(RATING_FIELDS)])
def test_bad_text_numbers_and_dates_in_a_rating_are_422_naming_the_field(client, query, hall, field, extra):
    _, key = hall
    resp = client.post("/api/v1/ratings", data=_raw_body(extra), content_type="application/json",
                       headers=bearer(key))
    assert resp.status_code == 422, resp.data
    assert field in resp.get_json()["errors"]["json"]
    assert count_ratings(query) == 0


@pytest.mark.parametrize("field,extra", RATING_FIELDS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(RATING_FIELDS)])
def test_a_bad_item_in_a_batch_is_invalid_and_the_others_stored(client, query, hall, field, extra):
    _, key = hall
    good = [json.dumps(rating_body(level=5)) for _ in range(2)]
    bad = _raw_body(extra)
    resp = client.post("/api/v1/ratings/batch", data='{"ratings": [%s, %s, %s]}' % (good[0], bad, good[1]),
                       content_type="application/json", headers=bearer(key))
    assert resp.status_code == 200, resp.data
    results = resp.get_json()["results"]
    assert [r["status"] for r in results] == ["created", "invalid", "created"]
    assert field in results[1]["errors"]
    assert count_ratings(query) == 2


def test_rated_at_from_2000_is_stored(client, hall):
    _, key = hall
    resp = client.post("/api/v1/ratings", json=rating_body(level=5, rated_at="2000-01-01T00:00:00+00:00"),
                       headers=bearer(key))
    assert resp.status_code == 201


def test_json_nested_50000_deep_is_422(client, hall):
    _, key = hall
    for path in ("/api/v1/ratings", "/api/v1/ratings/batch", "/api/v1/auth/token"):
        resp = client.post(path, data="[" * 50_000 + "]" * 50_000, content_type="application/json",
                           headers=bearer(key))
        assert resp.status_code == 422, (path, resp.status_code)


def test_an_unknown_field_named_with_a_surrogate_gets_a_readable_answer(client, hall):
    _, key = hall
    resp = post_json(client, "/api/v1/ratings", {**rating_body(), "\ud800": 1}, headers=bearer(key))
    assert resp.status_code == 422
    assert json.loads(resp.data)["errors"]["json"] == {"\ufffd": ["Unknown field."]}


@pytest.mark.parametrize("body,field", [({"username": NUL, "password": "x"}, "username"),
                                        ({"username": "u", "password": SURROGATE}, "password"),
                                        ({"username": SURROGATE, "password": NUL}, "username")])
def test_sign_in_with_bad_text_is_422(client, org, body, field):
    org.user("u", "handler", org.department("d"))
    resp = post_json(client, "/api/v1/auth/token", body)
    assert resp.status_code == 422 and field in resp.get_json()["errors"]["json"]


def test_web_sign_in_with_a_nul_is_refused_not_500(client, org):
    org.user("u", "handler", org.department("d"))
    page = client.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    resp = client.post("/login", data={"csrf_token": csrf, "username": NUL, "password": "x"})
    assert resp.status_code == 400 and "username" in resp.get_data(as_text=True)


@pytest.fixture
def case_and_supervisor(app, client, org, hall):
    from service.cases.routing import route
    from service.extensions import db

    dept, key = hall
    org.user("h", "handler", dept)
    token = org.token(org.user("s", "supervisor", dept))
    rid = client.post("/api/v1/ratings", json=rating_body(level=1), headers=bearer(key)).get_json()["id"]
    with app.app_context():
        case_id = route(db.session, rid)
        db.session.commit()
    return case_id, token


@pytest.mark.parametrize("body,field", [
    ({"action": "assign", "assignee": NUL}, "assignee"),
    ({"action": "assign", "assignee": "h", "note": NUL}, "note"),
    ({"action": "assign", "assignee": "h", "note": SURROGATE}, "note"),
    ({"action": "rectify", "measures": {"cause": NUL, "action": "x"}}, "measures"),
])
def test_case_action_with_bad_text_is_422(client, case_and_supervisor, body, field):
    case_id, token = case_and_supervisor
    resp = post_json(client, f"/api/v1/cases/{case_id}/actions", body, headers=bearer(token))
    assert resp.status_code == 422 and field in resp.get_json()["errors"]["json"]


@pytest.mark.parametrize("path,arg", [("/api/v1/stats/summary", "department"), ("/api/v1/stats/summary", "item"),
                                      ("/api/v1/stats/summary", "window"), ("/api/v1/cases", "department")])
def test_query_arguments_with_a_nul_are_422_naming_them(client, org, path, arg):
    token = org.token(org.user("m", "manager", org.department("d")))
    resp = client.get(path, query_string={"from": "2026-01-01", "to": "2026-01-31", arg: NUL},
                      headers=bearer(token))
    assert resp.status_code == 422 and arg in resp.get_json()["errors"]["query"]


def test_page_query_arguments_with_a_nul_are_400(client, org):
    org.user("s", "supervisor", org.department("d"))
    page = client.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/login", data={"csrf_token": csrf, "username": "s", "password": "correct-horse-9"})
    resp = client.get("/cases", query_string={"department": NUL})
    assert resp.status_code == 400 and "department" in resp.get_data(as_text=True)


# ---------------------------------------------------------------- body size (#3)

def test_a_body_over_the_limit_is_413_before_anything_reads_it(app, client):
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit == 2 * 1024 * 1024
    huge = b'{"username": "' + b"x" * limit + b'", "password": "x"}'
    for path in ("/api/v1/auth/token", "/api/v1/ratings", "/api/v1/ratings/batch", "/login", "/healthz",
                 "/api/v1/openapi.json", "/no-such-route"):
        resp = client.post(path, data=huge, content_type="application/json")
        assert resp.status_code == 413, (path, resp.status_code)
    assert client.post("/api/v1/auth/token", data=huge, content_type="application/json").get_json()["code"] == 413


def test_a_chunked_body_over_the_limit_is_413(app, client):
    import io

    limit = app.config["MAX_CONTENT_LENGTH"]
    body = b'{"username": "' + b"x" * (limit + 10) + b'", "password": "x"}'
    resp = client.post("/api/v1/auth/token", input_stream=io.BytesIO(body), content_type="application/json",
                       headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert resp.status_code == 413


def test_a_full_batch_of_500_with_long_comments_fits(client, query, hall):
    _, key = hall
    ratings = [rating_body(level=5, comment="办事很方便" * 100, staff_no="A0001", project_no="P" * 64,
                           tags=["服务好"] * 20) for _ in range(500)]
    resp = client.post("/api/v1/ratings/batch", json={"ratings": ratings}, headers=bearer(key))
    assert resp.status_code == 200
    assert {r["status"] for r in resp.get_json()["results"]} == {"created"}
    assert count_ratings(query) == 500


# ---------------------------------------------------------------- one place at the edge

def _fields(schema, seen=None):
    """Every (path, field) of a marshmallow schema, nested schemas and list items included."""
    from marshmallow import fields

    seen = seen if seen is not None else set()
    schema = schema() if isinstance(schema, type) else schema
    if type(schema) in seen:
        return
    seen.add(type(schema))
    for name, field in schema.fields.items():
        yield f"{type(schema).__name__}.{name}", field
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.Nested):
            yield from _fields(inner.schema, seen)
        elif inner is not field:
            yield f"{type(schema).__name__}.{name}[]", inner


def test_every_api_input_goes_through_the_edge(app):
    """New endpoints cannot slip past: each API blueprint parses with the guarded parser,
    and every text an operation takes (body or query) is an ``edge.Text``."""
    import flask_smorest
    from marshmallow import fields

    from service.edge import Blueprint, Text

    smorest = [bp for bp in app.blueprints.values() if isinstance(bp, flask_smorest.Blueprint)]
    assert smorest and all(isinstance(bp, Blueprint) for bp in smorest)
    checked, plain = set(), []
    for view in app.view_functions.values():
        view_class = getattr(view, "view_class", None)
        handlers = [getattr(view_class, m.lower()) for m in view_class.methods] if view_class else [view]
        for handler in handlers:
            for param in getattr(handler, "_apidoc", {}).get("arguments", {}).get("parameters", []):
                for path, field in _fields(param["schema"]):
                    checked.add(path)
                    if isinstance(field, fields.String) and not isinstance(field, Text):
                        plain.append(path)
    assert {"RatingIn.comment", "RaterIn.name", "ActionIn.note", "StatsQuery.window",
            "TokenRequest.password"} <= checked
    assert not plain, f"plain fields.String in API input schemas: {plain}"
