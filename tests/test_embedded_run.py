"""``hcp run`` on the embedded default: SQLite and a file broker under var/, web + worker +
beat as real processes — what a newcomer gets from ``make run``."""
from __future__ import annotations

import os
import signal
import subprocess

import requests

from tests import support
from tests.support import free_port, rating_body, wait_for


def test_hcp_run_embedded(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HCP_")}
    env.update(HCP_VAR_DIR=str(tmp_path / "var"), HCP_SWEEP_SECONDS="2", HCP_WEB_WORKERS="1")
    port = free_port()

    def hcp(*args, stdin=None):
        return support.hcp(*args, stdin=stdin, env=env).stdout.strip()

    server = subprocess.Popen([support.HCP, "run", "--bind", f"127.0.0.1:{port}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(tmp_path / "run.log", "w"),
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready():
            try:
                return requests.get(f"{base}/readyz", timeout=5).status_code == 200
            except requests.RequestException:
                return False
        wait_for(ready, timeout=90, interval=0.5, message="hcp run to be ready")
        assert (tmp_path / "var" / "hcp.sqlite").exists()

        hcp("departments", "add", "d1", "政务服务中心")
        key = hcp("devices", "add", "平板", "--department", "d1", "--channel", "hall_tablet")
        hcp("users", "add", "h1", "--role", "handler", "--department", "d1", stdin="a-long-password\n")
        resp = requests.post(f"{base}/api/v1/ratings", json=rating_body(level=1),
                             headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert resp.status_code == 201, resp.text
        token = requests.post(f"{base}/api/v1/auth/token", json={"username": "h1", "password": "a-long-password"},
                              timeout=10).json()["token"]

        def case():
            items = requests.get(f"{base}/api/v1/cases", headers={"Authorization": f"Bearer {token}"},
                                 timeout=10).json()["items"]
            return items[0] if items else None
        found = wait_for(case, timeout=60, interval=0.5, message="the worker to route the case")
        assert found["assignee"] == "h1" and found["status"] == "assigned"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
