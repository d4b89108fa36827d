#!/usr/bin/env python3
"""Time the 上报 push draining a backlog against a bare POST loop, and the outbox's cost
on the single intake, in one run.

    .venv/bin/python scripts/bench_exchange.py --backlog 20000

Loads a database of its own (scripts/load_ratings.py) with N ratings and their N pending
outbox records, starts a local receiver (answers ``ok`` for every record), then:

- bare loop: the same batches of HCP_EXCHANGE_BATCH records, coded and serialised
  beforehand, POSTed one after another and their answers parsed — the floor of any
  push over HTTP; run before and after hcp, the better kept;
- hcp: ``service.exchange.push.push`` in ``--senders`` threads (default 2, as two worker
  processes; SKIP LOCKED shares the backlog) until the outbox is empty (claim, code, POST,
  settle, commit per batch), then checks the receiver got every record id exactly once;
- intake: single ratings through ``POST /api/v1/ratings`` (in-process client, one
  thread) with HCP_EXCHANGE_OUTBOX on and off, rounds alternating, each side's best.

Drops the database at the end (``--keep`` keeps it).
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load_ratings  # noqa: E402


class Receiver:
    """A platform that accepts everything, counting deliveries by record id."""

    def __init__(self):
        self.received: Counter = Counter()
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                ids = [r["id"] for r in body["records"]]
                with lock:
                    receiver.received.update(ids)
                data = json.dumps({"results": [{"id": i, "status": "ok"} for i in ids]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/exchange"


def queue_backlog(name: str) -> int:
    import psycopg

    with psycopg.connect(f"{load_ratings.PG_URL}/{name}") as conn:
        n = conn.execute(
            "INSERT INTO exchange_outbox (record_id, kind, rating_id, status, created_at, due_at, attempts) "
            "SELECT 'rating-' || id, 'rating', id, 'pending', received_at, received_at, 0 FROM ratings").rowcount
        conn.commit()
    with psycopg.connect(f"{load_ratings.PG_URL}/{name}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE exchange_outbox")
    return n


def bare_bodies(app, settings) -> list[bytes]:
    """Every batch the push will send, coded and serialised before any timing starts."""
    from sqlalchemy import select

    from models import OutboxRecord
    from service.exchange import profiles, records
    from service.extensions import db

    profile = profiles.load(settings.exchange_profile)
    bodies = []
    with app.app_context():
        recs = db.session.scalars(select(OutboxRecord).order_by(OutboxRecord.id)).all()
        for start in range(0, len(recs), settings.exchange_batch):
            chunk = recs[start:start + settings.exchange_batch]
            neutral = records.neutral(db.session, chunk, settings.area_code)
            body = {"profile": profile.name, "version": profile.version,
                    "records": [records.shaped(profile, r, neutral[r.id]) for r in chunk]}
            bodies.append(json.dumps(body, ensure_ascii=False, default=str).encode("utf-8"))
        db.session.rollback()
    return bodies


def bare_loop(url: str, bodies: list[bytes]) -> float:
    """Seconds to POST every body and parse every answer, one after another."""
    started = time.perf_counter()
    for body in bodies:
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            json.loads(resp.read())
    return time.perf_counter() - started


def intake_rounds(app, key: str, n: int, rounds: int) -> dict[str, float]:
    """Best ms per single rating with the outbox on and off, rounds alternating."""
    settings = app.config["HCP_SETTINGS"]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    rated_at = "2026-11-20T09:30:00+08:00"

    def run(count: int) -> float:
        bodies = [{"client_id": str(uuid.uuid4()), "level": 5, "rated_at": rated_at} for _ in range(count)]
        started = time.perf_counter()
        for body in bodies:
            resp = client.post("/api/v1/ratings", json=body, headers=headers)
            assert resp.status_code == 201, resp.get_json()
        return 1000 * (time.perf_counter() - started) / count

    best = {"on": float("inf"), "off": float("inf")}
    run(200)  # warm: imports, pools, caches
    for _ in range(rounds):
        for side in ("off", "on"):
            settings.exchange_outbox = side == "on"
            best[side] = min(best[side], run(n))
    settings.exchange_outbox = True
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="hcp_bench_exchange")
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--intake", type=int, default=1_500, help="single ratings per intake round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--senders", type=int, default=2,
                        help="concurrent pushes (SKIP LOCKED shares the backlog), as worker processes would")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if not args.database.startswith("hcp_bench"):
        parser.error("the database name must start with hcp_bench")
    try:
        loaded = load_ratings.load(args.database, args.backlog, seed=3, days=30)
        app = loaded["app"]
        queued = queue_backlog(args.database)
        receiver = Receiver()
        settings = app.config["HCP_SETTINGS"]
        settings.exchange_url, settings.area_code = receiver.url, "330106"

        from sqlalchemy import func, select

        from models import OutboxRecord
        from service.exchange import push
        from service.extensions import db

        bodies = bare_bodies(app, settings)
        bare = bare_loop(receiver.url, bodies)
        receiver.received.clear()
        outcomes = []

        def sender():
            with app.app_context():  # a session (a connection) of its own, like a worker process
                outcomes.append(push.push(db.session, settings, budget_seconds=float("inf")))

        threads = [threading.Thread(target=sender) for _ in range(args.senders)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        drained = time.perf_counter() - started
        done = push.Pushed()
        for outcome in outcomes:
            done.add(outcome)
        with app.app_context():
            sent = db.session.scalar(select(func.count()).where(OutboxRecord.status == "sent"))
            db.session.rollback()
        once = sum(1 for n in receiver.received.values() if n == 1)
        bare = min(bare, bare_loop(receiver.url, bodies))
        print(f"backlog {queued:,} records in {len(bodies)} batches of {settings.exchange_batch}")
        print(f"exchange drain (hcp push, {args.senders} senders)   {queued / drained:10.0f} records/s   "
              f"({drained:.1f}s)")
        print(f"exchange drain (bare loop)  {queued / bare:10.0f} records/s   ({bare:.1f}s)")
        print(f"ratio hcp / bare loop: {bare / drained:.2f}x")
        print(f"delivered: {sent:,} marked sent, {once:,} record ids received exactly once, "
              f"{done.failed} failed, {done.held} held")
        if sent != queued or once != queued:
            print("delivery INCOMPLETE")
            raise SystemExit(1)

        from service.org import add_department, add_device

        with app.app_context():
            _, key = add_device("bench-exchange-kiosk", add_department("bench-x", "上报压测", None),
                                "hall_terminal", "1", "100000000/minute")
            db.session.commit()
        best = intake_rounds(app, key, args.intake, args.rounds)
        print(f"intake single (outbox on)   {best['on']:.3f} ms/rating")
        print(f"intake single (outbox off)  {best['off']:.3f} ms/rating")
        print(f"outbox cost on the single intake: {100 * (best['on'] / best['off'] - 1):+.1f} %")
    finally:
        if not args.keep:
            load_ratings.drop(args.database)
            print(f"dropped {args.database}")


if __name__ == "__main__":
    main()
