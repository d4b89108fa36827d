"""Celery pool processes SIGKILLed in the middle of a push (SPEC §8, issue 14).

A whole deployment pushes to the fake platform while kiosks stream
``HCP_FAULT_PUSH_RATINGS`` ratings (default 3,000) (load.PushRun). ``KILLS`` times, the
platform holds its next answers for seconds (it has recorded the batch already), and the
pool processes are SIGKILLed while a push waits on one: the claim dies uncommitted, its
PostgreSQL locks go with the connection, and the records are pushed again under the same
record ids. Afterwards every stored rating must be at the platform — none lost — and the
duplicates (records the platform had already, which it drops by record id) are counted.
"""
from __future__ import annotations

import os
import signal

from tests import support
from tests.faults import load
from tests.stack import children

RATINGS = int(os.environ.get("HCP_FAULT_PUSH_RATINGS", "3000"))
KILLS = 3


def hold_answers(platform, seconds: float = 8.0, batches: int = 4) -> None:
    """Make the platform hold its next answers, and wait until a push is waiting on one."""
    with platform.lock:
        platform.slow_next = [seconds] * batches
    support.wait_for(lambda: len(platform.slow_next) < batches, timeout=60, message="a push waiting on its answer")


def release_answers(platform) -> None:
    with platform.lock:
        platform.slow_next = []


def test_pool_processes_killed_mid_push_lose_nothing(redis, stack_factory, fault_platform):
    platform = fault_platform
    run = load.PushRun(stack_factory, redis, platform, RATINGS, clients=4)
    support.wait_for(lambda: len(platform.received) > 0, timeout=120, message="the first records pushed")
    kills = 0
    for _ in range(KILLS):
        hold_answers(platform)
        pool = children(run.worker.proc.pid)
        assert pool, "the worker has no pool process"
        for pid in pool:
            os.kill(pid, signal.SIGKILL)
        kills += 1
        release_answers(platform)
        before = len(platform.received)
        support.wait_for(lambda: len(platform.received) > before or run.progress[0] >= RATINGS, timeout=120,
                         message="the push to go on after the kill")
    logs = run.stack.logs()
    run.finish("push_worker_kill", kills=kills, worker_lost=logs.count("WorkerLostError"))
    assert kills == KILLS
