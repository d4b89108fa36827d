"""Celery pool processes SIGKILLed in the middle of a push (SPEC §8, issue 14).

A whole deployment (gunicorn, a Celery worker, beat) pushes to the fake platform
(tests/fake_platform.py) while kiosks stream ``HCP_FAULT_PUSH_RATINGS`` ratings (default
3,000). ``KILLS`` times, the platform holds its next answers for seconds (it has recorded
the batch already), and the pool processes are SIGKILLed while a push waits on one: the
claim dies uncommitted, its PostgreSQL locks go with the connection, and the records are
pushed again under the same record ids. Afterwards every stored rating must be at the
platform — none lost — and the duplicates (records the platform had already, which it
drops by record id) are counted and printed.
"""
from __future__ import annotations

import os
import signal

from tests import support
from tests.fake_platform import FakePlatform
from tests.faults import figures, load
from tests.faults.test_platform_outage import stored_record_ids
from tests.stack import children

RATINGS = int(os.environ.get("HCP_FAULT_PUSH_RATINGS", "3000"))
KILLS = 3


def test_pool_processes_killed_mid_push_lose_nothing(redis, stack_factory):
    platform = FakePlatform(token="fault-token")
    try:
        stack = stack_factory(redis, extra_env={
            "HCP_EXCHANGE_URL": platform.url, "HCP_EXCHANGE_TOKEN": "fault-token", "HCP_AREA_CODE": "330106",
            "HCP_EXCHANGE_SWEEP_SECONDS": "1", "HCP_EXCHANGE_BACKOFF_SECONDS": "1",
            "HCP_EXCHANGE_BACKOFF_MAX_SECONDS": "8"})
        app, key, _ = stack.hall()
        stack.start_web(workers=2, threads=8)
        worker = stack.start_worker("w1", concurrency=2)
        stack.start_beat()

        items = load.bodies(RATINGS, bad_every=30)
        progress = [0]
        streaming = load.start(load.stream, stack.web.url, key, items, clients=4, progress=progress)
        support.wait_for(lambda: len(platform.received) > 0, timeout=120, message="the first records pushed")
        kills = 0
        for n in range(KILLS):
            with platform.lock:
                platform.slow_next = [8.0] * 4
            support.wait_for(lambda: len(platform.slow_next) < 4, timeout=60, message="a push waiting on its answer")
            pool = children(worker.proc.pid)
            assert pool, "the worker has no pool process"
            for pid in pool:
                os.kill(pid, signal.SIGKILL)
            kills += 1
            with platform.lock:
                platform.slow_next = []
            before = len(platform.received)
            support.wait_for(lambda: len(platform.received) > before or progress[0] >= RATINGS, timeout=120,
                             message="the push to go on after the kill")
        streaming.join(timeout=900)
        assert not streaming.is_alive(), "the stream did not finish"
        tally = streaming.box["result"]

        expected = stored_record_ids(app)
        support.wait_for(lambda: expected <= set(platform.received), timeout=300, interval=0.5,
                         message="every stored rating's record at the platform")
        support.wait_for(lambda: (lambda b, r: b == r)(*figures.bad_routed(app)), timeout=180,
                         message="every bad rating to have its case (routing tasks were killed too)")
        figs = figures.count(app, [b["client_id"] for b in items])
        lost = len(expected - set(platform.received))
        logs = stack.logs()
        figures.report("push_worker_kill", figs, kills=kills,
                       worker_lost=logs.count("WorkerLostError"), records_at_platform=len(platform.received),
                       records_lost=lost, records_delivered_twice=platform.duplicates(),
                       unexpected=len(tally.unexpected))
        assert kills == KILLS
        figures.assert_nothing_lost(figs)
        assert lost == 0 and len(expected) == RATINGS
        assert set(platform.received) == expected  # nothing that was not stored either
    finally:
        platform.stop()
