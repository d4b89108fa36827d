"""Kiosks over HTTP: threads that post ratings the way a hall device does, and the tally.

A kiosk posts each rating until it gets an answer: on 503/429 or a broken connection it
waits (Retry-After, capped so a test stays short) and posts the same body again, as the
intake contract asks devices to do. Anything else — a 500, an unexpected 4xx, a request
that hangs past ``timeout`` — is recorded and fails the test that reads the tally.
"""
from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import requests

RETRY = {429, 503}
RETRY_CAP = 1.0  # seconds; a real kiosk honours Retry-After in full


def bodies(count: int, bad_every: int = 0, real_name_every: int = 0, seed: int = 1) -> list[dict]:
    """``count`` distinct rating bodies; every ``bad_every``-th is bad (level 1 or 2)."""
    rnd = random.Random(seed)
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    out = []
    for n in range(count):
        bad = bad_every and n % bad_every == 0
        body = {"client_id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                "level": rnd.choice([1, 2]) if bad else rnd.choice([3, 4, 5]),
                "rated_at": (start + timedelta(milliseconds=n)).isoformat()}
        if bad:
            body["comment"] = "等候时间太长"
        if real_name_every and n % real_name_every == 0:
            body["rater"] = {"real_name": True, "name": f"测试{n}", "phone": f"139{n:08d}"}
        out.append(body)
    return out


@dataclass
class Tally:
    """Every answer a kiosk got, by client_id, and everything that went wrong."""

    answers: dict = field(default_factory=lambda: defaultdict(list))  # client_id -> [(status, json)]
    unexpected: list = field(default_factory=list)  # (client_id, status, text)
    hangs: int = 0
    latencies: list = field(default_factory=list)  # seconds per HTTP exchange (reported, not asserted)
    retries: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def final(self, client_id: str):
        """The last answer for ``client_id`` (201/200 when the kiosk is done with it)."""
        got = self.answers.get(client_id)
        return got[-1] if got else None

    def answered(self) -> int:
        return sum(1 for got in self.answers.values() if got and got[-1][0] in (200, 201))

    def latency(self) -> str:
        """p50/p99/max of every exchange, for the printed figures."""
        if not self.latencies:
            return "-"
        xs = sorted(self.latencies)
        pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
        return f"p50={pick(0.5) * 1000:.0f}ms p99={pick(0.99) * 1000:.0f}ms max={xs[-1] * 1000:.0f}ms"


class Pace:
    """A shared schedule of send slots, so many threads make one steady stream."""

    def __init__(self, per_second: float | None):
        self.interval = 1.0 / per_second if per_second else 0.0
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            slot = self.next = max(self.next + self.interval, time.monotonic())
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def post_until_answered(http: requests.Session, url: str, key: str, body: dict, tally: Tally,
                        timeout: float, give_up: float = 300.0) -> None:
    """POST one rating, retrying like a kiosk, and record every answer."""
    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + give_up
    cid = body["client_id"]
    while time.monotonic() < deadline:
        began = time.monotonic()
        try:
            resp = http.post(url + "/api/v1/ratings", json=body, headers=headers, timeout=timeout)
        except requests.Timeout:
            with tally.lock:
                tally.hangs += 1
                tally.unexpected.append((cid, "timeout", f"no answer within {timeout}s"))
            return
        except requests.ConnectionError:
            with tally.lock:
                tally.retries["connection"] += 1
            time.sleep(0.2)
            continue
        finally:
            tally.latencies.append(time.monotonic() - began)
        if resp.status_code in RETRY:
            with tally.lock:
                tally.retries[resp.status_code] += 1
                if "Retry-After" not in resp.headers:
                    tally.unexpected.append((cid, resp.status_code, "no Retry-After"))
            time.sleep(min(float(resp.headers.get("Retry-After", 1)), RETRY_CAP))
            continue
        data = resp.json() if resp.headers.get("Content-Type", "").startswith("application/json") else None
        with tally.lock:
            tally.answers[cid].append((resp.status_code, data))
            if resp.status_code not in (200, 201):
                tally.unexpected.append((cid, resp.status_code, resp.text[:300]))
        return
    with tally.lock:
        tally.unexpected.append((cid, "gave up", f"no answer in {give_up}s"))


