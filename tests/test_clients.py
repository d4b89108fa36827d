"""Integration clients (SPEC §7): keys printed once and stored hashed, and each kind of
key refused where another kind is expected."""
from __future__ import annotations

from sqlalchemy import select

from models import IntegrationClient
from service.privacy import key_digest
from tests.support import bearer, rating_body


def _client(org, app, kind="approval", dept=None):
    from service.clients.registry import add_client
    from service.extensions import db

    dept = dept or org.department("d1", "区政务服务中心")
    return org._build(lambda: add_client("审批系统", kind, db.session.merge(dept)))


def test_add_list_disable_enable(app, client, query, shell):
    shell("departments", "add", "district", "区政务服务中心")
    proc = shell("clients", "add", "审批系统", "--kind", "approval", "--department", "district",
               "--callback-url", "https://approval.example/hcp?token=abc")
    key = proc.stdout.strip()
    assert key.startswith("hcpc_") and "shown once" in proc.stderr
    stored = query(lambda s: s.scalar(select(IntegrationClient.key_hash)))
    assert stored == key_digest(key) and key not in stored

    me = client.get("/api/v1/clients/me", headers=bearer(key))
    assert me.status_code == 200
    assert me.get_json() == {"id": me.get_json()["id"], "name": "审批系统", "kind": "approval",
                             "department": "district"}
    cid = str(me.get_json()["id"])

    listed = shell("clients", "list").stdout
    assert "审批系统\tapproval\tdistrict" in listed and "active" in listed
    assert key not in listed and "abc" not in listed  # the key never, the URL's query redacted

    shell("clients", "disable", cid)
    assert client.get("/api/v1/clients/me", headers=bearer(key)).status_code == 401
    assert "disabled" in shell("clients", "list").stdout
    shell("clients", "enable", cid)
    assert client.get("/api/v1/clients/me", headers=bearer(key)).status_code == 200


def test_cli_refuses_bad_input(app, shell):
    shell("departments", "add", "district", "区政务服务中心")
    for args in (["--kind", "fax", "--department", "district"],
                 ["--kind", "approval", "--department", "nope"],
                 ["--kind", "approval", "--department", "district", "--callback-url", "ftp://x"]):
        assert shell("clients", "add", "x", *args, check=False).returncode != 0
    assert "no client" in shell("clients", "disable", "999", check=False).stderr


def test_client_key_refused_on_device_and_staff_endpoints(app, client, org):
    _, key = _client(org, app)
    assert client.post("/api/v1/ratings", json=rating_body(), headers=bearer(key)).status_code == 401
    assert client.post("/api/v1/ratings/batch", json={"ratings": [rating_body()]},
                       headers=bearer(key)).status_code == 401
    assert client.get("/api/v1/cases", headers=bearer(key)).status_code == 401
    assert client.get("/api/v1/stats/summary?from=2026-01-01&to=2026-01-31",
                      headers=bearer(key)).status_code == 401


def test_device_and_staff_keys_refused_on_client_endpoints(app, client, org):
    dept = org.department("d1")
    _, device_key = org.device(dept)
    token = org.token(org.user("admin1", "admin", dept))
    for credential in (device_key, token, "hcpc_" + "x" * 43):
        assert client.get("/api/v1/clients/me", headers=bearer(credential)).status_code == 401
    assert client.get("/api/v1/clients/me").status_code == 401


def test_a_disabled_client_is_refused_at_once_by_every_web_process(app, client, org, hcp_env, shell):
    """Client rows are kept per process under the clients' version in the shared Redis
    (service.auth.clients), which each process reads at most every VERSION_TICK seconds: a
    second app, as another web process, keeps its own, and both refuse the key as soon as
    ``hcp clients disable`` returns, right after both used it."""
    from service import create_app

    other = create_app(hcp_env)
    other.config["TESTING"] = True
    try:
        me, key = _client(org, app)
        webs = (client, other.test_client())
        for _ in range(2):  # the second time from each process's own copy, where it keeps one
            assert [w.get("/api/v1/clients/me", headers=bearer(key)).status_code for w in webs] == [200, 200]
        shell("clients", "disable", str(me.id))
        assert [w.get("/api/v1/clients/me", headers=bearer(key)).status_code for w in webs] == [401, 401]
        shell("clients", "enable", str(me.id))
        assert [w.get("/api/v1/clients/me", headers=bearer(key)).status_code for w in webs] == [200, 200]
    finally:
        with other.app_context():
            from service.extensions import db
            db.engine.dispose()
