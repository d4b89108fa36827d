"""HCP_DATA_KEY rotation without losing rater data (``hcp keys rotate-data``).

The documented order: old key only → new key added first (``new,old``) → rotate → old
key dropped. Rater names and phones posted under the old key must still open at the end,
and nothing must still need the old key.
"""
from __future__ import annotations

import os
import subprocess
from datetime import datetime

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select

from models import Department, Project, Rating
from tests import support
from tests.support import TEST_DATA_KEY, bearer, rating_body

RATERS = [("欧阳明", "13987654321"), ("陈大文", "13812345678"), ("李四", "15900001111")]


def hcp(*args, data_key: str, **kwargs) -> subprocess.CompletedProcess:
    return support.hcp(*args, env={**os.environ, "HCP_DATA_KEY": data_key}, **kwargs)


def stored_tokens(query) -> list[tuple[str, str]]:
    return query(lambda s: [(r.rater_name_enc, r.rater_phone_enc) for r in
                            s.scalars(select(Rating).where(Rating.real_name.is_(True)).order_by(Rating.id))])


def opened(tokens, *keys) -> list[tuple[str, str]]:
    from cryptography.fernet import MultiFernet
    f = MultiFernet([Fernet(k) for k in keys])
    return [(f.decrypt(n.encode()).decode(), f.decrypt(p.encode()).decode()) for n, p in tokens]


def test_rotate_then_drop_the_old_key(app, client, org, query):
    old = TEST_DATA_KEY  # the key the app under test encrypts with
    dept = org.department("d1")
    _, key = org.device(dept)
    for name, phone in RATERS:
        body = rating_body(level=1, rater={"real_name": True, "name": name, "phone": phone})
        assert client.post("/api/v1/ratings", json=body, headers=bearer(key)).status_code == 201
    client.post("/api/v1/ratings", json=rating_body(level=5), headers=bearer(key))  # anonymous: nothing to rotate
    _register_project(app, org, dept)
    hcp("departments", "notify", "d1", "--webhook", "https://oapi.dingtalk.com/robot/send?access_token=t",
        "--secret", "-", data_key=old, stdin="SECrobot\n")
    before = stored_tokens(query)
    assert opened(before, old) == RATERS

    new = Fernet.generate_key().decode()
    out = hcp("keys", "rotate-data", "--batch-size", "2", data_key=f"{new},{old}").stdout
    assert "8 rater fields and 1 webhook secret(s)" in out
    secret = query(lambda s: s.scalar(select(Department.notify_webhook_secret_enc)))
    assert Fernet(new).decrypt(secret.encode()) == b"SECrobot"

    after = stored_tokens(query)
    assert all(a != b for pair_a, pair_b in zip(after, before) for a, b in zip(pair_a, pair_b))
    assert opened(after, new) == RATERS  # the new key alone opens everything
    applicant = query(lambda s: s.execute(select(Project.applicant_name_enc, Project.applicant_phone_enc)).one())
    assert opened([applicant], new) == [("周申请", "13600002222")]
    with pytest.raises(InvalidToken):
        opened(after, old)  # and nothing needs the old key any more

    # Running it again (e.g. after an interruption) is harmless.
    hcp("keys", "rotate-data", data_key=f"{new},{old}")
    assert opened(stored_tokens(query), new) == RATERS


def _register_project(app, org, dept):
    from service.clients.registry import add_client
    from service.extensions import db
    from service.projects import register

    item = org.item("license", dept)
    client, _ = org._build(lambda: add_client("审批系统", "approval", db.session.merge(dept)))
    with app.app_context():
        register.upsert(db.session, db.session.merge(client), "P-1", {
            "item_code": item.code, "stage": "accepted",
            "accepted_at": datetime.fromisoformat("2026-11-20T09:00:00+08:00"),
            "applicant": {"kind": "person", "name": "周申请", "phone": "13600002222"}})
        db.session.commit()


def test_rotation_without_the_old_key_stops_and_says_which_rating(app, client, org, query):
    dept = org.department("d1")
    _, key = org.device(dept)
    body = rating_body(level=2, rater={"real_name": True, "name": "王五", "phone": "13700001234"})
    rid = client.post("/api/v1/ratings", json=body, headers=bearer(key)).get_json()["id"]
    before = stored_tokens(query)
    proc = hcp("keys", "rotate-data", data_key=Fernet.generate_key().decode(), check=False)
    assert proc.returncode != 0 and f"rating {rid}" in proc.stderr
    assert stored_tokens(query) == before  # nothing rewritten


def test_generate_prints_a_usable_key():
    key = hcp("keys", "generate", data_key=TEST_DATA_KEY).stdout.strip()
    Fernet(key)