def stream(url: str, key: str, items: list[dict], clients: int = 8, per_second: float | None = None,
           timeout: float = 20.0, tally: Tally | None = None, progress: list | None = None,
           stop: threading.Event | None = None) -> Tally:
    """Post ``items`` from ``clients`` threads (each rating once), at ``per_second`` overall.

    ``progress``, when given, is a one-element list counting ratings handed out, so the
    test can time its fault by how far the stream has got; ``stop``, when set, ends the
    stream early (ratings already handed out are still posted until answered).
    """
    tally = tally or Tally()
    pace = Pace(per_second)
    queue = iter(items)
    lock = threading.Lock()

    def run():
        http = requests.Session()
        while True:
            with lock:
                body = None if stop is not None and stop.is_set() else next(queue, None)
                if body is not None and progress is not None:
                    progress[0] += 1
            if body is None:
                return
            pace.wait()
            post_until_answered(http, url, key, body, tally, timeout)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally


def start(fn, *args, **kwargs) -> threading.Thread:
    """Run ``fn`` in a background thread (the stream while the test makes its fault)."""
    box = {}

    def run():
        box["result"] = fn(*args, **kwargs)
    thread = threading.Thread(target=run, daemon=True)
    thread.box = box
    thread.start()
    return thread


class PushRun:
    """The 上报 fault tests' shared setup and count: a whole deployment (gunicorn, a Celery
    worker, beat) pushing to the fake platform (tests/fake_platform.py) while kiosks stream
    ``count`` ratings; then every stored rating's record counted at the platform by record
    id — none lost — and the duplicates (a record delivered twice, which the platform drops
    by id) counted and printed."""

    ENV = {"HCP_EXCHANGE_TOKEN": "fault-token", "HCP_AREA_CODE": "330106", "HCP_EXCHANGE_SWEEP_SECONDS": "1",
           "HCP_EXCHANGE_BACKOFF_SECONDS": "1", "HCP_EXCHANGE_BACKOFF_MAX_SECONDS": "8"}

    def __init__(self, stack_factory, redis, platform, count: int, clients: int = 8,
                 per_second: float | None = None, database_url: str | None = None, bad_every: int = 30):
        self.platform = platform
        self.stack = stack_factory(redis, database_url=database_url,
                                   extra_env={**self.ENV, "HCP_EXCHANGE_URL": platform.url})
        self.app, key, _ = self.stack.hall()
        self.stack.start_web(workers=2, threads=8)
        self.worker = self.stack.start_worker("w1", concurrency=2)
        self.stack.start_beat()
        self.items = bodies(count, bad_every=bad_every)
        self.progress = [0]
        self.tally = Tally()
        self.streaming = start(stream, self.stack.web.url, key, self.items, clients=clients, per_second=per_second,
                               tally=self.tally, progress=self.progress)

    def stored_record_ids(self) -> set[str]:
        from sqlalchemy import text

        from models import rating_record_id
        from service.extensions import db

        with self.app.app_context():
            ids = {rating_record_id(i) for (i,) in db.session.execute(text("SELECT id FROM ratings"))}
            db.session.rollback()
        return ids

    def finish(self, name: str, routing_timeout: float = 180, **extra) -> dict:
        """Wait for the stream, every stored rating's record at the platform and every bad
        rating's case; print the figures; assert nothing lost and nothing the platform got
        that was not stored. The figures, for the test's own checks."""
        from tests import support
        from tests.faults import figures

        self.streaming.join(timeout=900)
        assert not self.streaming.is_alive(), "the stream did not finish"
        expected = self.stored_record_ids()
        support.wait_for(lambda: expected <= set(self.platform.received), timeout=300, interval=0.5,
                         message="every stored rating's record at the platform")
        support.wait_for(lambda: (lambda b, r: b == r)(*figures.bad_routed(self.app)), timeout=routing_timeout,
                         message="every bad rating to have its case")
        figs = figures.count(self.app, [b["client_id"] for b in self.items])
        lost = len(expected - set(self.platform.received))
        figs.update(records_at_platform=len(self.platform.received), records_lost=lost,
                    records_delivered_twice=self.platform.duplicates(), unexpected=len(self.tally.unexpected))
        figures.report(name, figs, **extra)
        figures.assert_nothing_lost(figs)
        assert lost == 0 and len(expected) == len(self.items)
        assert set(self.platform.received) == expected  # nothing that was not stored either
        return figs
