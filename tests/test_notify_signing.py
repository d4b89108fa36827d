"""DingTalk robots secured by signature (加签): the secret is kept encrypted, every post signed.

DingTalk checks ``sign`` = Base64(HMAC-SHA256(key=secret, "{timestamp}\\n{secret}")) with
``timestamp`` in milliseconds, at most an hour old; a robot with 加签 on refuses anything else.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from models import Department

HCP = shutil.which("hcp", path=str(Path(sys.executable).parent)) or "hcp"
SECRET = "SEC0123456789abcdef加签"


@pytest.fixture
def robot():
    """A robot webhook on 127.0.0.1 that keeps the full path of each post and its JSON."""
    posts = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append((self.path, json.loads(body.decode("utf-8"))))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"errcode": 0, "errmsg": "ok"}')

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/robot/send?access_token=tok", posts
    server.shutdown()
    server.server_close()


def hcp(*args, stdin=None):
    return subprocess.run([HCP, *args], capture_output=True, text=True, env=os.environ, input=stdin,
                          timeout=120, check=True)


def expected_sign(timestamp: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_signed_robot_posts_carry_a_fresh_valid_signature(app, org, query, robot):
    from service import notify
    from service.extensions import db

    url, posts = robot
    dept = org.department("d1")
    out = hcp("departments", "notify", "d1", "--webhook", url, "--secret", "-", stdin=SECRET + "\n").stdout
    assert "signed" in out and SECRET not in out and "tok" not in out
    stored = query(lambda s: s.scalar(select(Department.notify_webhook_secret_enc)))
    assert stored and SECRET not in stored  # encrypted, not in clear

    before_ms = int(time.time() * 1000)
    with app.app_context():
        notify.send_webhook({"department_id": dept.id, "content": "【好差评】测试"},
                            app.config["HCP_SETTINGS"], db.session)
    after_ms = int(time.time() * 1000)
    (path, body), = posts
    params = parse_qs(urlsplit(path).query)
    assert params["access_token"] == ["tok"] and body["text"]["content"] == "【好差评】测试"
    timestamp = params["timestamp"][0]
    assert before_ms <= int(timestamp) <= after_ms  # signed while sending, not when configured
    assert params["sign"] == [expected_sign(timestamp, SECRET)]

    # Without a secret the URL goes as it was given.
    hcp("departments", "notify", "d1", "--secret", "")
    with app.app_context():
        notify.send_webhook({"department_id": dept.id, "content": "x"}, app.config["HCP_SETTINGS"], db.session)
    assert parse_qs(urlsplit(posts[1][0]).query) == {"access_token": ["tok"]}
