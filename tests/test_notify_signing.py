"""DingTalk robots secured by signature (加签): the secret is kept encrypted, every post signed.

DingTalk checks ``sign`` = Base64(HMAC-SHA256(key=secret, "{timestamp}\\n{secret}")) with
``timestamp`` in milliseconds, at most an hour old; a robot with 加签 on refuses anything else.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from models import Department
from tests.support import RobotServer

SECRET = "SEC0123456789abcdef加签"


@pytest.fixture
def robot():
    server = RobotServer()
    yield server
    server.stop()


def expected_sign(timestamp: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_signed_robot_posts_carry_a_fresh_valid_signature(app, org, query, robot, shell):
    from service import notify
    from service.extensions import db

    url, posts = robot.url("d1"), robot.posts
    dept = org.department("d1")
    out = shell("departments", "notify", "d1", "--webhook", url, "--secret", "-", stdin=SECRET + "\n").stdout
    assert "signed" in out and SECRET not in out and "secret-d1" not in out
    stored = query(lambda s: s.scalar(select(Department.notify_webhook_secret_enc)))
    assert stored and SECRET not in stored  # encrypted, not in clear

    before_ms = int(time.time() * 1000)
    with app.app_context():
        notify.send_webhook({"department_id": dept.id, "content": "【好差评】测试"},
                            app.config["HCP_SETTINGS"], db.session)
    after_ms = int(time.time() * 1000)
    (path, body), = posts
    params = parse_qs(urlsplit(path).query)
    assert params["key"] == ["secret-d1"] and body["text"]["content"] == "【好差评】测试"
    timestamp = params["timestamp"][0]
    assert before_ms <= int(timestamp) <= after_ms  # signed while sending, not when configured
    assert params["sign"] == [expected_sign(timestamp, SECRET)]

    # Without a secret the URL goes as it was given.
    shell("departments", "notify", "d1", "--secret", "")
    with app.app_context():
        notify.send_webhook({"department_id": dept.id, "content": "x"}, app.config["HCP_SETTINGS"], db.session)
    assert parse_qs(urlsplit(posts[1][0]).query) == {"key": ["secret-d1"]}
