#!/usr/bin/env python3
"""Time the 上报 push draining a backlog against a bare POST loop, and the outbox's cost
on the single intake, in one run.

    .venv/bin/python scripts/bench_exchange.py --backlog 20000

Loads a database of its own (scripts/load_ratings.py) with N ratings and their N pending
outbox records, starts a local receiver in a process of its own (answers ``ok`` for every
record, counts them by record id), then, from this process:

- bare loop: the first 1,000 batches of HCP_EXCHANGE_BATCH records the push will send,
  coded and serialised beforehand, POSTed one after another and their answers parsed —
  the floor of any push over HTTP; rounds over them filling 3 s before hcp and again
  after, the median round is the figure (one round lasts a fraction of a second, and the
  shared machine swings it 2–3×);
- hcp: ``service.exchange.push.push`` as the beat's push task runs it, with ``--senders``
  sender threads (HCP_EXCHANGE_SENDERS, default 4; SKIP LOCKED shares the backlog) until
  the outbox is empty (claim, code, POST, settle, commit per batch), then checks the
  receiver got every record id exactly once;
- where the CPU goes, per batch (Linux ``/proc``): this process, the PostgreSQL backends
  of the database and the receiver, for hcp and for the bare loop — a measure the shared
  machine's load moves far less than the rates;
- intake: single ratings through ``POST /api/v1/ratings`` (in-process client, one
  thread) with HCP_EXCHANGE_OUTBOX on and off, rounds alternating, each side's best.

Drops the database at the end (``--keep`` keeps it).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
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
    """A platform that accepts everything, counting deliveries by record id — in a process of
    its own, as a real platform is, so neither side shares an interpreter with it.
    ``GET /counts`` answers what it has counted; ``DELETE /counts`` forgets it."""

    def __init__(self):
        import multiprocessing

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _ReceiverHandler)
        self.server.received = Counter()
        self.server.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/exchange"
        self.proc = multiprocessing.get_context("fork").Process(target=self.server.serve_forever, daemon=True)
        self.proc.start()
        self.server.socket.close()  # the child listens on it

    def counts(self) -> dict:
        with urllib.request.urlopen(self.url.replace("/exchange", "/counts"), timeout=60) as resp:
            return json.loads(resp.read())

    def clear(self) -> None:
        req = urllib.request.Request(self.url.replace("/exchange", "/counts"), method="DELETE")
        urllib.request.urlopen(req, timeout=60).close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join()


class _ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ids = [r["id"] for r in body["records"]]
        with self.server.lock:
            self.server.received.update(ids)
        self._answer({"results": [{"id": i, "status": "ok"} for i in ids]})

    def do_GET(self):
        with self.server.lock:
            got = self.server.received
            self._answer({"distinct": len(got), "once": sum(1 for n in got.values() if n == 1),
                          "total": sum(got.values())})

    def do_DELETE(self):
        with self.server.lock:
            self.server.received.clear()
        self._answer({})

    def _answer(self, answer: dict) -> None:
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def queue_backlog(name: str, app) -> int:
    """Every rating's outbox record, stored coded as the intake stores it (outbox.pg_rating_cte:
    the same SQL, for the app's HCP_EXCHANGE_PROFILE and HCP_AREA_CODE)."""
    import psycopg

    from service.exchange import outbox
    from service.extensions import db

    with psycopg.connect(f"{load_ratings.PG_URL}/{name}") as conn:
        n = conn.execute(
            "INSERT INTO exchange_outbox (record_id, kind, rating_id, status, created_at, due_at, attempts) "
            "SELECT 'rating-' || id, 'rating', id, 'pending', received_at, received_at, 0 FROM ratings").rowcount
        conn.commit()
    with app.app_context():
        outbox.pg_code_ratings(db.session.connection())
        db.session.commit()
    with psycopg.connect(f"{load_ratings.PG_URL}/{name}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE exchange_outbox")
    return n


BARE_SAMPLE = 1_000  # batches the bare loop keeps in memory (a 1 M backlog's bodies would be GBs)


