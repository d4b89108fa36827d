"""数据上报 (SPEC §8, §12): the outbox's counts and reasons for admins, and the requeue
button (CSRF, recorded in the 操作日志)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models import AuditEntry, OutboxRecord, rating_record_id
from tests.support import bearer
from tests.test_exchange_push import rate, run_push
from tests.web_support import add_staff, csrf_token, login


@pytest.fixture
def staff(app, org):
    hall = org.department("hall", "政务服务中心")
    add_staff(app, [(r, r, hall, r) for r in ("handler", "supervisor", "manager", "admin")])
    _, key = org.device(hall)
    return hall, key


def tile(page: str, state: str) -> int:
    return int(re.search(rf'data-state="{state}"><span class="label">[^<]+</span><strong>(\d+)</strong>', page)[1])


def test_the_page_shows_the_counts_and_the_reasons_in_chinese(app, client, staff, platform):
    ids = rate(client, staff[1], 3)
    platform.rejects = {rating_record_id(ids[0]): "办件编号不存在"}
    run_push(app)
    rate(client, staff[1], 2)
    login(client, "admin")
    page = client.get("/admin/exchange").get_data(as_text=True)
    assert "数据上报" in page and "被拒收" in page and "办件编号不存在" in page
    assert (tile(page, "pending"), tile(page, "sent"), tile(page, "rejected"), tile(page, "held")) == (2, 2, 1, 0)
    assert "gbt39046" in page and "330106" in page


def test_the_requeue_button_requeues_the_rejected_when_ticked_and_is_audited(app, client, staff, platform, query):
    ids = rate(client, staff[1], 2)
    platform.rejects = {rating_record_id(i): "暂不接收" for i in ids}
    run_push(app)
    login(client, "admin")
    token = csrf_token(client.get("/admin/exchange").get_data(as_text=True))
    assert client.post("/admin/exchange/requeue", data={}).status_code == 400  # no CSRF token
    resp = client.post("/admin/exchange/requeue", data={"csrf_token": token}, follow_redirects=True)
    assert "已将 0 条记录重新排入上报队列" in resp.get_data(as_text=True)
    resp = client.post("/admin/exchange/requeue", data={"csrf_token": token, "rejected": "1"}, follow_redirects=True)
    assert "已将 2 条记录重新排入上报队列" in resp.get_data(as_text=True)
    assert {r.status for r in query(lambda s: s.scalars(select(OutboxRecord)).all())} == {"pending"}
    entries = query(lambda s: s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all())
    assert [(e.actor, e.action, e.after["记录数"]) for e in entries] == [
        ("admin", "exchange.requeue", 0), ("admin", "exchange.requeue", 2)]


@pytest.mark.parametrize("role", ["handler", "supervisor", "manager"])
def test_only_admins_see_or_requeue(app, client, staff, role):
    login(client, role)
    assert client.get("/admin/exchange").status_code == 403
    token = csrf_token(client.get("/cases").get_data(as_text=True))
    assert client.post("/admin/exchange/requeue", data={"csrf_token": token}).status_code == 403


def test_signed_out_goes_to_the_login_page(app, client):
    resp = client.get("/admin/exchange")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_a_device_key_gets_no_page(app, client, staff):
    assert client.get("/admin/exchange", headers=bearer(staff[1])).status_code == 302
