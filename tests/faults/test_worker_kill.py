"""Workers SIGKILLed in the middle of routing, five times, while bad ratings stream in.

Two workers route; the test makes sure a worker really is mid-routing when it dies: it
holds a row lock (``SELECT … FOR UPDATE``) on the only handler, so every routing task
blocks inside its ``INSERT INTO cases`` (the foreign-key check waits for the lock), and
it kills only once PostgreSQL shows both workers' inserts waiting. Then it releases the
lock. Two kinds of death alternate:

* the pool process running the task is SIGKILLed — the worker sees WorkerLostError and,
  with ``task_acks_late`` + ``task_reject_on_worker_lost``, puts the message back;
* the whole worker (main process and pool) is SIGKILLed, as when a machine dies — its
  unacknowledged message stays in Redis, and the beat sweep resends the rating.

Either way the killed transaction never commits, and ``cases.rating_id`` is unique, so
a task run twice makes one case. Figures: zero lost, zero duplicate cases.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import psycopg

from tests import support
from tests.faults import figures, load
from tests.stack import children, sigkill_tree

KILLS = 5


def waiting_case_inserts(dsn: str) -> int:
    """Routing transactions blocked on a lock inside INSERT INTO cases, right now."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE 'INSERT INTO cases%'").fetchone()[0]


def test_workers_killed_mid_routing_lose_and_duplicate_nothing(redis, stack_factory):
    # A backlog builds while the lock is held: a longer grace keeps the sweep from resending
    # ratings that are merely queued (harmless, but it adds load).
    stack = stack_factory(redis, extra_env={"HCP_SWEEP_GRACE_SECONDS": "10"})
    app, key, (handler,) = stack.hall()
    stack.start_web(workers=2, threads=4)
    workers = [stack.start_worker("w1"), stack.start_worker("w2")]
    stack.start_beat()
    dsn = stack.env["HCP_DATABASE_URL"]

    items = load.bodies(4000, bad_every=2)
    stop = threading.Event()
    sender = load.start(load.stream, stack.web.url, key, items, clients=4, per_second=40,
                        timeout=20, stop=stop)

    kills = []
    began = time.monotonic()
    for n in range(KILLS):
        victim = workers[(n // 2 + n) % 2]
        whole = n % 2 == 1
        print(f"t={time.monotonic() - began:.1f} round {n}", flush=True)
        with psycopg.connect(dsn) as lock:
            lock.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (handler.id,))
            support.wait_for(lambda: waiting_case_inserts(dsn) >= 2, timeout=60,
                             message="both workers blocked mid-routing")
            if whole:
                sigkill_tree(victim.proc.pid)
                victim.proc.wait(timeout=10)
            else:
                pool = children(victim.proc.pid)
                assert pool, "the worker has no pool process"
                for pid in pool:
                    os.kill(pid, signal.SIGKILL)
            kills.append(("worker" if whole else "pool process", victim.name,
                          round(time.monotonic() - began, 1)))
            lock.rollback()
        print(f"t={time.monotonic() - began:.1f} killed {kills[-1]}", flush=True)
        if whole:
            replacement = stack.start_worker(f"{victim.name}-r{n}")
            workers[workers.index(victim)] = replacement
            print(f"t={time.monotonic() - began:.1f} restarted", flush=True)
        before = figures.bad_routed(app)[1]
        support.wait_for(lambda: figures.bad_routed(app)[1] > before, timeout=60,
                         message="routing to go on after the kill")

    stop.set()
    sender.join(timeout=300)
    assert not sender.is_alive()
    tally = sender.box["result"]
    sent = [cid for cid in tally.answers]
    support.wait_for(lambda: (lambda b, r: b == r)(*figures.bad_routed(app)), timeout=120,
                     message="every bad rating to have its case")

    figs = figures.count(app, sent)
    logs = stack.logs()
    figures.report("worker_kill", figs, kills=len(kills),
                   worker_lost_requeued=logs.count("raised error: WorkerLostError"),
                   swept=logs.count("sweep resent"), unexpected=len(tally.unexpected),
                   latency=tally.latency())
    print("kills:", kills)
    assert len(kills) == KILLS
    assert tally.unexpected == [] and tally.hangs == 0, tally.unexpected[:10]
    assert "WorkerLostError" in logs  # the pool-process kills were seen and requeued
    figures.assert_nothing_lost(figs)
