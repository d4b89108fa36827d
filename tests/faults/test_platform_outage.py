"""The provincial platform down for a while under a rating stream (SPEC §8, issue 14).

A whole deployment (gunicorn, a Celery worker, beat) pushes to the fake platform
(tests/fake_platform.py) while kiosks stream ratings; the platform answers 503 to every
batch for ``HCP_FAULT_PLATFORM_DOWN`` seconds (default 60) in the middle of the stream of
``HCP_FAULT_PLATFORM_RATINGS`` ratings (default 10,000), then comes back. Afterwards every
stored rating must have reached the platform, counted by record id there — none lost —
and the duplicates (a record delivered twice) are counted and printed.
"""
from __future__ import annotations

import os

from models import rating_record_id
from tests import support
from tests.fake_platform import FakePlatform
from tests.faults import figures, load
from tests.stack import wait_quiet

RATINGS = int(os.environ.get("HCP_FAULT_PLATFORM_RATINGS", "10000"))
DOWN = float(os.environ.get("HCP_FAULT_PLATFORM_DOWN", "60"))


def stored_record_ids(app) -> set[str]:
    from sqlalchemy import text

    from service.extensions import db

    with app.app_context():
        ids = {rating_record_id(i) for (i,) in db.session.execute(text("SELECT id FROM ratings"))}
        db.session.rollback()
    return ids


def test_every_rating_reaches_the_platform_after_an_outage(redis, stack_factory):
    platform = FakePlatform(token="fault-token")
    try:
        stack = stack_factory(redis, extra_env={
            "HCP_EXCHANGE_URL": platform.url, "HCP_EXCHANGE_TOKEN": "fault-token", "HCP_AREA_CODE": "330106",
            "HCP_EXCHANGE_SWEEP_SECONDS": "1", "HCP_EXCHANGE_BACKOFF_SECONDS": "1",
            "HCP_EXCHANGE_BACKOFF_MAX_SECONDS": "8"})
        app, key, _ = stack.hall()
        stack.start_web(workers=2, threads=8)
        stack.start_worker("w1", concurrency=2)
        stack.start_beat()

        items = load.bodies(RATINGS, bad_every=30)
        progress = [0]
        streaming = load.start(load.stream, stack.web.url, key, items, clients=8, progress=progress)
        support.wait_for(lambda: progress[0] >= RATINGS // 5, timeout=300, message="a fifth of the stream")
        support.wait_for(lambda: len(platform.received) > 0, timeout=60, message="the first records pushed")
        platform.down()
        wait_quiet(DOWN)  # the outage's length, on purpose
        refused_while_down = platform.refused
        platform.up()
        streaming.join(timeout=900)
        assert not streaming.is_alive(), "the stream did not finish"
        tally = streaming.box["result"]

        expected = stored_record_ids(app)
        support.wait_for(lambda: expected <= set(platform.received), timeout=300, interval=0.5,
                         message="every stored rating's record at the platform")
        support.wait_for(lambda: (lambda b, r: b == r)(*figures.bad_routed(app)), timeout=120,
                         message="every bad rating to have its case")
        figs = figures.count(app, [b["client_id"] for b in items])
        lost = len(expected - set(platform.received))
        figures.report("platform_outage", figs, outage_s=DOWN, batches_refused=refused_while_down,
                       records_at_platform=len(platform.received), records_lost=lost,
                       records_delivered_twice=platform.duplicates(), unexpected=len(tally.unexpected))

        figures.assert_nothing_lost(figs)
        assert refused_while_down > 0, "the push never met the outage"
        assert lost == 0 and len(expected) == RATINGS
        assert set(platform.received) == expected  # nothing that was not stored either
    finally:
        platform.stop()
