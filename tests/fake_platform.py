"""A fake provincial platform: a small real HTTP server the tests start (SPEC §8).

It records every batch hcp pushes (and how often each record id arrived, so duplicates
are counted, not hidden), answers ``{results: [{id, status, reason?}]}`` one per record,
and fails on command: HTTP errors for the next N batches, answers slower than hcp's
timeout, per-record rejections, or down (503) until told otherwise. It also plays the
platform's other direction: posting inbound records to hcp.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


class FakePlatform:
    def __init__(self, token: str | None = None):
        self.token = token
        self.lock = threading.Lock()
        self.reset()
        platform = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer, delay = platform._answer(self.path, self.headers.get("Authorization"), body)
                if delay:
                    time.sleep(delay)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # hcp gave up waiting (its timeout): that is the point of a delay

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/exchange"

    def callback_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/callback/{name}"

    def reset(self) -> None:
        with self.lock:
            self.batches: list[tuple[str, dict]] = []  # (path, body) of each batch answered 200
            self.received: Counter = Counter()  # record id → times delivered (answered ok)
            self.auth: list[str | None] = []
            self.fail_next: list[int] = []  # statuses for the next batches, one each
            self.slow_next: list[float] = []  # seconds to wait before answering the next batches
            self.rejects: dict[str, str] = {}  # record id → reason
            self.is_down = False
            self.refused = 0  # batches answered with an error

    def down(self) -> None:
        with self.lock:
            self.is_down = True

    def up(self) -> None:
        with self.lock:
            self.is_down = False

    def _answer(self, path: str, auth: str | None, raw: bytes) -> tuple[int, dict, float]:
        with self.lock:
            self.auth.append(auth)
            delay = self.slow_next.pop(0) if self.slow_next else 0.0
            if self.is_down or self.fail_next:
                status = 503 if self.is_down else self.fail_next.pop(0)
                self.refused += 1
                return status, {"error": "unavailable"}, delay
            # The platform's own URL wants its token; a source's callback URL is another system.
            if self.token and path == "/exchange" and auth != f"Bearer {self.token}":
                self.refused += 1
                return 401, {"error": "bad token"}, delay
            body = json.loads(raw.decode("utf-8"))
            self.batches.append((path, body))
            results = []
            for record in body["records"]:
                rid = record["id"]
                if rid in self.rejects:
                    results.append({"id": rid, "status": "rejected", "reason": self.rejects[rid]})
                else:
                    self.received[rid] += 1
                    results.append({"id": rid, "status": "ok"})
            return 200, {"results": results}, delay

    def records(self, path: str | None = None) -> list[dict]:
        """Every record received (in order), optionally only those posted to ``path``."""
        with self.lock:
            return [r for p, b in self.batches if path is None or p == path for r in b["records"]]

    def duplicates(self) -> int:
        with self.lock:
            return sum(n - 1 for n in self.received.values() if n > 1)

    def send_inbound(self, hcp_url: str, key: str, records: list[dict]) -> requests.Response:
        """The platform's other direction: records down to hcp's inbound endpoint."""
        return requests.post(f"{hcp_url}/api/v1/exchange/inbound", json={"records": records},
                             headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
