"""Out-of-range input found by the schemathesis run: a 4xx, never a 500."""
from __future__ import annotations

import pytest

from tests.support import bearer

HUGE = "99999999999999999999"  # beyond a 64-bit id


@pytest.fixture
def admin_token(org):
    return org.token(org.user("root", "admin", org.department("d1")))


@pytest.mark.parametrize("method,path", [
    ("get", f"/api/v1/cases/{HUGE}"), ("get", f"/api/v1/ratings/{HUGE}"),
    ("post", f"/api/v1/cases/{HUGE}/actions"), ("post", f"/api/v1/cases/{HUGE}/reveal"),
])
def test_ids_beyond_64_bits_are_404(client, admin_token, method, path):
    resp = getattr(client, method)(path, headers=bearer(admin_token), json={"action": "assign"})
    assert resp.status_code == 404


def test_a_page_beyond_any_offset_is_422(client, admin_token):
    resp = client.get(f"/api/v1/cases?page={HUGE}", headers=bearer(admin_token))
    assert resp.status_code == 422 and "page" in str(resp.get_json()["errors"])


def test_the_document_states_the_bounds_and_the_callers(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    param = doc["paths"]["/api/v1/cases/{case_id}"]["parameters"][0]
    assert param["schema"]["maximum"] == 2**63 - 1
    assert set(doc["components"]["securitySchemes"]) == {"deviceKey", "staffToken", "clientKey"}
    assert doc["paths"]["/api/v1/clients/me"]["get"]["security"] == [{"clientKey": []}]
    assert doc["paths"]["/api/v1/reasons"]["get"]["security"] == [{"deviceKey": []}, {"clientKey": []},
                                                                  {"staffToken": []}]
    post = doc["paths"]["/api/v1/ratings"]["post"]
    assert post["security"] == [{"deviceKey": []}] and {"400", "401", "429"} <= set(post["responses"])
    get = doc["paths"]["/api/v1/cases"]["get"]
    assert get["security"] == [{"staffToken": []}] and "401" in get["responses"]
    assert "security" not in doc["paths"]["/api/v1/auth/token"]["post"]