def bare_bodies(app, settings, sample: int = BARE_SAMPLE) -> list[bytes]:
    """The first ``sample`` batches the push will send, coded and serialised before any
    timing starts (the bare loop sends these, round after round)."""
    from sqlalchemy import select

    from models import OutboxRecord
    from service.exchange import profiles, records
    from service.extensions import db

    profile = profiles.load(settings.exchange_profile)
    bodies = []
    with app.app_context():
        recs = db.session.scalars(select(OutboxRecord).order_by(OutboxRecord.id)
                                  .limit(sample * settings.exchange_batch)).all()
        for start in range(0, len(recs), settings.exchange_batch):
            chunk = recs[start:start + settings.exchange_batch]
            neutral = records.neutral(db.session, chunk, settings.area_code)
            body = {"profile": profile.name, "version": profile.version,
                    "records": [records.shaped(profile, r, neutral[r.id]) for r in chunk]}
            bodies.append(json.dumps(body, ensure_ascii=False, default=str).encode("utf-8"))
        db.session.rollback()
    return bodies


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (Linux /proc; 0 elsewhere or once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU per batch of this process (all its threads), the receiver and, when ``database`` is
    given, that database's PostgreSQL backends, between ``start()`` and ``stop(batches)``."""

    def __init__(self, receiver: Receiver, database: str | None = None):
        self.receiver, self.database = receiver, database

    def _backends(self) -> list[int]:
        if self.database is None:
            return []
        import psycopg

        with psycopg.connect(f"{load_ratings.PG_URL}/postgres") as conn:
            return [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                               (self.database,))]

    def start(self) -> None:
        self.backends = {pid: cpu_seconds(pid) for pid in self._backends()}
        self.process, self.received = time.process_time(), cpu_seconds(self.receiver.proc.pid)

    def stop(self, batches: int) -> dict[str, float]:
        pg = sum(cpu_seconds(pid) - self.backends.get(pid, 0.0) for pid in self._backends())
        ms = {"python": time.process_time() - self.process, "postgres": pg,
              "receiver": cpu_seconds(self.receiver.proc.pid) - self.received}
        return {k: 1000 * v / max(batches, 1) for k, v in ms.items()}


def cpu_line(name: str, ms: dict[str, float]) -> str:
    parts = ", ".join(f"{k} {v:.2f}" for k, v in ms.items() if k != "postgres" or v)
    return f"cpu per batch ({name}) {sum(ms.values()):6.2f} ms   ({parts})"


def bare_loop(url: str, bodies: list[bytes], batch: int, seconds: float = 3.0, rounds: int = 3) -> list[float]:
    """Records/s of POSTing every body and parsing every answer, one after another: a round
    per pass over ``bodies``, as many rounds as fill ``seconds`` (at least ``rounds``)."""
    rates = []
    began = time.perf_counter()
    while len(rates) < rounds or time.perf_counter() - began < seconds:
        started = time.perf_counter()
        records = 0
        for body in bodies:
            req = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json; charset=utf-8"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                records += len(json.loads(resp.read())["results"])
        rates.append(records / (time.perf_counter() - started))
    return rates


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
    parser.add_argument("--senders", type=int, default=4,
                        help="the push's sender threads (HCP_EXCHANGE_SENDERS; SKIP LOCKED shares the backlog)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if not args.database.startswith("hcp_bench"):
        parser.error("the database name must start with hcp_bench")
    receiver = None
    try:
        receiver = Receiver()  # forked before any database connection is open
        loaded = load_ratings.load(args.database, args.backlog, seed=3, days=30)
        app = loaded["app"]
        settings = app.config["HCP_SETTINGS"]
        settings.exchange_url, settings.area_code = receiver.url, "330106"
        queued = queue_backlog(args.database, app)

        from sqlalchemy import func, select

        from models import OutboxRecord
        from service.exchange import push
        from service.extensions import db

        bodies = bare_bodies(app, settings)
        bare_cpu = CpuMeter(receiver)
        bare_cpu.start()
        bare = bare_loop(receiver.url, bodies, settings.exchange_batch)
        bare_ms = bare_cpu.stop(len(bare) * len(bodies))
        receiver.clear()
        settings.exchange_senders = args.senders
        batches = -(-queued // settings.exchange_batch)
        with app.app_context():  # the beat's one push task: its sender threads share the backlog
            db.session.execute(select(1))  # the first connection open before the meter starts
            db.session.commit()
            hcp_cpu = CpuMeter(receiver, args.database)
            hcp_cpu.start()
            started = time.perf_counter()
            done = push.push(db.session, settings, budget_seconds=float("inf"))
            drained = time.perf_counter() - started
            hcp_ms = hcp_cpu.stop(batches)
            sent = db.session.scalar(select(func.count()).where(OutboxRecord.status == "sent"))
            db.session.rollback()
        once = receiver.counts()["once"]
        bare += bare_loop(receiver.url, bodies, settings.exchange_batch)
        bare_rate = statistics.median(bare)
        print(f"backlog {queued:,} records in {-(-queued // settings.exchange_batch):,} batches of "
              f"{settings.exchange_batch}")
        print(f"exchange drain (hcp push, {args.senders} senders)   {queued / drained:10.0f} records/s   "
              f"({drained:.1f}s)")
        print(f"exchange drain (bare loop)  {bare_rate:10.0f} records/s   (median of {len(bare)} rounds of "
              f"{len(bodies):,} batches before and after; {min(bare):.0f}–{max(bare):.0f})")
        print(f"ratio hcp / bare loop: {queued / drained / bare_rate:.2f}x")
        print(cpu_line("hcp push", hcp_ms))
        print(cpu_line("bare loop", bare_ms))
        print(f"cpu ratio bare loop / hcp: {sum(bare_ms.values()) / sum(hcp_ms.values()):.2f}x")
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
        if receiver is not None:
            receiver.stop()
        if not args.keep:
            load_ratings.drop(args.database)
            print(f"dropped {args.database}")


if __name__ == "__main__":
    main()
