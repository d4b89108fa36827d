"""Small hardening (SPEC §11, issue 11 #8 and #11): metric labels from fixed sets, request
ids kept only when short and plain, path ids in ASCII digits only."""
from __future__ import annotations

import uuid

import pytest

from tests.support import bearer, rating_body


def test_metric_labels_come_from_fixed_sets(client):
    for i in range(30):
        client.open(f"/api/v1/cases/{i}", method=f"X{uuid.uuid4().hex[:8].upper()}")
        client.get(f"/no-such-page-{uuid.uuid4().hex}")
    text = client.get("/metrics").get_data(as_text=True)
    lines = [line for line in text.splitlines() if line.startswith("hcp_http_requests_total{")]
    methods = {line.split('method="')[1].split('"')[0] for line in lines}
    endpoints = {line.split('endpoint="')[1].split('"')[0] for line in lines}
    assert "other" in methods and methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert "unmatched" in endpoints and not any("no-such-page" in e for e in endpoints)


@pytest.mark.parametrize("sent,kept", [("abc-123_X.y:z", True), ("a" * 64, True), ("a" * 65, False),
                                       ("a" * 5000, False), ("has space", False), ('quo"te', False),
                                       ("中文", False), ("", False)])
def test_a_client_request_id_is_kept_only_if_short_and_plain(client, org, query, sent, kept):
    _, key = org.device(org.department("d"))
    resp = client.post("/api/v1/ratings", json=rating_body(level=5), headers={**bearer(key), "X-Request-ID": sent})
    assert resp.status_code == 201
    echoed = resp.headers["X-Request-ID"]
    assert (echoed == sent) is kept
    assert 1 <= len(echoed) <= 64
    from models import Rating
    assert query(lambda s: s.get(Rating, resp.get_json()["id"]).request_id) == echoed


FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def test_path_ids_are_ascii_digits_only(app, client, org):
    """A rating that exists is found by its id, but not by the same id in full-width digits."""
    from werkzeug.exceptions import NotFound

    _, key = org.device(org.department("d"))
    token = org.token(org.user("a", "admin", org.department("e")))
    rid = client.post("/api/v1/ratings", json=rating_body(level=5), headers=bearer(key)).get_json()["id"]
    assert client.get(f"/api/v1/ratings/{rid}", headers=bearer(token)).status_code == 200
    assert client.get(f"/api/v1/ratings/{str(rid).translate(FULL_WIDTH)}", headers=bearer(token)).status_code == 404
    adapter = app.url_map.bind("localhost")
    for path in ("/api/v1/cases/３", "/api/v1/cases/٣", "/cases/３", "/api/v1/cases/³"):
        with pytest.raises(NotFound):
            adapter.match(path)
