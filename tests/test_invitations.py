"""Invitations (SPEC §7): one per application and rated stage, an unguessable token kept
hashed, the SMS sent by a real Celery worker to a fake gateway (retried, attempts kept),
the link and its QR code for the receipt."""
from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import func, select, text

from models import Invitation, Notification
from tests import support
from tests.support import bearer
from tests.test_projects import PHONE, body

def recent(stage="accepted", **extra):
    """A project body whose stages lie an hour ago, so its invitation is still open."""
    from datetime import datetime, timedelta, timezone

    hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    times = {"accepted_at": hour_ago} | ({"done_at": hour_ago} if stage == "done" else {})
    return body(stage, **times, **extra)


LINK = re.compile(r"(http://[^\s]+/r/([A-Za-z0-9_-]{24}))")


@pytest.fixture(scope="module")
def gateway():
    server = support.RobotServer()  # records every JSON POST; can answer 500 first
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sms_app(app, hcp_env, gateway):
    """An app and a worker of this module's own queue, both with HCP_SMS_URL set, so the
    session's worker (without it) never takes these sends."""
    from service import create_app

    env = {**hcp_env, "HCP_INSTANCE": hcp_env["HCP_INSTANCE"] + "-sms", "HCP_SMS_URL": gateway.url("sms"),
           "HCP_PUBLIC_URL": "http://hcp.example.gov.cn"}
    application = create_app(env)
    application.config["TESTING"] = True
    worker = support.CeleryWorker(env, beat=False, name="sms")
    worker.start()
    yield application
    worker.stop()
    with application.app_context():
        from service.extensions import db
        db.engine.dispose()


@pytest.fixture
def approval(app, org):
    from service.clients.registry import add_client
    from service.extensions import db

    district = org.department("district", "区政务服务中心")
    market = org.department("market", "区市场监管局", parent=district)
    org.item("license", market)
    _, key = org._build(lambda: add_client("审批系统", "approval", db.session.merge(market)))
    return {"key": key, "market": market, "org": org}


def sms_posts(gateway):
    with gateway.lock:
        return [b for path, b in gateway.posts if path.startswith("/hook/sms")]


def test_done_application_gets_one_invitation_by_sms(app, sms_app, approval, gateway, query):
    gateway.posts.clear()
    gateway.fail["/hook/sms"] = 2  # the gateway fails twice: Celery retries, attempts are kept
    client = sms_app.test_client()
    key = bearer(approval["key"])
    assert client.put("/api/v1/projects/P-1", json=recent(), headers=key).status_code == 201
    assert query(lambda s: s.scalar(select(func.count(Invitation.id)))) == 0  # accepted is not rated
    assert client.put("/api/v1/projects/P-1", json=recent("done"), headers=key).status_code == 200
    assert client.put("/api/v1/projects/P-1", json=recent("done"), headers=key).status_code == 200

    posts = support.wait_for(lambda: sms_posts(gateway), timeout=90, message="the SMS at the gateway")
    assert len(posts) == 1 and posts[0]["phone"] == PHONE
    assert "license" in posts[0]["text"] and "已办结" in posts[0]["text"]
    url, token = LINK.search(posts[0]["text"]).groups()
    assert url.startswith("http://hcp.example.gov.cn/r/")
    row = support.wait_for(lambda: query(lambda s: s.scalar(select(Notification).where(
        Notification.kind == "sms", Notification.sent_at.is_not(None)))), message="the delivery marked sent")
    assert row.attempts == 3 and row.payload == {"invitation_id": row.payload["invitation_id"]}
    assert query(lambda s: s.scalar(select(func.count(Invitation.id)))) == 1

    # The token is never stored; only its hash, and it is long enough not to be guessed.
    dump = query(lambda s: " ".join(str(v) for t in ("invitations", "notifications", "projects")
                                    for r in s.execute(text(f"SELECT * FROM {t}")) for v in r))
    assert token not in dump and PHONE not in dump
    assert len(token) * 6 >= 128

    # The approval system and staff see the same link, for the receipt.
    org = approval["org"]
    staff = org.token(org.user("h1", "handler", approval["market"]))
    for who in (approval["key"], staff):
        inv = client.get("/api/v1/projects/P-1/invitation", headers=bearer(who))
        assert inv.status_code == 200
        assert inv.get_json()["url"] == url and inv.get_json()["state"] == "pending"
    project = client.get("/api/v1/projects/P-1", headers=bearer(staff)).get_json()
    assert project["invitation"]["state"] == "pending" and "url" not in project["invitation"]

    qr = client.get(f"/r/{token}/qr.svg")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml" and b"<svg" in qr.data


