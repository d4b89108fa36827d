"""The provincial platform down for a while under a rating stream (SPEC §8, issue 14).

A whole deployment pushes to the fake platform while kiosks stream
``HCP_FAULT_PLATFORM_RATINGS`` ratings (default 10,000) (load.PushRun); the platform
answers 503 to every batch for ``HCP_FAULT_PLATFORM_DOWN`` seconds (default 60) in the
middle of the stream, then comes back. Afterwards every stored rating must have reached
the platform, counted by record id there — none lost — and the duplicates are counted.
"""
from __future__ import annotations

import os

from tests import support
from tests.faults import load
from tests.stack import wait_quiet

RATINGS = int(os.environ.get("HCP_FAULT_PLATFORM_RATINGS", "10000"))
DOWN = float(os.environ.get("HCP_FAULT_PLATFORM_DOWN", "60"))


def test_every_rating_reaches_the_platform_after_an_outage(redis, stack_factory, fault_platform):
    platform = fault_platform
    run = load.PushRun(stack_factory, redis, platform, RATINGS, clients=8)
    support.wait_for(lambda: run.progress[0] >= RATINGS // 5, timeout=300, message="a fifth of the stream")
    support.wait_for(lambda: len(platform.received) > 0, timeout=60, message="the first records pushed")
    platform.down()
    wait_quiet(DOWN)  # the outage's length, on purpose
    refused_while_down = platform.refused
    platform.up()
    run.finish("platform_outage", routing_timeout=120, outage_s=DOWN, batches_refused=refused_while_down)
    assert refused_while_down > 0, "the push never met the outage"