def test_first_put_at_done_invites_for_each_rated_stage_and_answers_as_read_back(app, sms_app, approval, gateway,
                                                                                   query):
    """A new application's first PUT (on PostgreSQL one statement: service.projects.register.create)
    stores what the ORM path stores — an invitation and an SMS per rated stage reached — and
    answers exactly what a later read of it shows, ratings that named it before included."""
    gateway.posts.clear()
    settings = sms_app.config["HCP_SETTINGS"]
    saved = settings.rated_stages
    settings.rated_stages = ("accepted", "done")
    try:
        org = approval["org"]
        _, device_key = org.device(approval["market"])
        client = sms_app.test_client()
        earlier = client.post("/api/v1/ratings", json=support.rating_body(level=4, project_no="P-9"),
                              headers=bearer(device_key))
        assert earlier.status_code == 201
        first = client.put("/api/v1/projects/P-9", json=recent("done"), headers=bearer(approval["key"]))
        assert first.status_code == 201, first.get_json()
    finally:
        settings.rated_stages = saved
    staff = org.token(org.user("h1", "handler", approval["market"]))
    read = client.get("/api/v1/projects/P-9", headers=bearer(staff)).get_json()
    assert first.get_json() == read
    assert [r["id"] for r in read["ratings"]] == [earlier.get_json()["id"]]
    assert read["invitation"]["stage"] == "done" and read["invitation"]["state"] == "pending"
    assert read["applicant"] == {"kind": "person", "name": "陈**", "phone": "138******78"}
    invitations = query(lambda s: s.execute(select(Invitation.id, Invitation.stage)).all())
    assert sorted(stage for _, stage in invitations) == ["accepted", "done"]
    keys = query(lambda s: sorted(s.scalars(select(Notification.key).where(Notification.kind == "sms"))))
    assert keys == sorted(f"invitation:{i}:sms" for i, _ in invitations)
    posts = support.wait_for(lambda: len(sms_posts(gateway)) == 2 and sms_posts(gateway), timeout=90,
                             message="both SMS at the gateway")
    assert {p["phone"] for p in posts} == {PHONE} and {"已受理" in p["text"] for p in posts} == {True, False}
    dump = query(lambda s: " ".join(str(v) for r in s.execute(text("SELECT * FROM projects")) for v in r))
    assert PHONE not in dump and "陈小明" not in dump


def test_without_a_gateway_the_sms_is_logged_without_the_phone(app, approval, caplog, query):
    from service import notify
    from service.extensions import db
    from service.projects import register
    from service.projects.schemas import ProjectIn

    with app.app_context():  # registered in-process: no task is sent, so no worker takes the delivery
        done = register.upsert(db.session, db.session.merge(_client(approval)), "P-2", ProjectIn().load(recent("done")))
        db.session.commit()
    with app.app_context(), caplog.at_level(logging.INFO):
        outcome = notify.deliver(db.session, done.sms[0])
        db.session.commit()
    assert outcome == "sent", outcome
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "HCP_SMS_URL unset" in logged and "/r/" in logged and PHONE not in logged


def test_rated_stages_and_no_phone(app, approval, query):
    from service.extensions import db
    from service.invitations import issue
    from service.projects import register
    from service.projects.schemas import ProjectIn

    settings = app.config["HCP_SETTINGS"]
    saved = settings.rated_stages
    settings.rated_stages = ("accepted", "done")
    try:
        with app.app_context():
            client = db.session.merge(_client(approval))
            no_phone = ProjectIn().load(body("done", applicant={"kind": "legal", "name": "某某有限公司"}))
            done = register.upsert(db.session, client, "P-3", no_phone)
            db.session.commit()
            assert done.sms == []  # nobody to text: the receipt's QR code is the invitation
            assert sorted(i.stage for i in db.session.scalars(select(Invitation))) == ["accepted", "done"]
            settings.rated_stages = ("archived",)
            with pytest.raises(ValueError, match="HCP_RATED_STAGES"):
                issue.rated_stages()
    finally:
        settings.rated_stages = saved


def _client(approval):
    from models import IntegrationClient
    from service.extensions import db
    return db.session.scalar(select(IntegrationClient))


def test_unknown_tokens_are_a_chinese_page_and_rate_limited(app, client):
    resp = client.get("/r/" + "A" * 24 + "/qr.svg")
    assert resp.status_code == 404 and "链接无效" in resp.get_data(as_text=True)
    statuses = [client.get(f"/r/guess{i:019d}/qr.svg").status_code for i in range(25)]
    assert statuses.count(429) >= 1 and 500 not in statuses
    limited = client.get("/r/x/qr.svg")
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    assert "尝试次数过多" in limited.get_data(as_text=True)


def _register_done(approval, how_many: int) -> list[int]:
    """``how_many`` done applications registered in-process (no task sent): their SMS deliveries."""
    from service.extensions import db
    from service.projects import register
    from service.projects.schemas import ProjectIn

    client = db.session.merge(_client(approval))
    made = [register.upsert(db.session, client, f"P-B{i}", ProjectIn().load(recent("done"))).sms[0]
            for i in range(how_many)]
    db.session.commit()
    return made


def _attempts(query) -> dict[int, tuple[int, bool, str | None]]:
    return {r.id: (r.attempts, r.sent_at is not None, r.last_error) for r in query(lambda s: s.execute(
        select(Notification.id, Notification.attempts, Notification.sent_at, Notification.last_error)
        .where(Notification.kind == "sms")).all())}


def test_sms_go_out_in_batches_with_each_attempt_kept(sms_app, approval, gateway, query):
    """One batch sends every SMS never tried (service.notify.deliver_batch); one the gateway
    refused keeps its attempt and error and is sent again by its id (the task's retry)."""
    from service import notify
    from service.extensions import db

    gateway.posts.clear()
    with sms_app.app_context():
        made = _register_done(approval, 3)
        gateway.fail["/hook/sms"] = 1
        done = notify.deliver_batch(db.session, "sms")
        db.session.commit()
        assert (done.taken, done.failed, done.sent) == (3, made[:1], made[1:])
        assert notify.deliver_batch(db.session, "sms").taken == 0  # tried once: left to the retry
        db.session.commit()
        again = notify.deliver_batch(db.session, "sms", made)  # the retry names them all; two are sent
        db.session.commit()
        assert (again.taken, again.sent) == (1, made[:1])
    rows = _attempts(query)
    assert {i: rows[i][:2] for i in made} == {made[0]: (2, True), made[1]: (1, True), made[2]: (1, True)}
    assert rows[made[0]][2] is None
    assert sorted(p["phone"] for p in sms_posts(gateway)) == [PHONE] * 3


def test_an_unreachable_gateway_ends_the_batch_and_leaves_the_rest_untried(app, approval, query):
    import socket

    from service import notify
    from service.extensions import db

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = app.config["HCP_SETTINGS"]
    saved = settings.sms_url
    settings.sms_url = f"http://127.0.0.1:{port}/sms"
    try:
        with app.app_context():
            made = _register_done(approval, 3)
            done = notify.deliver_batch(db.session, "sms")
            db.session.commit()
    finally:
        settings.sms_url = saved
    assert (done.failed, done.untried, done.sent) == (made[:1], made[1:], [])
    rows = _attempts(query)
    assert rows[made[0]][:2] == (1, False) and f"127.0.0.1:{port}" in rows[made[0]][2] and PHONE not in rows[made[0]][2]
    assert [rows[i] for i in made[1:]] == [(0, False, None)] * 2  # never tried: a later batch or the sweep sends them


def test_batched_sends_share_one_task_until_it_starts(app):
    """service.dispatch.send_coalesced: a second call while the first task waits sends nothing;
    once the task has started (coalesced_started), the next call sends again. Without Redis
    (the embedded deployment) every call sends its own."""
    from service import dispatch

    name, kind = "test-coalesce", "test-nothing"  # a kind with no deliveries: the tasks find nothing to do
    with app.app_context():
        with_redis = app.config["HCP_SETTINGS"].redis_url is not None
        try:
            sent = [dispatch.send_coalesced(name, "send_batch", kind, countdown=0, fallback_args=(kind, []))
                    for _ in range(2)]
            dispatch.coalesced_started(name)
            sent.append(dispatch.send_coalesced(name, "send_batch", kind, countdown=0, fallback_args=(kind, [])))
        finally:
            dispatch.coalesced_started(name)
    assert sent == ([True, False, True] if with_redis else [True, True, True])


def test_a_call_that_finds_the_flag_set_learns_how_long_it_stays(app):
    """A process that finds another's flag (here: one set straight in Redis) does not ask again
    for half the countdown after the flag was set (the flag's age read in the same round trip),
    and asks at once when that time has already passed."""
    from service import dispatch
    from service.shared_redis import shared

    name, kind = "test-coalesce-age", "test-nothing"
    with app.app_context():
        flags = shared()
        if flags.redis is None:
            pytest.skip("no shared Redis: every call sends its own task")
        key, known = flags.key(f"pending:{name}"), app.extensions.setdefault("hcp_coalesced_until", {})
        try:
            flags.redis.set(key, b"1", ex=dispatch.PENDING_TTL)  # another process's call, just now
            assert dispatch.send_coalesced(name, "send_batch", kind, countdown=10, fallback_args=(kind, [])) is False
            flags.redis.delete(key)  # Redis is not asked again within the 5 s it learnt
            assert dispatch.send_coalesced(name, "send_batch", kind, countdown=10, fallback_args=(kind, [])) is False

            known.pop(key)
            flags.redis.set(key, b"1", px=(dispatch.PENDING_TTL - 6) * 1000)  # set 6 s ago: past half of 10 s
            assert dispatch.send_coalesced(name, "send_batch", kind, countdown=10, fallback_args=(kind, [])) is False
            flags.redis.delete(key)  # the task started: the next call asks and sends one
            assert dispatch.send_coalesced(name, "send_batch", kind, countdown=10, fallback_args=(kind, [])) is True
        finally:
            known.pop(key, None)
            dispatch.coalesced_started(name)
